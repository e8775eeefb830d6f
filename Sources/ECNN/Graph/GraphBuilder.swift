import ECTensor

/// A graph that cannot be built: each case names the node and what is wrong.
public enum GraphError: Error, Equatable, CustomStringConvertible {
    /// The node's inputs do not fit its op.
    case shapeMismatch(node: String, op: String, reason: String)
    /// Two nodes share a name.
    case duplicateName(String)
    /// A value index that no earlier node wrote.
    case unknownValue(node: String, value: Int)

    public var description: String {
        switch self {
        case let .shapeMismatch(node, op, reason): return "node '\(node)' (\(op)): \(reason)"
        case let .duplicateName(name): return "two nodes are named '\(name)'"
        case let .unknownValue(node, value): return "node '\(node)' reads value \(value), which no earlier node writes"
        }
    }
}

/// Builds a `Graph` node by node, inferring and checking every value's shape as it goes.
///
/// ```swift
/// var b = GraphBuilder(inputShape: [28, 28, 1])
/// var h = try b.layer(Conv2D(name: "conv1", inChannels: 1, outChannels: 16, kernelSize: 3, rng: &rng), b.input)
/// let skip = h
/// h = try b.layer(ReLU(name: "conv1/relu"), h)
/// h = try b.binary(.add, h, skip, name: "block/add")
/// let graph = try b.build(output: h)
/// ```
///
/// Shapes carry a batch dimension of 1; the batch dimension must pass through every op
/// (`transpose` keeps axis 0 first, `concat`/`split` never act on it).
public struct GraphBuilder {
    public private(set) var nodes: [GraphNode] = []
    public private(set) var shapes: [[Int]]
    private var names = Set<String>()

    /// A builder whose input value (index 0) has the per-sample shape `inputShape`.
    public init(inputShape: [Int]) { shapes = [[1] + inputShape] }

    /// The graph's input value.
    public var input: Int { 0 }

    /// The shape (batch 1) of value `v`.
    public func shape(_ v: Int) -> [Int] { shapes[v] }

    /// Adds layer `module` reading `x`; returns its output value. The node takes the layer's name.
    public mutating func layer(_ module: Module, _ x: Int) throws(GraphError) -> Int {
        try check(module.name, [x])
        if let problem = module.inputProblem(shapes[x]) {
            throw .shapeMismatch(node: module.name, op: module.opType, reason: problem)
        }
        return append(module.name, .layer(module), [x], [module.outputShape(for: shapes[x])])[0]
    }

    /// Adds a chain of layers, each reading the previous one's output.
    public mutating func layers(_ modules: [Module], _ x: Int) throws(GraphError) -> Int {
        var h = x
        for m in modules { h = try layer(m, h) }
        return h
    }

    /// Adds an element-wise `.add`, `.sub`, `.mul` or `.div` of `a` and `b` (broadcasting).
    public mutating func binary(_ op: NodeOp, _ a: Int, _ b: Int, name: String) throws(GraphError) -> Int {
        try check(name, [a, b])
        switch op {
        case .add, .sub, .mul, .div: break
        default: preconditionFailure("binary: \(op.opType) is not an element-wise op")
        }
        guard let shape = Self.broadcast(shapes[a], shapes[b]) else {
            throw .shapeMismatch(node: name, op: op.opType, reason: "shapes \(shapes[a]) and \(shapes[b]) do not broadcast")
        }
        guard shape.first == 1, shape.count == max(shapes[a].count, shapes[b].count) else {
            throw .shapeMismatch(node: name, op: op.opType, reason: "the result \(shape) has no batch dimension")
        }
        return append(name, op, [a, b], [shape])[0]
    }

    /// Adds the concatenation of `xs` along `axis` (not 0, the batch).
    public mutating func concat(_ xs: [Int], axis: Int, name: String) throws(GraphError) -> Int {
        try check(name, xs)
        let first = shapes[xs[0]]
        guard axis > 0, axis < first.count else {
            throw .shapeMismatch(node: name, op: "Concat", reason: "axis \(axis) of rank-\(first.count) inputs (the batch axis 0 cannot be joined)")
        }
        var out = first
        out[axis] = 0
        for x in xs {
            var s = shapes[x]
            guard s.count == first.count else {
                throw .shapeMismatch(node: name, op: "Concat", reason: "inputs of ranks \(first.count) and \(s.count)")
            }
            out[axis] += s[axis]
            s[axis] = first[axis]
            guard s == first else {
                throw .shapeMismatch(node: name, op: "Concat", reason: "shapes \(xs.map { shapes[$0] }) differ off axis \(axis)")
            }
        }
        return append(name, .concat(axis: axis), xs, [out])[0]
    }

    /// Adds a split of `x` along `axis` into parts of `sizes`; returns one value per part.
    public mutating func split(_ x: Int, axis: Int, sizes: [Int], name: String) throws(GraphError) -> [Int] {
        try check(name, [x])
        let s = shapes[x]
        guard axis > 0, axis < s.count, sizes.allSatisfy({ $0 > 0 }), sizes.reduce(0, +) == s[axis] else {
            throw .shapeMismatch(node: name, op: "Split", reason: "sizes \(sizes) along axis \(axis) of \(s)")
        }
        return append(name, .split(axis: axis, sizes: sizes), [x], sizes.map { var o = s; o[axis] = $0; return o })
    }

