import ECTensor

/// A network with the facts a trainer needs: zoo name, per-sample input shape, class count.
public final class Model {
    public let name: String
    public let root: Sequential
    /// Per-sample input shape, NHWC without the batch dimension (e.g. `[28, 28, 1]`).
    public let inputShape: [Int]
    public let classes: Int

    public init(name: String, root: Sequential, inputShape: [Int], classes: Int) {
        self.name = name
        self.root = root
        self.inputShape = inputShape
        self.classes = classes
    }

    public var parameters: [Parameter] { root.parameters }
    public func parameter(named name: String) -> Parameter? { root.parameter(named: name) }

    /// Applied to every weight layer's operands in every forward pass (fake quantization).
    public var transform: LayerTransform?

    /// Logits `[batch, classes]` for input `[batch] + inputShape`.
    public func callAsFunction(_ x: Variable, _ ctx: ForwardContext) -> Variable {
        if ctx.transform == nil { ctx.transform = transform }
        return root.forward(x, ctx)
    }

    /// Trainable parameter count.
    public var parameterCount: Int { root.parameterCount() }
    /// Forward FLOPs per sample (multiply-adds × 2 of Conv2D and MatMul layers).
    public var flops: Int { root.flops(for: inputShape) }

    /// Every weight-bearing layer with its parameters and FLOPs, in execution order.
    public var layerSummaries: [LayerSummary] {
        var out: [LayerSummary] = []
        func walk(_ m: Module, _ shape: [Int]) -> [Int] {
            if let s = m as? Sequential {
                return s.layers.reduce(shape) { walk($1, $0) }
            }
            if let r = m as? ResidualBlock {
                _ = r.shortcut.map { walk($0, shape) }
                return walk(r.body, shape)
            }
            if !m.ownParameters.isEmpty {
                let params = m.ownParameters.filter(\.isTrainable).reduce(0) { $0 + $1.value.count }
                out.append(LayerSummary(name: m.name, opType: m.opType, params: params,
                                        flops: m.flops(for: Array(shape.dropFirst()))))
            }
            return m.outputShape(for: shape)
        }
        _ = walk(root, [1] + inputShape)
        return out
    }

    /// A copy of every parameter value (running statistics included), by name.
    public func stateDict() -> NamedTensors {
        NamedTensors(root.parameters.map { ($0.name, $0.value) })
    }
}

/// One layer's line in summaries and reports.
public struct LayerSummary: Codable, Equatable, Sendable {
    public let name: String
    public let opType: String
    public let params: Int
    public let flops: Int

    enum CodingKeys: String, CodingKey { case name, opType = "op_type", params, flops }
}
