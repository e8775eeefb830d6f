import ECTensor

/// 2-D convolution layer (op type `Conv2D`): kernel `name/weight` `[kh, kw, cin, cout]`
/// (HWIO), optional bias `name/bias` `[cout]`. Input and output are NHWC.
public final class Conv2D: Module {
    public let name: String
    public let opType = "Conv2D"
    public let weight: Parameter
    public let bias: Parameter?
    public let stride: Int
    public let padding: Padding

    public init(name: String, inChannels: Int, outChannels: Int, kernelSize: Int, stride: Int = 1,
                padding: Padding = .same, useBias: Bool = true, rng: inout RNG) {
        precondition(inChannels > 0 && outChannels > 0 && kernelSize > 0 && stride > 0,
                     "\(name): Conv2D dimensions must be > 0")
        self.name = name
        self.stride = stride
        self.padding = padding
        weight = Parameter(name: scopePath(name, "weight"), role: .weight,
                           value: Initializer.glorotUniform(shape: [kernelSize, kernelSize, inChannels, outChannels], rng: &rng))
        bias = useBias ? Parameter(name: scopePath(name, "bias"), role: .bias, value: Tensor(shape: [outChannels])) : nil
    }

    public var inChannels: Int { weight.shape[2] }
    public var outChannels: Int { weight.shape[3] }
    public var kernelSize: Int { weight.shape[0] }
    public var ownParameters: [Parameter] { [weight] + (bias.map { [$0] } ?? []) }

    public func forward(_ x: Variable, _ ctx: ForwardContext) -> Variable { forward(x, ctx, activation: .identity) }

    public func forward(_ x: Variable, _ ctx: ForwardContext, activation: Activation) -> Variable {
        if let t = ctx.transform, t.usesWinograd(layer: name),
           Winograd.applies(kernel: weight.shape, stride: stride, padding: padding) {
            // Winograd-aware: the spatial input as usual, the kernel only in the Winograd domain.
            var y = t.transformInput(x, layer: name, ctx: ctx).winogradConv2d(
                weight: ctx.variable(for: weight), bias: bias.map { ctx.variable(for: $0) },
                transformTiles: { t.transformWinogradTiles($0, layer: name, ctx: ctx) },
                transformKernel: { t.transformWinogradKernel($0, layer: name, ctx: ctx) })
            if activation == .relu { y = y.relu() }
            return t.transformOutput(y, layer: name, ctx: ctx)
        }
        if let sparse = SparseInference.matrix(for: weight, ctx: ctx) {
            return Variable(sparse.conv2d(x.value, kernelShape: weight.shape, stride: stride, padding: padding,
                                          bias: bias?.value, activation: activation))
        }
        return ctx.transformed(layer: name, input: x, weight: weight) { x, w in
            x.conv2d(weight: w, bias: bias.map { ctx.variable(for: $0) }, stride: stride, padding: padding,
                     activation: activation)
        }
    }

    public func outputShape(for input: [Int]) -> [Int] {
        let g = Conv2DGeometry(input: input, kernel: weight.shape, stride: stride, padding: padding)
        return [g.batch, g.outHeight, g.outWidth, g.outChannels]
    }

    public func flops(for input: [Int]) -> Int {
        2 * Conv2DGeometry(input: [1] + input, kernel: weight.shape, stride: stride, padding: padding).multiplyAdds
    }
}
