import XCTest
@testable import ECNN
@testable import ECTensor

/// Whole-model gradient checks: the tape's gradient of the loss with respect to sampled
/// parameter elements against central finite differences of the full forward pass.
///
/// A whole model has thousands of ReLU / max-pool kinks; a perturbation of ±ε can cross one
/// (a unit whose pre-activation is within ε·|x| of zero), and then no finite difference means
/// anything. Such points are detected — the one-sided slopes on the two sides disagree — and
/// skipped; at most a quarter of the samples may be skipped.
final class ModelGradientTests: XCTestCase {
    func assertModelGradients(_ model: Model, batch: Int, samplesPerTensor: Int = 12, epsilon: Float = 1e-3,
                              file: StaticString = #filePath, line: UInt = #line) {
        var rng = RNG(seed: 5)
        let x = Tensor.uniform(shape: [batch] + model.inputShape, low: 0, high: 1, rng: &rng)
        let labels = (0..<batch).map { Int32($0 % model.classes) }
        // Batch norm must see training-mode statistics in both passes, without drifting its
        // running statistics between them: evaluate the loss with a fresh context each time and
        // restore the running statistics afterwards.
        let state = model.parameters.filter { !$0.isTrainable }.map { ($0, $0.value) }
        func loss(record: Bool) -> Float {
            defer { for (p, v) in state { p.value = v } }
            let ctx = ForwardContext(tape: record ? Tape() : nil, training: true)
            let l = model(Variable(x), ctx).softmaxCrossEntropy(labels: labels)
            if record { ctx.tape!.backward(from: l) }
            return l.value.scalarValue
        }
        model.graph.zeroGrad()
        let center = loss(record: true)
        var checked = 0, skipped = 0
        for p in model.parameters where p.isTrainable {
            let analytic = p.grad
            for k in 0..<min(samplesPerTensor, p.value.count) {
                let j = Int(rng.next() % UInt64(p.value.count))
                let original = p.value[flat: j]
                p.value[flat: j] = original + epsilon
                let plus = loss(record: false)
                p.value[flat: j] = original - epsilon
                let minus = loss(record: false)
                p.value[flat: j] = original
                let left = (center - minus) / epsilon, right = (plus - center) / epsilon
                if abs(left - right) > 3e-3 + 5e-2 * max(abs(left), abs(right)) {
                    skipped += 1
                    continue
                }
                checked += 1
                let numeric = (plus - minus) / (2 * epsilon)
                let a = analytic[flat: j]
                XCTAssertLessThanOrEqual(abs(a - numeric), 3e-3 + 5e-2 * max(abs(a), abs(numeric)),
                                         "\(p.name)[\(j)] (sample \(k)): analytic \(a) vs numeric \(numeric)",
                                         file: file, line: line)
            }
        }
        XCTAssertLessThanOrEqual(skipped * 3, checked, "too many samples at kinks: \(skipped) skipped, \(checked) checked",
                                 file: file, line: line)
    }

    func testFmnistCNNGradients() {
        assertModelGradients(ModelZoo.make("fmnist-cnn", seed: 1, inputShape: [8, 8, 1])!, batch: 3)
    }

    func testResnetMiniGradients() {
        assertModelGradients(ModelZoo.make("resnet-mini", seed: 2, inputShape: [8, 8, 1])!, batch: 4)
    }

    func testLenetAndMLPGradients() {
        assertModelGradients(ModelZoo.make("lenet5", seed: 3, inputShape: [16, 16, 1])!, batch: 2)
        assertModelGradients(ModelZoo.make("mlp", seed: 4, inputShape: [6, 6, 1])!, batch: 3)
    }
}
