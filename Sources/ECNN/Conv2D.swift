import ECTensor

/// 2-D convolution layer (op type `Conv2D`): kernel `name/weight` `[kh, kw, cin/groups, cout]`
/// (HWIO), optional bias `name/bias` `[cout]`. Input and output are NHWC.
///
/// Two ways to describe the window: TensorFlow's (`stride`, `padding: .same/.valid`, square
/// kernels — the built-in models) or ONNX's (a stride per axis, explicit and possibly
/// asymmetric `pads`, `groups` — imported models; depthwise convolutions have
/// `groups == cin`). `isPlain` tells the first kind, which the Winograd path requires; the
/// block-sparse inference kernel takes any one-group convolution (where it pays: `blockSparse`).
public final class Conv2D: Module {
    public let name: String
    public let opType = "Conv2D"
    public let weight: Parameter
    public let bias: Parameter?
    /// The stride along the height (and, unless `strideWidth` differs, the width).
    public let stride: Int
    public let strideWidth: Int
    /// TensorFlow-style padding; ignored when `pads` is set.
    public let padding: Padding
    /// Explicit zero padding (ONNX `pads`), nil for TensorFlow-style `padding`.
    public let pads: Padding2D?
    /// Channel groups: group g maps input channels `g·cin/groups ..<` to outputs `g·cout/groups ..<`.
    public let groups: Int

    /// A TensorFlow-style convolution with a square kernel drawn from `rng` (Glorot uniform).
    public convenience init(name: String, inChannels: Int, outChannels: Int, kernelSize: Int, stride: Int = 1,
                            padding: Padding = .same, useBias: Bool = true, rng: inout RNG) {
        precondition(inChannels > 0 && outChannels > 0 && kernelSize > 0 && stride > 0,
                     "\(name): Conv2D dimensions must be > 0")
        let kernel = Initializer.glorotUniform(shape: [kernelSize, kernelSize, inChannels, outChannels], rng: &rng)
        self.init(name: name, kernel: kernel, bias: useBias ? Tensor(shape: [outChannels]) : nil, stride: stride,
                  padding: padding)
    }

    /// A convolution with the given values: `kernel` `[kh, kw, cin/groups, cout]`, `bias` `[cout]`.
    public init(name: String, kernel: Tensor, bias: Tensor?, stride: Int = 1, strideWidth: Int? = nil,
                padding: Padding = .same, pads: Padding2D? = nil, groups: Int = 1) {
        precondition(kernel.rank == 4 && kernel.count > 0, "\(name): Conv2D kernel \(kernel.shape) must be [kh, kw, cin/groups, cout]")
        precondition(stride > 0 && (strideWidth ?? 1) > 0 && groups > 0 && kernel.shape[3] % groups == 0,
                     "\(name): stride \(stride)/\(strideWidth ?? stride), groups \(groups) for \(kernel.shape[3]) outputs")
        precondition(bias == nil || bias!.shape == [kernel.shape[3]], "\(name): bias \(bias!.shape) for \(kernel.shape[3]) outputs")
        self.name = name
        self.stride = stride
        self.strideWidth = strideWidth ?? stride
        self.padding = padding
        self.pads = pads
        self.groups = groups
        weight = Parameter(name: scopePath(name, "weight"), role: .weight, value: kernel)
        self.bias = bias.map { Parameter(name: scopePath(name, "bias"), role: .bias, value: $0) }
    }

    public var inChannels: Int { weight.shape[2] * groups }
    public var outChannels: Int { weight.shape[3] }
    public var kernelSize: Int { weight.shape[0] }
    public var kernelHeight: Int { weight.shape[0] }
    public var kernelWidth: Int { weight.shape[1] }
    public var ownParameters: [Parameter] { [weight] + (bias.map { [$0] } ?? []) }
    /// A TensorFlow-style convolution: square kernel and stride, `same`/`valid`, no groups.
    public var isPlain: Bool { pads == nil && groups == 1 && strideWidth == stride && kernelHeight == kernelWidth }
    /// One input channel per group (depthwise).
    public var isDepthwise: Bool { groups > 1 && weight.shape[2] == 1 }

    /// The explicit pads on an input of `height × width`.
    public func explicitPads(height: Int, width: Int) -> Padding2D {
        pads ?? padding.explicit(height: height, width: width, kernelHeight: kernelHeight, kernelWidth: kernelWidth,
                                 strideHeight: stride, strideWidth: strideWidth)
    }

    /// The geometry on an NHWC input of shape `input`.
    public func geometry(_ input: [Int]) -> Conv2DGeometry {
        Conv2DGeometry(input: input, kernel: weight.shape, strideHeight: stride, strideWidth: strideWidth,
                       pads: explicitPads(height: input[1], width: input[2]), groups: groups)
    }

    public func forward(_ x: Variable, _ ctx: ForwardContext) -> Variable { forward(x, ctx, activation: .identity) }

