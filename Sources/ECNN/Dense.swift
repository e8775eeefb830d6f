import ECTensor

/// Fully connected layer (op type `MatMul`): kernel `name/weight` `[in, out]`, bias `name/bias`.
public final class Dense: Module {
    public let name: String
    public let opType = "MatMul"
    public let weight: Parameter
    public let bias: Parameter?

    public convenience init(name: String, inputs: Int, outputs: Int, useBias: Bool = true, rng: inout RNG) {
        precondition(inputs > 0 && outputs > 0, "\(name): Dense dimensions must be > 0")
        self.init(name: name, weight: Initializer.glorotUniform(shape: [inputs, outputs], rng: &rng),
                  bias: useBias ? Tensor(shape: [outputs]) : nil)
    }

    /// A dense layer with the given values: `weight` `[in, out]`, `bias` `[out]`.
    public init(name: String, weight: Tensor, bias: Tensor?) {
        precondition(weight.rank == 2 && weight.count > 0, "\(name): Dense weight \(weight.shape) must be [in, out]")
        precondition(bias == nil || bias!.shape == [weight.shape[1]], "\(name): bias \(bias!.shape) for \(weight.shape[1]) outputs")
        self.name = name
        self.weight = Parameter(name: scopePath(name, "weight"), role: .weight, value: weight)
        self.bias = bias.map { Parameter(name: scopePath(name, "bias"), role: .bias, value: $0) }
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

    public func inputProblem(_ input: [Int]) -> String? {
        input.count == 2 && input[1] == inputs ? nil : "weight \(weight.shape) reads \(inputs) features, the input is \(input)"
    }

    public func outputShape(for input: [Int]) -> [Int] {
        precondition(input.count == 2 && input[1] == inputs, "\(name): input \(input) does not fit \(inputs) inputs")
        return [input[0], outputs]
    }

    public func flops(for input: [Int]) -> Int { 2 * inputs * outputs }
}
