import ECNN
import ECTensor
import Foundation

/// The shared state and update of `Adam` and `AdamW`, which differ only in how weight decay
/// enters (coupled into the gradient, or applied to the weights directly).
final class AdamCore {
    let schedule: LRSchedule
    let beta1: Float, beta2: Float, epsilon: Float, weightDecay: Float
    /// true: AdamW's decoupled decay; false: Adam's L2 penalty added to the gradient.
    let decoupled: Bool
    var stepCount = 0
    static let slotNames = ["m", "v"]
    /// First and second moment estimates per parameter name.
    private var m: [String: Tensor] = [:]
    private var v: [String: Tensor] = [:]

    init(schedule: LRSchedule, beta1: Float, beta2: Float, epsilon: Float, weightDecay: Float,
         decoupled: Bool) throws {
        try schedule.validate()
        try require(beta1 >= 0 && beta1 < 1, "optimizer.beta1", beta1, "in [0, 1)")
        try require(beta2 >= 0 && beta2 < 1, "optimizer.beta2", beta2, "in [0, 1)")
        try require(epsilon > 0 && epsilon.isFinite, "optimizer.epsilon", epsilon, "> 0")
        try require(weightDecay >= 0 && weightDecay.isFinite, "optimizer.weight_decay", weightDecay, ">= 0")
        self.schedule = schedule
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.weightDecay = weightDecay
        self.decoupled = decoupled
    }

    /// One step at t = stepCount + 1, with the bias corrections folded into two scalars:
    /// lr·m̂/(√v̂ + ε) = (lr/(1−β₁ᵗ))·m / (√v·(1/√(1−β₂ᵗ)) + ε), as PyTorch computes it.
    func step(_ parameters: [Parameter]) {
        let lr = schedule.learningRate(at: stepCount)
        let t = Double(stepCount + 1)
        let stepSize = Float(Double(lr) / (1 - pow(Double(beta1), t)))
        let invSqrtCorrection2 = Float(1 / (1 - pow(Double(beta2), t)).squareRoot())
        let b1 = beta1, b2 = beta2, eps = epsilon
        let l2 = decoupled ? 0 : weightDecay
        let shrink = decoupled ? 1 - lr * weightDecay : 1
        for p in parameters where p.isTrainable {
            OptimizerState.ensureSlot(&m, for: p, slot: "m")
            OptimizerState.ensureSlot(&v, for: p, slot: "v")
            m[p.name]!.withUnsafeMutableBufferPointer { mb in
                v[p.name]!.withUnsafeMutableBufferPointer { vb in
                    p.grad.withUnsafeBufferPointer { g in
                        p.value.withUnsafeMutableBufferPointer { w in
                            for i in 0..<w.count {
                                let wi = w[i], gi = g[i] + l2 * wi
                                let mi = b1 * mb[i] + (1 - b1) * gi
                                let vi = b2 * vb[i] + (1 - b2) * gi * gi
                                mb[i] = mi
                                vb[i] = vi
                                w[i] = wi * shrink - stepSize * mi / (vi.squareRoot() * invSqrtCorrection2 + eps)
                            }
                        }
                    }
                }
            }
        }
        stepCount += 1
    }

    func exportState() -> NamedTensors {
        OptimizerState.export(stepCount: stepCount, slots: [("m", m), ("v", v)])
    }

    func importState(_ state: NamedTensors, for parameters: [Parameter], optimizerName: String) throws {
        let decoded = try OptimizerState.decode(state, slotNames: Self.slotNames, optimizerName: optimizerName,
                                                parameters: parameters)
        stepCount = decoded.stepCount
        m = decoded.tables[0]
        v = decoded.tables[1]
    }

    func forEachSlot(of parameterName: String, _ body: (inout Tensor) -> Void) {
        if m[parameterName] != nil { body(&m[parameterName]!) }
        if v[parameterName] != nil { body(&v[parameterName]!) }
    }
}
