import ECTensor

/// A model's architecture as data — every node, its op and attributes, its inputs — without
/// the weights: what a save_dir keeps (`model.json`) so that the model can be rebuilt from the
/// save_dir alone (GapFinetune, export, eval), whether it came from the zoo, from an ONNX file
/// or from an earlier extraction. Parameters get their names from the layers, their values
/// from a checkpoint.
public struct ModelDescription: Codable, Equatable, Sendable {
    public static let formatVersion = 1

    public var formatVersion: Int
    public var name: String
    public var inputShape: [Int]
    public var interface: ModelInterface
    public var nodes: [Node]
    public var output: Int

    /// One node: the op, its inputs (value indices; value 0 is the model input, each node's
    /// outputs follow in node order) and the attributes its op needs.
    public struct Node: Codable, Equatable, Sendable {
        public var name: String
        public var op: String
        public var inputs: [Int]
        /// Kernel, weight or constant shape.
        public var shape: [Int]? = nil
        public var bias: Bool? = nil
        public var strides: [Int]? = nil
        public var padding: String? = nil
        /// `[top, bottom, left, right]`.
        public var pads: [Int]? = nil
        public var groups: Int? = nil
        public var window: [Int]? = nil
        public var ceilMode: Bool? = nil
        public var countIncludePad: Bool? = nil
        public var momentum: Float? = nil
        public var epsilon: Float? = nil
        public var constants: [Float]? = nil
        public var axis: Int? = nil
        public var sizes: [Int]? = nil
        public var perm: [Int]? = nil

        enum CodingKeys: String, CodingKey {
            case name, op, inputs, shape, bias, strides, padding, pads, groups, window
            case ceilMode = "ceil_mode", countIncludePad = "count_include_pad", momentum, epsilon, constants, axis, sizes, perm
        }
    }

    enum CodingKeys: String, CodingKey {
        case formatVersion = "format_version", name, inputShape = "input_shape", interface, nodes, output
    }
}

/// A description that does not make a graph.
public struct ModelDescriptionError: Error, Equatable, CustomStringConvertible {
    public let node: String
    public let reason: String
    public var description: String { "model description: node '\(node)': \(reason)" }
}

extension Model {
    /// This model's architecture (no weights).
    public var modelDescription: ModelDescription {
        let nodes = graph.nodes.map { n -> ModelDescription.Node in
            var d = ModelDescription.Node(name: n.name, op: n.op.opType, inputs: n.inputs)
            switch n.op {
            case let .layer(m): Self.describe(m, into: &d)
            case let .concat(axis): d.axis = axis
            case let .split(axis, sizes): d.axis = axis; d.sizes = sizes
            case let .transpose(perm): d.perm = perm
            case let .reshape(shape): d.shape = shape
            case let .constant(p): d.shape = p.shape
            case .add, .sub, .mul, .div: break
            }
            return d
        }
        return ModelDescription(formatVersion: ModelDescription.formatVersion, name: name, inputShape: inputShape,
                                interface: interface, nodes: nodes, output: graph.output)
    }

    private static func describe(_ m: Module, into d: inout ModelDescription.Node) {
        switch m {
        case let c as Conv2D:
            d.op = "Conv2D"
            d.shape = c.weight.shape; d.bias = c.bias != nil; d.strides = [c.stride, c.strideWidth]
            d.padding = c.padding.rawValue; d.groups = c.groups
            d.pads = c.pads.map { [$0.top, $0.bottom, $0.left, $0.right] }
        case let l as Dense:
            d.shape = l.weight.shape; d.bias = l.bias != nil
        case let b as BatchNorm:
            d.shape = [b.channels]; d.momentum = b.momentum; d.epsilon = b.epsilon
        case let p as MaxPool:
            Self.describe(p.window, into: &d)
        case let p as AvgPool:
            Self.describe(p.window, into: &d); d.countIncludePad = p.countIncludePad
        case let a as ActivationLayer:
            switch a.kind {
            case let .clip(lower, upper): d.constants = [lower, upper]
            case let .leakyRelu(alpha): d.constants = [alpha]
            case let .hardSigmoid(alpha, beta): d.constants = [alpha, beta]
            case .sigmoid, .hardSwish, .tanh: break
            }
        default: break
        }
    }

    private static func describe(_ w: PoolWindow, into d: inout ModelDescription.Node) {
        d.window = [w.kernelHeight, w.kernelWidth]; d.strides = [w.strideHeight, w.strideWidth]
        d.pads = [w.pads.top, w.pads.bottom, w.pads.left, w.pads.right]; d.ceilMode = w.ceilMode
    }

