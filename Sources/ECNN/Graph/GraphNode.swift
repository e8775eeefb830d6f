import ECTensor

/// What a graph node computes. Layers (`Conv2D`, `Dense`, `BatchNorm`, activations, pooling,
/// `Flatten`…) are `Module`s with one input and one output; the structural ops that join,
/// split or rearrange values are cases of their own.
///
/// Axes are those of the engine's values, batch first: a feature map is `[N, H, W, C]` (NHWC),
/// so the channel axis of a 4-D value is 3.
public enum NodeOp {
    /// A single-input, single-output layer.
    case layer(Module)
    /// Element-wise sum, difference, product or quotient of two values, with NumPy
    /// broadcasting (right-aligned; a dimension of 1 stretches).
    case add, sub, mul, div
    /// The inputs joined along `axis`.
    case concat(axis: Int)
    /// The input cut along `axis` into consecutive parts of the given sizes (one output each).
    case split(axis: Int, sizes: [Int])
    /// The input's axes permuted: output axis `i` is input axis `perm[i]`.
    case transpose([Int])
    /// The input's elements in row-major order under a new shape; `shape` excludes the batch
    /// dimension, which is kept.
    case reshape([Int])
    /// A fixed tensor (no inputs, no batch dimension; broadcast against its partners), held in
    /// a non-trainable parameter so checkpoints, exports and pruning see it.
    case constant(Parameter)

    /// The op's name in errors, summaries and exports (the layer's op type for layers).
    public var opType: String {
        switch self {
        case let .layer(m): return m.opType
        case .add: return "Add"
        case .sub: return "Sub"
        case .mul: return "Mul"
        case .div: return "Div"
        case .concat: return "Concat"
        case .split: return "Split"
        case .transpose: return "Transpose"
        case .reshape: return "Reshape"
        case .constant: return "Constant"
        }
    }

    /// The layer of a `.layer` node.
    public var layer: Module? {
        if case let .layer(m) = self { return m }
        return nil
    }
}

/// One node of a `Graph`: a name (its scope), an op, the values it reads and the values it
/// writes (indices into the graph's values).
public struct GraphNode {
    public let name: String
    public let op: NodeOp
    public let inputs: [Int]
    public let outputs: [Int]

    public init(name: String, op: NodeOp, inputs: [Int], outputs: [Int]) {
        self.name = name
        self.op = op
        self.inputs = inputs
        self.outputs = outputs
    }
}
