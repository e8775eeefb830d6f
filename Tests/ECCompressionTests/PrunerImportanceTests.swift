import ECCollective
@testable import ECCompression
import ECNN
import ECTensor
import XCTest

/// The Taylor score and its EMA, computed by hand (Molchanov et al. 2019).
final class PrunerImportanceTests: XCTestCase {
    /// `a` Dense 2→3 feeding `b` Dense 3→2; group `a` (3 channels) has its kernel, bias and b's
    /// input rows.
    private func chain() -> (Model, [ChannelGroup]) {
        var rng = RNG(seed: 1)
        let a = Dense(name: "a", inputs: 2, outputs: 3, rng: &rng), b = Dense(name: "b", inputs: 3, outputs: 2, rng: &rng)
        let model = chainModel("chain", [a, b], inputShape: [2])
        a.weight.value = Tensor(shape: [2, 3], scalars: [1, 2, 3, 4, 5, 6])
        a.weight.grad = Tensor(shape: [2, 3], scalars: [1, 0, -1, 1, 1, 1])
        a.bias!.value = Tensor(shape: [3], scalars: [0.5, 0.5, 0.5])
        a.bias!.grad = Tensor(shape: [3], scalars: [2, 0, -2])
        // The consumer slice must not contribute: large values and gradients there.
        b.weight.value = Tensor(shape: [3, 2], repeating: 100)
        b.weight.grad = Tensor(shape: [3, 2], repeating: 100)
        let groups = [
            ChannelGroup(id: "a", channels: 3,
                         slices: [producer("a/weight", 3), producer("a/bias", 3),
                                  ChannelSlice(parameter: "b/weight", role: .consumer, innerStride: 2, period: 3)],
                         producers: ["a/weight"], prunable: true, parametersPerChannel: 5, flopsPerChannel: 8),
            ChannelGroup(id: "b", channels: 2, slices: [producer("b/weight", 2), producer("b/bias", 2)],
                         producers: ["b/weight"], prunable: false, parametersPerChannel: 4, flopsPerChannel: 6),
        ]
        return (model, groups)
    }

    func testTheEMAOfTheSquaredSumOfWeightTimesGradient() throws {
        let (model, groups) = chain()
        let pruner = try preparedPruner(PrunerConfig(stepInterval: 100, emaAlpha: 0.9), model: model, groups: groups)
        let channel = PayloadChannel(communicator: pruner.communicator!, environment: [:])

        // Channel sums of w·g: c0 = 1·1 + 4·1 + 0.5·2 = 6, c1 = 0 + 5 + 0 = 5, c2 = −3 + 6 − 1 = 2.
        try pruner.afterStep(1, model: model, channel: channel)
        XCTAssertEqual(pruner.importance(group: "a"), [36, 25, 4])  // the first score, as is
        XCTAssertEqual(pruner.importanceUpdates, 1)

        // Gradients doubled: the sums double, the scores quadruple to [144, 100, 16].
        for p in model.parameters { p.grad = Tensor(shape: p.shape, scalars: p.grad.scalars.map { 2 * $0 }) }
        try pruner.afterStep(2, model: model, channel: channel)
        // 0.9·36 + 0.1·144, 0.9·25 + 0.1·100, 0.9·4 + 0.1·16.
        let ema = try XCTUnwrap(pruner.importance(group: "a"))
        for (value, expected) in zip(ema, [46.8, 32.5, 5.2] as [Float]) {
            XCTAssertEqual(value, expected, accuracy: 1e-4)
        }
        XCTAssertEqual(pruner.importanceUpdates, 2)
        XCTAssertNil(pruner.importance(group: "b"), "a non-prunable group has no importance")
        XCTAssertEqual(channel.metrics.calls, 0, "no trial before step 100")
    }

    /// Tied producers (a residual add) are summed before squaring: opposite contributions
    /// cancel.
    func testTiedProducersAreSummedBeforeSquaring() throws {
        var rng = RNG(seed: 2)
        let p = Dense(name: "p", inputs: 1, outputs: 2, useBias: false, rng: &rng)
        let q = Dense(name: "q", inputs: 1, outputs: 2, useBias: false, rng: &rng)
        let model = siblingModel("tied", [p, q])
        p.weight.value = Tensor(shape: [1, 2], scalars: [1, 1])
        p.weight.grad = Tensor(shape: [1, 2], scalars: [3, 3])
        q.weight.value = Tensor(shape: [1, 2], scalars: [1, 1])
        q.weight.grad = Tensor(shape: [1, 2], scalars: [-3, 1])
        let group = ChannelGroup(id: "p+q", channels: 2, slices: [producer("p/weight", 2), producer("q/weight", 2)],
                                 producers: ["p/weight", "q/weight"], prunable: true, parametersPerChannel: 2,
                                 flopsPerChannel: 4)
        let pruner = try preparedPruner(PrunerConfig(stepInterval: 10), model: model, groups: [group])
        try pruner.afterStep(1, model: model, channel: PayloadChannel(communicator: pruner.communicator!, environment: [:]))
        XCTAssertEqual(pruner.importance(group: "p+q"), [0, 16])  // (3 − 3)², (3 + 1)²
    }

    func testImportanceStopsAfterTheLastTrial() throws {
        let model = TinyNet.model()
        let pruner = try preparedPruner(PrunerConfig(compressionRatio: 0.3, stepInterval: 2, numTrials: 2),
                                        model: model, groups: TinyNet.groups)
        let channel = PayloadChannel(communicator: pruner.communicator!, environment: [:])
        var rng = RNG(seed: 5)
        for step in 1...7 {
            randomizeGradients(model, rng: &rng)
            try pruner.afterStep(step, model: model, channel: channel)
        }
        XCTAssertEqual(pruner.importanceUpdates, 4, "steps 1–4; nothing left to decide after trial 2 at step 4")
        XCTAssertEqual(pruner.trialsDone, 2)
    }
}
