import ECTensor

/// Rewrites the operands of weight layers (Conv2D, Dense) during a forward pass — how fake
/// quantization enters the model without changing its layers. Set on a `Model`; every forward
/// pass through it (training, evaluation) applies it.
public protocol LayerTransform: AnyObject {
    /// The layer's input activation (e.g. fake-quantized to `bits`).
    func transformInput(_ x: Variable, layer: String, ctx: ForwardContext) -> Variable
    /// The layer's kernel (e.g. fake-quantized to `wbits`).
    func transformWeight(_ w: Variable, layer: String, ctx: ForwardContext) -> Variable
    /// The layer's output, after its fused activation (`post_quant`).
    func transformOutput(_ y: Variable, layer: String, ctx: ForwardContext) -> Variable
    /// Whether `transformOutput` may change `layer`'s output. When it cannot, a Conv2D → (ReLU →)
    /// 2×2 max pool still runs as one op on the convolution kernels, its operands transformed
    /// first (`Conv2D.forwardPooled`). Default: true (the output is always handed over).
    func transformsOutput(layer: String) -> Bool
    /// Whether Conv2D `layer` (3×3, stride 1, `same`) computes through Winograd F(2×2, 3×3),
    /// with `transformWinogradTiles` / `transformWinogradKernel` applied in the Winograd domain
    /// (Winograd-aware quantization). Default: false.
    func usesWinograd(layer: String) -> Bool
    /// The transformed input tiles `V [16, T, cin]` of a Winograd layer.
    func transformWinogradTiles(_ v: Variable, layer: String, ctx: ForwardContext) -> Variable
    /// The transformed kernel `U [16, cin, cout]` of a Winograd layer.
    func transformWinogradKernel(_ u: Variable, layer: String, ctx: ForwardContext) -> Variable
    /// Whether several passes may run through this transform at once (thread replicas): it
    /// then only reads shared state during a pass and sends gradients of its own values to the
    /// pass's `ForwardContext.gradients`. Default: false.
    var supportsReplicas: Bool { get }
    /// After replicated passes: takes in the gradients each pass left for the transform's own
    /// values (`GradientAccumulator.extras`), in replica order.
    func absorbReplicaGradients(_ accumulators: [GradientAccumulator])
}

extension LayerTransform {
    public func usesWinograd(layer: String) -> Bool { false }
    public func transformsOutput(layer: String) -> Bool { true }
    public func transformWinogradTiles(_ v: Variable, layer: String, ctx: ForwardContext) -> Variable { v }
    public func transformWinogradKernel(_ u: Variable, layer: String, ctx: ForwardContext) -> Variable { u }
    public var supportsReplicas: Bool { false }
    public func absorbReplicaGradients(_ accumulators: [GradientAccumulator]) {}
}

extension ForwardContext {
    /// Runs a weight layer's op with the context's transform applied to its operands.
    func transformed(layer: String, input: Variable, weight: Parameter,
                     _ op: (_ x: Variable, _ w: Variable) -> Variable) -> Variable {
        guard let t = transform else { return op(input, variable(for: weight)) }
        let y = op(t.transformInput(input, layer: layer, ctx: self),
                   t.transformWeight(variable(for: weight), layer: layer, ctx: self))
        return t.transformOutput(y, layer: layer, ctx: self)
    }
}
