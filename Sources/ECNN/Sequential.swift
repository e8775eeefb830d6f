import ECTensor

/// Modules applied one after another.
public final class Sequential: Module {
    public let name: String
    public let opType = "Sequential"
    public let layers: [Module]

    public init(name: String = "", _ layers: [Module]) {
        self.name = name
        self.layers = layers
    }

    public var children: [Module] { layers }

    /// Runs the layers in order, fused as `Fusion.steps` says (same results, fewer passes and
    /// tensors).
    public func forward(_ x: Variable, _ ctx: ForwardContext) -> Variable {
        Fusion.steps(layers).reduce(x) { h, step in
            switch step {
            case let .layer(m): return m.forward(h, ctx)
            case let .weightReLU(layer, _): return layer.forward(h, ctx, activation: .relu)
            case let .reluMaxPool(_, pool): return h.maxPool2d(size: pool.size, stride: pool.stride, relu: true)
            }
        }
    }

    public func outputShape(for input: [Int]) -> [Int] {
        layers.reduce(input) { $1.outputShape(for: $0) }
    }

    public func flops(for input: [Int]) -> Int {
        var shape = [1] + input, total = 0
        for l in layers {
            total += l.flops(for: Array(shape.dropFirst()))
            shape = l.outputShape(for: shape)
        }
        return total
    }
}

/// A residual block `relu(body(x) + shortcut(x))` (op type `AddV2` for the join); the
/// shortcut is the identity when nil. The output channels of the body's last layer and of the
/// shortcut are tied: pruning must remove them together.
public final class ResidualBlock: Module {
    public let name: String
    public let opType = "AddV2"
    public let body: Sequential
    public let shortcut: Sequential?

    public init(name: String, body: Sequential, shortcut: Sequential? = nil) {
        self.name = name
        self.body = body
        self.shortcut = shortcut
    }

    public var children: [Module] { [body] + (shortcut.map { [$0] } ?? []) }

    public func forward(_ x: Variable, _ ctx: ForwardContext) -> Variable {
        let main = body.forward(x, ctx)
        let skip = shortcut?.forward(x, ctx) ?? x
        return (main + skip).relu()
    }

    public func outputShape(for input: [Int]) -> [Int] { body.outputShape(for: input) }

    public func flops(for input: [Int]) -> Int {
        body.flops(for: input) + (shortcut?.flops(for: input) ?? 0)
    }
}
