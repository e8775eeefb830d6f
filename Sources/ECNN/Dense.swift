import ECTensor

/// Fully connected layer (op type `MatMul`): kernel `name/weight` `[in, out]`, bias `name/bias`.
public final class Dense: Module {
    public let name: String
    public let opType = "MatMul"
    public let weight: Parameter
    public let bias: Parameter?

    public init(name: String, inputs: Int, outputs: Int, useBias: Bool = true, rng: inout RNG) {
        precondition(inputs > 0 && outputs > 0, "\(name): Dense dimensions must be > 0")
        self.name = name
        weight = Parameter(name: scopePath(name, "weight"), role: .weight,
                           value: Initializer.glorotUniform(shape: [inputs, outputs], rng: &rng))
        bias = useBias ? Parameter(name: scopePath(name, "bias"), role: .bias, value: Tensor(shape: [outputs])) : nil
    }

    public var inputs: Int { weight.shape[0] }
    public var outputs: Int { weight.shape[1] }
    public var ownParameters: [Parameter] { [weight] + (bias.map { [$0] } ?? []) }

    public func forward(_ x: Variable, _ ctx: ForwardContext) -> Variable { forward(x, ctx, activation: .identity) }

    public func forward(_ x: Variable, _ ctx: ForwardContext, activation: Activation) -> Variable {
        if let sparse = SparseInference.matrix(for: weight, ctx: ctx), x.value.rank == 2 {
            return Variable(sparse.multiply(x.value, bias: bias?.value, activation: activation))
        }
        return ctx.transformed(layer: name, input: x, weight: weight) { x, w in
            x.linear(weight: w, bias: bias.map { ctx.variable(for: $0) }, activation: activation)
        }
    }

    public func outputShape(for input: [Int]) -> [Int] {
        precondition(input.count == 2 && input[1] == inputs, "\(name): input \(input) does not fit \(inputs) inputs")
        return [input[0], outputs]
    }

    public func flops(for input: [Int]) -> Int { 2 * inputs * outputs }
}
