import ECTensor

/// A network as a directed acyclic graph of named nodes — the one model representation of
/// the engine: the built-in models, imported ONNX models and the smaller models pruning
/// extracts are all graphs.
///
/// Values are numbered: value 0 is the graph's input, every node writes new values. Nodes are
/// kept in a topological order (each reads only values written before it), which is also the
/// order they run in. Every value's shape is inferred when the graph is built (`GraphBuilder`)
/// and stored with a batch dimension of 1; the batch dimension passes through every op, so
/// the shapes of any batch follow.
///
/// Running: the nodes run in order, fused where the engine's fusion rule says so
/// (`Fusion.plan`: Conv/Dense → ReLU in the GEMM epilogue, ReLU → MaxPool in the pooling op),
/// on the tape engine — training (recording) and inference alike.
public final class Graph: Module {
    public let name = ""
    public let opType = "Graph"
    /// The nodes in topological (execution) order.
    public let nodes: [GraphNode]
    /// Every value's shape, batch dimension 1 (value 0: the input).
    public let valueShapes: [[Int]]
    /// The value the graph returns.
    public let output: Int
    /// For each value, the node that writes it (nil for the input).
    public let producer: [Int?]
    /// For each value, the nodes that read it, in order.
    public let consumers: [[Int]]
    /// The fused execution plan.
    public private(set) var steps: [GraphStep] = []
    /// The steps whose Conv2D output goes only into the 2×2, stride-2 max pool of the next step
    /// (through its fused ReLU, or directly): step index → that pool node and whether it
    /// applies a ReLU. Such pairs run as one op (`Conv2D.forwardPooled`) when the FP32
    /// convolution kernels take them, in inference and training alike.
    package private(set) var pooledConvolutions: [Int: (pool: Int, relu: Bool)] = [:]

    /// The graph's input value.
    public let input = 0

    init(nodes: [GraphNode], valueShapes: [[Int]], output: Int) {
        self.nodes = nodes
        self.valueShapes = valueShapes
        self.output = output
        var producer = [Int?](repeating: nil, count: valueShapes.count)
        var consumers = [[Int]](repeating: [], count: valueShapes.count)
        for (i, node) in nodes.enumerated() {
            for v in node.outputs { producer[v] = i }
            for v in node.inputs { consumers[v].append(i) }
        }
        self.producer = producer
        self.consumers = consumers
        steps = Fusion.plan(self)
        pooledConvolutions = Graph.pooledConvolutions(nodes: nodes, steps: steps, consumers: consumers, output: output)
    }

    static func pooledConvolutions(nodes: [GraphNode], steps: [GraphStep], consumers: [[Int]], output: Int)
        -> [Int: (pool: Int, relu: Bool)] {
        func pools2x2(_ i: Int) -> Bool {
            guard let pool = nodes[i].op.layer as? MaxPool, let square = pool.window.square else { return false }
            return square.size == 2 && square.stride == 2
        }
        /// Whether node `reader` alone reads node `writer`'s output, which is not the graph's.
        func soleReader(_ reader: Int, of writer: Int) -> Bool {
            let v = nodes[writer].outputs[0]
            return v != output && consumers[v] == [reader] && nodes[reader].inputs == [v]
        }
        var result: [Int: (pool: Int, relu: Bool)] = [:]
        for (s, step) in steps.enumerated().dropLast() {
            guard case let .node(i) = step, nodes[i].op.layer is Conv2D, nodes[i].outputs.count == 1 else { continue }
            switch steps[s + 1] {
            case let .reluMaxPool(relu, pool) where pools2x2(pool) && soleReader(relu, of: i):
                result[s] = (pool, true)
            case let .node(pool) where pools2x2(pool) && soleReader(pool, of: i):
                result[s] = (pool, false)
            default:
                break
            }
        }
        return result
    }

    /// The per-sample input shape (`[H, W, C]` for images).
    public var inputShape: [Int] { Array(valueShapes[input].dropFirst()) }

    public var ownParameters: [Parameter] {
        nodes.compactMap { if case let .constant(p) = $0.op { return p } else { return nil } }
    }

    /// The layers in node order.
    public var children: [Module] { nodes.compactMap(\.op.layer) }

    /// The node that runs `layer` (by identity).
    public func node(of layer: Module) -> Int? {
        nodes.firstIndex { $0.op.layer === layer }
    }

