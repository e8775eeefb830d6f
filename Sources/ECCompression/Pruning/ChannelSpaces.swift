import ECNN

/// A Conv2D or Dense layer seen by the channel analysis: its kernel, bias and forward FLOPs at
/// the spatial size it runs on.
struct WeightLayer {
    let name: String
    let opType: String
    let kernel: Parameter
    let bias: Parameter?
    /// The kernel's output width (`cout` of a Conv2D `[kh, kw, cin, cout]`, `out` of `[in, out]`).
    let outputs: Int
    /// Forward FLOPs per sample (multiply-adds × 2).
    let flops: Int
}

/// The tensor flowing between two layers during the walk: which channel space its channel
/// axis belongs to (nil for the model input or an opaque value), its shape with the batch
/// dimension, and, once flattened, how many positions each channel has (`H·W`; 1 otherwise).
struct ChannelStream {
    var space: Int?
    var shape: [Int]
    var spatial: Int
}

/// The channel spaces of a network and the layers that produce, normalise and read them,
/// with union-find over the spaces a residual add ties together.
///
/// The walk visits the graph's nodes in order, with a stream per value. A space is created by
/// every Conv2D/Dense output. ReLU, MaxPool, BatchNorm, Flatten and GlobalAvgPool keep the
/// space of their input (Flatten and GlobalAvgPool record how many positions per channel the
/// flattened vector holds). An element-wise add of two feature maps unites their spaces — a
/// residual block's body with its projection shortcut, or with an identity shortcut the
/// block's input space — so `stem`, `block1/conv2`, … become one space. A space that cannot be
/// pruned safely (the model output, an add onto the raw input, any other op) is pinned.
struct ChannelSpaces {
    private var parent: [Int] = []
    private(set) var channels: [Int] = []
    private(set) var producers: [[WeightLayer]] = []
    private(set) var norms: [[BatchNorm]] = []
    private(set) var consumers: [[WeightLayer]] = []
    private(set) var pinned: [Bool] = []
    /// The space of the last Conv2D/Dense met: the classifier's outputs.
    private var lastProducerSpace: Int?

    /// Walks `model` and records its channel spaces.
    init(model: Model) {
        let graph = model.graph
        var streams = [ChannelStream?](repeating: nil, count: graph.valueShapes.count)
        streams[graph.input] = ChannelStream(space: nil, shape: graph.valueShapes[graph.input], spatial: 1)
        for node in graph.nodes {
            let inputs = node.inputs.map { streams[$0]! }
            for (v, out) in zip(node.outputs, visit(node, inputs, graph)) { streams[v] = out }
        }
        pin(streams[graph.output]!.space)
        pin(lastProducerSpace)
    }

    /// The representative of `space`'s tied set.
    mutating func find(_ space: Int) -> Int {
        var root = space
        while parent[root] != root { root = parent[root] }
        var s = space
        while parent[s] != root { (s, parent[s]) = (parent[s], root) }
        return root
    }

    /// The tied sets: representative → member spaces, for sets with at least one producer.
    mutating func tiedSets() -> [Int: [Int]] {
        var sets: [Int: [Int]] = [:]
        for s in parent.indices { sets[find(s), default: []].append(s) }
        return sets.filter { $0.value.contains { !producers[$0].isEmpty } }
    }

    // MARK: - The walk

    /// The streams node `node` writes, given the streams it reads.
    private mutating func visit(_ node: GraphNode, _ inputs: [ChannelStream], _ graph: Graph) -> [ChannelStream] {
        let shapes = node.outputs.map { graph.valueShapes[$0] }
        switch node.op {
        case let .layer(module):
            return [layer(module, inputs[0])]
        case .add where inputs.count == 2 && inputs[0].shape == inputs[1].shape:
            return [ChannelStream(space: tie(inputs[0].space, inputs[1].space), shape: shapes[0], spatial: inputs[0].spatial)]
        default:
            // Another op: it may mix channels or reorder them; keep its inputs whole.
            for x in inputs { pin(x.space) }
            return shapes.map { ChannelStream(space: nil, shape: $0, spatial: 1) }
        }
    }

    /// The stream a layer writes.
    private mutating func layer(_ module: Module, _ x: ChannelStream) -> ChannelStream {
        switch module {
        case let conv as Conv2D:
            let layer = WeightLayer(name: conv.name, opType: conv.opType, kernel: conv.weight, bias: conv.bias,
                                    outputs: conv.outChannels, flops: conv.flops(for: Array(x.shape.dropFirst())))
            consume(x, by: layer, period: conv.inChannels)
            return ChannelStream(space: produce(layer), shape: conv.outputShape(for: x.shape), spatial: 1)
        case let dense as Dense:
            let layer = WeightLayer(name: dense.name, opType: dense.opType, kernel: dense.weight, bias: dense.bias,
                                    outputs: dense.outputs, flops: dense.flops(for: Array(x.shape.dropFirst())))
            precondition(dense.inputs % x.spatial == 0,
                         "\(dense.name): \(dense.inputs) inputs are not \(x.spatial) positions × channels")
            consume(x, by: layer, period: dense.inputs / x.spatial)
            return ChannelStream(space: produce(layer), shape: dense.outputShape(for: x.shape), spatial: 1)
        case let bn as BatchNorm:
            if let s = x.space {
                precondition(bn.channels == channels[s], "\(bn.name): \(bn.channels) channels, input has \(channels[s])")
                norms[s].append(bn)
            }
            return x
        case is ReLU, is MaxPool:
            return ChannelStream(space: x.space, shape: module.outputShape(for: x.shape), spatial: x.spatial)
        case is Flatten:
            let spatial = x.shape.count == 4 ? x.shape[1] * x.shape[2] : x.spatial
            return ChannelStream(space: x.space, shape: module.outputShape(for: x.shape), spatial: spatial)
        case is GlobalAvgPool:
            return ChannelStream(space: x.space, shape: module.outputShape(for: x.shape), spatial: 1)
        default:
            // Unknown: it may mix channels or own weights we cannot shrink; keep its input whole.
            pin(x.space)
            return ChannelStream(space: nil, shape: module.outputShape(for: x.shape), spatial: 1)
        }
    }

    /// Records `layer` as a reader of the stream's space, whose channel count must be `period`.
    private mutating func consume(_ x: ChannelStream, by layer: WeightLayer, period: Int) {
        guard let s = x.space else { return }
        precondition(period == channels[s], "\(layer.name): reads \(period) channels, its input has \(channels[s])")
        consumers[s].append(layer)
    }

    /// A new space holding `layer`'s outputs.
    private mutating func produce(_ layer: WeightLayer) -> Int {
        let s = parent.count
        parent.append(s)
        channels.append(layer.outputs)
        producers.append([layer])
        norms.append([])
        consumers.append([])
        pinned.append(false)
        lastProducerSpace = s
        return s
    }

    /// Unites the spaces a residual add sums; adding onto an opaque value pins the other side.
    private mutating func tie(_ a: Int?, _ b: Int?) -> Int? {
        guard let a, let b else {
            pin(a ?? b)
            return a ?? b
        }
        let (ra, rb) = (find(a), find(b))
        precondition(channels[ra] == channels[rb], "residual add of \(channels[ra]) and \(channels[rb]) channels")
        if ra != rb {
            parent[rb] = ra
            pinned[ra] = pinned[ra] || pinned[rb]
        }
        return ra
    }

    private mutating func pin(_ space: Int?) {
        guard let space else { return }
        pinned[find(space)] = true
    }
}
