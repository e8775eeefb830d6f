import ECTensor

/// A layer whose output activation can be fused into its own op (GEMM epilogue).
public protocol ActivationFusable: Module {
    func forward(_ x: Variable, _ ctx: ForwardContext, activation: Activation) -> Variable
}

extension Conv2D: ActivationFusable {}
extension Dense: ActivationFusable {}