    /// The node named `name`.
    public func node(named name: String) -> Int? { nodes.firstIndex { $0.name == name } }

    public func outputShape(for input: [Int]) -> [Int] {
        precondition(Array(input.dropFirst()) == inputShape, "graph: input \(input) does not fit \([-1] + inputShape)")
        return [input[0]] + valueShapes[output].dropFirst()
    }

    /// Forward FLOPs per sample of every layer (multiply-adds × 2 of Conv2D and MatMul).
    public func flops(for input: [Int]) -> Int {
        nodes.reduce(0) { total, node in
            guard let layer = node.op.layer else { return total }
            return total + layer.flops(for: Array(valueShapes[node.inputs[0]].dropFirst()))
        }
    }

    /// The input shape (batch 1) of node `i`'s first input.
    public func inputShape(ofNode i: Int) -> [Int] { valueShapes[nodes[i].inputs[0]] }

    // MARK: - Running

    public func forward(_ x: Variable, _ ctx: ForwardContext) -> Variable {
        var values = [Variable?](repeating: nil, count: valueShapes.count)
        var uses = consumers.map(\.count)
        values[input] = x
        func read(_ v: Int) -> Variable {
            let value = values[v]!
            uses[v] -= 1
            if uses[v] == 0 && v != output { values[v] = nil }  // the tape keeps what backward needs
            return value
        }
        var pooled = false  // the previous step's convolution already computed this pool
        for (s, step) in steps.enumerated() {
            if pooled { pooled = false; continue }
            if let (pool, relu) = pooledConvolutions[s], case let .node(i) = step,
               let conv = nodes[i].op.layer as? Conv2D, let x = values[nodes[i].inputs[0]],
               let y = conv.forwardPooled(x, ctx, activation: .identity, poolReLU: relu) {
                _ = read(nodes[i].inputs[0])
                values[nodes[pool].outputs[0]] = y
                pooled = true
                continue
            }
            switch step {
            case let .node(i):
                let node = nodes[i]
                let results = run(node.op, node.inputs.map(read), ctx)
                for (v, r) in zip(node.outputs, results) { values[v] = r }
            case let .weightReLU(i, relu):
                let layer = nodes[i].op.layer as! ActivationFusable
                values[nodes[relu].outputs[0]] = layer.forward(read(nodes[i].inputs[0]), ctx, activation: .relu)
            case let .reluMaxPool(relu, pool):
                let p = nodes[pool].op.layer as! MaxPool
                values[nodes[pool].outputs[0]] = p.forward(read(nodes[relu].inputs[0]), ctx, relu: true)
            }
        }
        return values[output]!
    }

    /// One node's op on its inputs (the unfused step).
    public func run(_ op: NodeOp, _ x: [Variable], _ ctx: ForwardContext) -> [Variable] {
        switch op {
        case let .layer(m): return [m.forward(x[0], ctx)]
        case .add: return [x[0] + x[1]]
        case .sub: return [x[0] - x[1]]
        case .mul: return [x[0] * x[1]]
        case .div: return [x[0] / x[1]]
        case let .concat(axis): return [Variable.concat(x, axis: axis)]
        case let .split(axis, sizes): return x[0].split(axis: axis, sizes: sizes)
        case let .transpose(perm): return [x[0].transpose(perm)]
        case let .reshape(shape): return [x[0].reshaped([x[0].shape[0]] + shape)]
        case let .constant(p): return [ctx.variable(for: p)]
        }
    }
}

/// One step of a graph's fused execution plan (`Fusion.plan`).
public enum GraphStep: Equatable, Sendable {
    /// Node `i` on its own.
    case node(Int)
    /// Conv2D/Dense node `i` with the ReLU node `relu` that alone reads its output, applied in
    /// its epilogue.
    case weightReLU(Int, relu: Int)
    /// ReLU node `relu` and the MaxPool node `pool` that alone reads its output, as one pooling
    /// op (`maxPool(relu(x)) = max(0, maxPool(x))`).
    case reluMaxPool(relu: Int, pool: Int)

    /// The nodes the step runs.
    public var nodeIndices: [Int] {
        switch self {
        case let .node(i): return [i]
        case let .weightReLU(i, relu): return [i, relu]
        case let .reluMaxPool(relu, pool): return [relu, pool]
        }
    }
}