    /// The model `description` describes, with zero weights (load them from a checkpoint).
    public convenience init(description: ModelDescription) throws {
        guard description.formatVersion == ModelDescription.formatVersion else {
            throw ModelDescriptionError(node: "(model)", reason: "format version \(description.formatVersion), this build reads \(ModelDescription.formatVersion)")
        }
        var b = GraphBuilder(inputShape: description.inputShape)
        var produced = 1
        for n in description.nodes {
            func fail(_ reason: String) -> ModelDescriptionError { ModelDescriptionError(node: n.name, reason: reason) }
            guard n.inputs.allSatisfy({ (0..<produced).contains($0) }) else { throw fail("reads value \(n.inputs) before it exists") }
            func need<T>(_ v: T?, _ key: String) throws -> T {
                guard let v else { throw fail("no \(key)") }
                return v
            }
            func pads(_ p: [Int]?) throws -> Padding2D? {
                guard let p else { return nil }
                guard p.count == 4, p.allSatisfy({ $0 >= 0 }) else { throw fail("pads \(p)") }
                return Padding2D(top: p[0], bottom: p[1], left: p[2], right: p[3])
            }
            func window() throws -> PoolWindow {
                let w = try need(n.window, "window"), s = try need(n.strides, "strides")
                guard w.count == 2, s.count == 2, w.allSatisfy({ $0 > 0 }), s.allSatisfy({ $0 > 0 }) else { throw fail("window \(w), strides \(s)") }
                return PoolWindow(kernelHeight: w[0], kernelWidth: w[1], strideHeight: s[0], strideWidth: s[1],
                                  pads: try pads(n.pads) ?? .zero, ceilMode: n.ceilMode ?? false)
            }
            let arity: [String: ClosedRange<Int>] = ["Add": 2...2, "Sub": 2...2, "Mul": 2...2, "Div": 2...2,
                                                     "Concat": 1...Int.max, "Constant": 0...0]
            guard (arity[n.op] ?? 1...1).contains(n.inputs.count) else { throw fail("\(n.inputs.count) inputs for \(n.op)") }
            let x = n.inputs.first ?? 0
            var outputs = 1
            do {
                switch n.op {
                case "Conv2D":
                    let k = try need(n.shape, "kernel shape"), s = n.strides ?? [1, 1], g = n.groups ?? 1
                    guard k.count == 4, k.allSatisfy({ $0 > 0 }), s.count == 2, s.allSatisfy({ $0 > 0 }), g > 0, k[3] % g == 0 else {
                        throw fail("kernel \(k), strides \(s), groups \(g)")
                    }
                    let padding = try need(Padding(rawValue: n.padding ?? "same"), "padding")
                    _ = try b.layer(Conv2D(name: n.name, kernel: Tensor(shape: k), bias: n.bias == true ? Tensor(shape: [k[3]]) : nil,
                                           stride: s[0], strideWidth: s[1], padding: padding, pads: try pads(n.pads), groups: g), x)
                case "MatMul":
                    let w = try need(n.shape, "weight shape")
                    guard w.count == 2, w.allSatisfy({ $0 > 0 }) else { throw fail("weight \(w)") }
                    _ = try b.layer(Dense(name: n.name, weight: Tensor(shape: w), bias: n.bias == true ? Tensor(shape: [w[1]]) : nil), x)
                case "FusedBatchNorm":
                    let c = try need(n.shape, "channels")
                    guard c.count == 1, c[0] > 0 else { throw fail("channels \(c)") }
                    _ = try b.layer(BatchNorm(name: n.name, channels: c[0], momentum: n.momentum ?? 0.99, epsilon: n.epsilon ?? 1e-3), x)
                case "Relu": _ = try b.layer(ReLU(name: n.name), x)
                case "Flatten": _ = try b.layer(Flatten(name: n.name), x)
                case "Mean": _ = try b.layer(GlobalAvgPool(name: n.name), x)
                case "MaxPool": _ = try b.layer(MaxPool(name: n.name, window: try window()), x)
                case "AvgPool": _ = try b.layer(AvgPool(name: n.name, window: try window(), countIncludePad: n.countIncludePad ?? false), x)
                case "Clip", "LeakyRelu", "HardSigmoid", "Sigmoid", "HardSwish", "Tanh":
                    let c = n.constants ?? []
                    let kind: ActivationLayer.Kind
                    switch (n.op, c.count) {
                    case ("Clip", 2): kind = .clip(min: c[0], max: c[1])
                    case ("LeakyRelu", 1): kind = .leakyRelu(alpha: c[0])
                    case ("HardSigmoid", 2): kind = .hardSigmoid(alpha: c[0], beta: c[1])
                    case ("Sigmoid", 0): kind = .sigmoid
                    case ("HardSwish", 0): kind = .hardSwish
                    case ("Tanh", 0): kind = .tanh
                    default: throw fail("\(c.count) constants for \(n.op)")
                    }
                    _ = try b.layer(ActivationLayer(name: n.name, kind: kind), x)
                case "Add", "Sub", "Mul", "Div":
                    guard n.inputs.count == 2 else { throw fail("\(n.inputs.count) inputs") }
                    let op: NodeOp = ["Add": .add, "Sub": .sub, "Mul": .mul, "Div": .div][n.op]!
                    _ = try b.binary(op, n.inputs[0], n.inputs[1], name: n.name)
                case "Concat": _ = try b.concat(n.inputs, axis: try need(n.axis, "axis"), name: n.name)
                case "Split":
                    let sizes = try need(n.sizes, "sizes")
                    outputs = try b.split(x, axis: try need(n.axis, "axis"), sizes: sizes, name: n.name).count
                case "Transpose": _ = try b.transpose(x, perm: try need(n.perm, "perm"), name: n.name)
                case "Reshape": _ = try b.reshape(x, to: try need(n.shape, "shape"), name: n.name)
                case "Constant":
                    let shape = try need(n.shape, "shape")
                    guard shape.allSatisfy({ $0 > 0 }) else { throw fail("shape \(shape)") }
                    _ = try b.constant(Parameter(name: n.name, role: .constant, value: Tensor(shape: shape)))
                    outputs = 1
                default:
                    throw fail("unknown op '\(n.op)'")
                }
            } catch let error as GraphError {
                throw fail("\(error)")
            }
            produced += outputs
        }
        guard (0..<produced).contains(description.output) else {
            throw ModelDescriptionError(node: "(output)", reason: "value \(description.output) does not exist")
        }
        let graph: Graph
        do { graph = try b.build(output: description.output) } catch { throw ModelDescriptionError(node: "(output)", reason: "\(error)") }
        guard graph.valueShapes[graph.output].count == 2 else {
            throw ModelDescriptionError(node: "(output)", reason: "the output \(graph.valueShapes[graph.output]) is not [batch, classes]")
        }
        self.init(name: description.name, graph: graph, interface: description.interface)
    }
}