    /// Adds a transpose of `x` (`perm[0]` must be 0: the batch stays first).
    public mutating func transpose(_ x: Int, perm: [Int], name: String) throws(GraphError) -> Int {
        try check(name, [x])
        let s = shapes[x]
        guard perm.count == s.count, perm.sorted() == Array(0..<s.count), perm.first == 0 else {
            throw .shapeMismatch(node: name, op: "Transpose", reason: "perm \(perm) for a rank-\(s.count) value (axis 0 must stay first)")
        }
        return append(name, .transpose(perm), [x], [perm.map { s[$0] }])[0]
    }

    /// Adds a reshape of `x` to `[batch] + shape`.
    public mutating func reshape(_ x: Int, to shape: [Int], name: String) throws(GraphError) -> Int {
        try check(name, [x])
        guard shape.allSatisfy({ $0 > 0 }), shape.reduce(1, *) == shapes[x].reduce(1, *) else {
            throw .shapeMismatch(node: name, op: "Reshape", reason: "\(shapes[x]) has \(shapes[x].reduce(1, *)) elements per sample, \(shape) needs \(shape.reduce(1, *))")
        }
        return append(name, .reshape(shape), [x], [[1] + shape])[0]
    }

    /// Adds a constant (its parameter's name is the node's name).
    public mutating func constant(_ parameter: Parameter) throws(GraphError) -> Int {
        try check(parameter.name, [])
        return append(parameter.name, .constant(parameter), [], [parameter.shape])[0]
    }

    /// The graph returning `output`. (Mutating, so that `b.build(output: b.layer(…))` — which
    /// would read the builder before the layer is added — does not compile.)
    public mutating func build(output: Int) throws(GraphError) -> Graph {
        guard output < shapes.count else { throw .unknownValue(node: "(output)", value: output) }
        return Graph(nodes: nodes, valueShapes: shapes, output: output)
    }

    /// The broadcast shape of `a` and `b` (NumPy rules), nil when they do not broadcast.
    public static func broadcast(_ a: [Int], _ b: [Int]) -> [Int]? {
        let rank = max(a.count, b.count)
        let pa = [Int](repeating: 1, count: rank - a.count) + a, pb = [Int](repeating: 1, count: rank - b.count) + b
        var out: [Int] = []
        for (x, y) in zip(pa, pb) {
            guard x == y || x == 1 || y == 1 else { return nil }
            out.append(x == 1 ? y : x)
        }
        return out
    }

    private mutating func check(_ name: String, _ inputs: [Int]) throws(GraphError) {
        guard !names.contains(name) else { throw .duplicateName(name) }
        if let bad = inputs.first(where: { $0 < 0 || $0 >= shapes.count }) { throw .unknownValue(node: name, value: bad) }
    }

    private mutating func append(_ name: String, _ op: NodeOp, _ inputs: [Int], _ outputShapes: [[Int]]) -> [Int] {
        names.insert(name)
        let outputs = Array(shapes.count..<(shapes.count + outputShapes.count))
        shapes += outputShapes
        nodes.append(GraphNode(name: name, op: op, inputs: inputs, outputs: outputs))
        return outputs
    }
}

extension Graph {
    /// A graph running `layers` one after another on an input of per-sample shape `inputShape`
    /// (what a layer list — a "sequential" model — is).
    public static func chain(_ layers: [Module], inputShape: [Int]) throws(GraphError) -> Graph {
        var b = GraphBuilder(inputShape: inputShape)
        let output = try b.layers(layers, b.input)
        return try b.build(output: output)
    }
}

extension Graph {
    /// The same graph with every layer replaced by `transform(layer)` and every constant by
    /// `constant(parameter)` (a copy by default), shapes inferred anew — how pruning extracts
    /// the smaller model. A reshape follows a narrower channel axis: a reshape that kept the
    /// last (channel) axis keeps it at its new width, a flatten to one axis flattens the new
    /// size. Throws when the new layers no longer fit together.
    public func mapLayers(_ transform: (Module) -> Module,
                          constant: (Parameter) -> Parameter = { Parameter(name: $0.name, role: $0.role, value: $0.value) })
        throws(GraphError) -> Graph {
        var b = GraphBuilder(inputShape: inputShape)
        var map = [Int](repeating: -1, count: valueShapes.count)
        map[input] = b.input
        for node in nodes {
            let x = node.inputs.map { map[$0] }
            let outs: [Int]
            switch node.op {
            case let .layer(m): outs = [try b.layer(transform(m), x[0])]
            case .add, .sub, .mul, .div: outs = [try b.binary(node.op, x[0], x[1], name: node.name)]
            case let .concat(axis): outs = [try b.concat(x, axis: axis, name: node.name)]
            case let .split(axis, sizes): outs = try b.split(x[0], axis: axis, sizes: sizes, name: node.name)
            case let .transpose(perm): outs = [try b.transpose(x[0], perm: perm, name: node.name)]
            case let .reshape(shape):
                let old = valueShapes[node.inputs[0]], new = b.shape(x[0])
                var target = shape
                if new != old {
                    if shape.count == 1 {
                        target = [new.dropFirst().reduce(1, *)]
                    } else if shape.last == old.last, let c = new.last {
                        target[target.count - 1] = c
                    }
                }
                outs = [try b.reshape(x[0], to: target, name: node.name)]
            case let .constant(p): outs = [try b.constant(constant(p))]
            }
            for (old, new) in zip(node.outputs, outs) { map[old] = new }
        }
        return try b.build(output: map[output])
    }
}
