import ECTensor

/// A network with the facts a trainer needs: its name, its graph (per-sample input shape
/// included), its class count, and how it meets the outside world (`ModelInterface`).
public final class Model {
    public let name: String
    /// The network: built-in models, imported ONNX models and extracted (pruned) models alike.
    public let graph: Graph
    public let classes: Int
    /// Names and layouts of the model's input and output outside the engine.
    public let interface: ModelInterface

    /// A model over `graph`, whose output must be `[batch, classes]`.
    public init(name: String, graph: Graph, interface: ModelInterface = ModelInterface()) {
        let out = graph.valueShapes[graph.output]
        precondition(out.count == 2, "\(name): the graph's output \(out) is not [batch, classes]")
        self.name = name
        self.graph = graph
        classes = out[1]
        self.interface = interface
    }

    /// Per-sample input shape, NHWC without the batch dimension (e.g. `[28, 28, 1]`).
    public var inputShape: [Int] { graph.inputShape }

    public var parameters: [Parameter] { graph.parameters }
    public func parameter(named name: String) -> Parameter? { graph.parameter(named: name) }

    /// Applied to every weight layer's operands in every forward pass (fake quantization).
    public var transform: LayerTransform?

    /// Logits `[batch, classes]` for input `[batch] + inputShape`.
    public func callAsFunction(_ x: Variable, _ ctx: ForwardContext) -> Variable {
        if ctx.transform == nil { ctx.transform = transform }
        return graph.forward(x, ctx)
    }

    /// Trainable parameter count.
    public var parameterCount: Int { graph.parameterCount() }
    /// Forward FLOPs per sample (multiply-adds × 2 of Conv2D and MatMul layers).
    public var flops: Int { graph.flops(for: inputShape) }

    /// Every weight-bearing layer with its parameters and FLOPs, in execution order.
    public var layerSummaries: [LayerSummary] {
        graph.nodes.indices.compactMap { i in
            guard let m = graph.nodes[i].op.layer, !m.ownParameters.isEmpty else { return nil }
            let params = m.ownParameters.filter(\.isTrainable).reduce(0) { $0 + $1.value.count }
            return LayerSummary(name: m.name, opType: m.opType, params: params,
                                flops: m.flops(for: Array(graph.inputShape(ofNode: i).dropFirst())))
        }
    }

    /// A copy of every parameter value (running statistics included), by name.
    public func stateDict() -> NamedTensors {
        NamedTensors(graph.parameters.map { ($0.name, $0.value) })
    }
}

/// How a model meets the outside world: the names of its input and output and the layout
/// its input arrives in. The engine itself always runs NHWC; an ONNX export writes these, so
/// a model imported from PyTorch (NCHW) goes back out NCHW under its own names.
public struct ModelInterface: Equatable, Codable, Sendable {
    /// The order of an image input's axes outside the engine.
    public enum Layout: String, Codable, Sendable {
        case nhwc = "NHWC", nchw = "NCHW"
    }

    public var inputName: String
    public var outputName: String
    public var inputLayout: Layout
    /// Whether the outside model ends in a softmax (dropped for training, kept on export).
    public var outputSoftmax: Bool

    public init(inputName: String = "input", outputName: String = "logits", inputLayout: Layout = .nhwc,
                outputSoftmax: Bool = false) {
        self.inputName = inputName
        self.outputName = outputName
        self.inputLayout = inputLayout
        self.outputSoftmax = outputSoftmax
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