    public func forward(_ x: Variable, _ ctx: ForwardContext, activation: Activation) -> Variable {
        if isPlain, let t = ctx.transform, t.usesWinograd(layer: name),
           Winograd.applies(kernel: weight.shape, stride: stride, padding: padding) {
            // Winograd-aware: the spatial input as usual, the kernel only in the Winograd domain.
            var y = t.transformInput(x, layer: name, ctx: ctx).winogradConv2d(
                weight: ctx.variable(for: weight), bias: bias.map { ctx.variable(for: $0) },
                transformTiles: { t.transformWinogradTiles($0, layer: name, ctx: ctx) },
                transformKernel: { t.transformWinogradKernel($0, layer: name, ctx: ctx) })
            if activation == .relu { y = y.relu() }
            return t.transformOutput(y, layer: name, ctx: ctx)
        }
        if let sparse = blockSparse(x.shape, ctx) {
            return Variable(sparse.conv2d(x.value, geometry: geometry(x.shape), bias: bias?.value, activation: activation))
        }
        return ctx.transformed(layer: name, input: x, weight: weight) { x, w in
            x.conv2d(weight: w, bias: bias.map { ctx.variable(for: $0) }, strideHeight: stride, strideWidth: strideWidth,
                     pads: explicitPads(height: x.shape[1], width: x.shape[2]), groups: groups, activation: activation)
        }
    }

    /// This convolution (with `activation`) followed by a 2×2, stride-2 max pool (`poolReLU`:
    /// the pool's fused ReLU) as one op on the FP32 convolution kernels (`Variable.conv2dMaxPool`),
    /// bit for bit the two ops one after the other, in inference and in training. Under a layer
    /// transform (quantization-aware training) the input and the kernel are transformed first,
    /// as `forward` does. Nil when that does not run here (a transform that rewrites the output
    /// or computes in the Winograd domain, a block-sparse kernel, the direct grouped path, an
    /// FP32 path without the kernels, training with an activation): the caller runs the two ops.
    public func forwardPooled(_ x: Variable, _ ctx: ForwardContext, activation: Activation, poolReLU: Bool) -> Variable? {
        guard blockSparse(x.shape, ctx) == nil else { return nil }
        var input = x, kernel = ctx.variable(for: weight)
        if let t = ctx.transform {
            // Transform the operands only where the fused op will take them (else the caller's
            // unfused path transforms them, once).
            guard !t.transformsOutput(layer: name),
                  !(isPlain && t.usesWinograd(layer: name) && Winograd.applies(kernel: weight.shape, stride: stride, padding: padding)),
                  Variable.conv2dMaxPoolRuns(geometry(x.shape), activation: activation, recording: ctx.tape != nil)
            else { return nil }
            input = t.transformInput(x, layer: name, ctx: ctx)
            kernel = t.transformWeight(kernel, layer: name, ctx: ctx)
        }
        return input.conv2dMaxPool(weight: kernel, bias: bias.map { ctx.variable(for: $0) }, strideHeight: stride,
                                   strideWidth: strideWidth, pads: explicitPads(height: x.shape[1], width: x.shape[2]),
                                   groups: groups, activation: activation, poolReLU: poolReLU)
    }

    /// The block-sparse form to run this pass on an input of shape `input`, or nil to run dense.
    /// One group, and a geometry the engine's own FP32 convolution kernels do not run (a 1×1
    /// convolution — a GEMM —, or a CPU or path without them): against those kernels (implicit
    /// GEMM, the pool fused) the block-sparse kernel's im2col route was slower at every sparsity
    /// measured, 60–95% zero blocks (`ecbench --mode sparse`, docs/sparsity.md). Then
    /// `SparseInference` decides by the kernel's zero blocks.
    func blockSparse(_ input: [Int], _ ctx: ForwardContext) -> BlockSparseMatrix? {
        guard groups == 1, !FP32Conv.runs(geometry(input)) else { return nil }
        return SparseInference.matrix(for: weight, ctx: ctx)
    }

    public func inputProblem(_ input: [Int]) -> String? {
        guard input.count == 4 else { return "expects an NHWC feature map, got shape \(input)" }
        guard input[3] == inChannels else {
            return "kernel \(weight.shape)\(groups > 1 ? " in \(groups) groups" : "") reads \(inChannels) channels, the input has \(input[3])"
        }
        let p = explicitPads(height: input[1], width: input[2])
        if input[1] + p.top + p.bottom < kernelHeight || input[2] + p.left + p.right < kernelWidth {
            return "a \(kernelHeight)×\(kernelWidth) kernel does not fit a \(input[1])×\(input[2]) input padded by \(p)"
        }
        return nil
    }

    public func outputShape(for input: [Int]) -> [Int] {
        let g = geometry(input)
        return [g.batch, g.outHeight, g.outWidth, g.outChannels]
    }

    public func flops(for input: [Int]) -> Int { 2 * geometry([1] + input).multiplyAdds }
}
