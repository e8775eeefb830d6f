import ECNN

/// A parameter region tied to a channel space: what it costs per channel and how to find the
/// channel's elements (`ChannelSlice`).
struct SpaceMember {
    enum Kind { case producer, follower, consumer }
    /// `producer`: the Conv2D/Dense whose outputs open the space; `follower`: a layer acting
    /// channel by channel on it (batch norm, a depthwise convolution, a per-channel constant);
    /// `consumer`: a Conv2D/Dense reading it.
    let kind: Kind
    /// The layer's (node's) scope.
    let layer: String
    let opType: String
    /// The parameters the channel lives in (kernel and bias; batch-norm vectors; a constant).
    let parameters: [Parameter]
    let innerStride: Int
    /// The parameter's channel axis length and where this space starts on it.
    let period: Int
    let offset: Int
    /// Whether the parameters are a Conv2D/MatMul kernel (and bias): what `compression_ratio` counts.
    let isWeightLayer: Bool
    /// Forward FLOPs per sample per channel of the axis.
    let flopsPerChannel: Int
    /// The axis channels this member covers of the space: all of them (a producer, a follower,
    /// a consumer's segment), or one group's share (a grouped convolution's kernel input axis).
    let width: Int
}

/// The tensor flowing between two nodes during the walk: which channel spaces its channel
/// axis holds, in order (nil: channels not tracked — the model input, or after an op that
/// mixes them), its shape with the batch dimension, and, once flattened, how many positions
/// each channel has (`H·W`; 1 otherwise).
struct ChannelStream {
    /// Consecutive runs of the channel axis, each one space's channels.
    struct Segment: Equatable {
        var space: Int
        var count: Int
    }
    var segments: [Segment]?
    var shape: [Int]
    var spatial: Int
    /// The graph constant this value is, if it is one.
    var constant: Parameter? = nil

    static func opaque(_ shape: [Int]) -> ChannelStream { ChannelStream(segments: nil, shape: shape, spatial: 1) }
    /// The channel count: the spaces' widths (after a flatten, not the feature count).
    var channels: Int { segments.map { $0.reduce(0) { $0 + $1.count } } ?? (shape.last ?? 0) }
    /// `(segment, offset on the axis)` pairs.
    var placed: [(Segment, Int)] {
        var offset = 0
        return (segments ?? []).map { s in defer { offset += s.count }; return (s, offset) }
    }
}

/// The channel spaces of a graph and the layers that produce, follow and read them, with
/// union-find over the spaces the graph ties together — the dependency analysis of structured
/// pruning (the groups of DepGraph, Fang et al., CVPR 2023).
///
/// The walk visits the nodes in order with a stream per value:
/// - every Conv2D/Dense output opens a space; the layer reads its input's spaces (a consumer);
/// - batch norm, a depthwise convolution (one input channel per group, multiplier 1) and an
///   add/multiply with a per-channel constant act channel by channel: followers of the input's
///   spaces, which pass on;
/// - activations, pooling, dropout-like layers pass the spaces on; Flatten and a flattening
///   reshape record how many positions each channel has (the Dense after them reads a channel
///   as its H×W block of rows); global average pooling keeps the spaces with one position;
/// - an element-wise op of two feature maps ties their spaces run by run (residual adds, a
///   squeeze-excitation multiply);
/// - a concatenation along channels lays its inputs' spaces side by side (its readers get one
///   slice per space, at the space's offset); a split along channels hands each part its spaces
///   when the cut falls between them;
/// - a grouped convolution (G groups, not depthwise) reads one space and opens one: both are
///   folded by G — every group keeps the same channels, so channel j of group 0 is pruned
///   with channel j of every other group (the spaces' tied sets fold by the least common
///   multiple of what their members need, or are pinned when the width does not divide);
/// - anything else (a reshape that is not a flatten, a transpose, a split inside a space, a
///   grouped convolution reading a concatenation) pins what it reads: those channels are never
///   pruned.
/// The model output and the classifier's outputs are pinned.
struct ChannelSpaces {
    private var parent: [Int] = []
    private(set) var channels: [Int] = []
    private(set) var members: [[SpaceMember]] = []
    private(set) var pinned: [Bool] = []
    /// Per space (read at its set's representative): by how many the channels fold.
    private(set) var fold: [Int] = []
    /// The space of the last Conv2D/Dense met: the classifier's outputs.
    private var lastProducerSpace: Int?

    /// Walks `model` and records its channel spaces.
    init(model: Model) {
        let graph = model.graph
        var streams = [ChannelStream?](repeating: nil, count: graph.valueShapes.count)
        streams[graph.input] = .opaque(graph.valueShapes[graph.input])
        for node in graph.nodes {
            let inputs = node.inputs.map { streams[$0]! }
            let shapes = node.outputs.map { graph.valueShapes[$0] }
            for (v, out) in zip(node.outputs, visit(node, inputs, shapes)) { streams[v] = out }
        }
        pin(streams[graph.output]!)
        if let s = lastProducerSpace { pinned[find(s)] = true }
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
        return sets.filter { $0.value.contains { space in members[space].contains { $0.kind == .producer } } }
    }

    // MARK: - The walk

    /// The streams a node writes, given the streams it reads.
    private mutating func visit(_ node: GraphNode, _ inputs: [ChannelStream], _ shapes: [[Int]]) -> [ChannelStream] {
        switch node.op {
        case let .layer(module):
            return [layer(module, inputs[0], shapes[0])]
        case .add, .sub, .mul, .div:
            return [elementwise(inputs, shapes[0])]
        case let .constant(p):
            var c = ChannelStream.opaque(shapes[0])
            c.constant = p
            return [c]
        case let .concat(axis) where axis == shapes[0].count - 1 && shapes[0].count > 1:
            guard inputs.allSatisfy({ $0.segments != nil }) else { return [pinAll(inputs, shapes[0])] }
            return [ChannelStream(segments: inputs.flatMap { $0.segments! }, shape: shapes[0], spatial: inputs[0].spatial)]
        case let .split(axis, sizes) where axis == inputs[0].shape.count - 1 && inputs[0].segments != nil:
            // Each part gets whole spaces, or the split cuts a space and pins it.
            var parts: [ChannelStream] = [], rest = inputs[0].segments![...]
            for (size, shape) in zip(sizes, shapes) {
                var taken: [ChannelStream.Segment] = [], width = 0
                while width < size, let s = rest.first { taken.append(s); width += s.count; rest = rest.dropFirst() }
                guard width == size else { return pinAll(inputs, shapes) }
                parts.append(ChannelStream(segments: taken, shape: shape, spatial: inputs[0].spatial))
            }
            return parts
        case let .reshape(target) where inputs[0].segments != nil:
            let x = inputs[0]
            if target.count == 1 && x.shape.count == 4 {  // a flatten of [H, W, C] in storage order
                return [ChannelStream(segments: x.segments, shape: shapes[0], spatial: x.shape[1] * x.shape[2] * x.spatial)]
            }
            if target.last == x.channels && shapes[0].dropFirst().dropLast().allSatisfy({ $0 == 1 })
                && x.shape.dropFirst().dropLast().allSatisfy({ $0 == 1 }) {  // only unit axes move
                return [ChannelStream(segments: x.segments, shape: shapes[0], spatial: x.spatial)]
            }
            return pinAll(inputs, shapes)
        default:
            return pinAll(inputs, shapes)
        }
    }

    /// The stream a layer writes.
    private mutating func layer(_ module: Module, _ x: ChannelStream, _ shape: [Int]) -> ChannelStream {
        switch module {
        case let conv as Conv2D where conv.groups == 1:
            consume(x, by: conv.name, conv.opType, conv.weight, outputs: conv.outChannels,
                    flops: conv.flops(for: Array(x.shape.dropFirst())))
            return produce(conv.name, conv.opType, [conv.weight] + (conv.bias.map { [$0] } ?? []), outputs: conv.outChannels,
                           flops: conv.flops(for: Array(x.shape.dropFirst())), shape: shape)
        case let conv as Conv2D where conv.isDepthwise && conv.outChannels == conv.inChannels && x.segments != nil:
            let flops = conv.flops(for: Array(x.shape.dropFirst()))
            follow(x, by: conv.name, conv.opType, [conv.weight] + (conv.bias.map { [$0] } ?? []), isWeightLayer: true,
                   flopsPerChannel: flops / conv.outChannels)
            return ChannelStream(segments: x.segments, shape: shape, spatial: 1)
        case let conv as Conv2D where conv.groups > 1 && x.segments?.count == 1:
            let flops = conv.flops(for: Array(x.shape.dropFirst())), perGroup = conv.weight.shape[2]
            let input = x.segments![0].space
            fold(input, by: conv.groups)
            members[input].append(SpaceMember(kind: .consumer, layer: conv.name, opType: conv.opType, parameters: [conv.weight],
                                              innerStride: conv.outChannels, period: perGroup, offset: 0, isWeightLayer: true,
                                              flopsPerChannel: flops / perGroup, width: perGroup))
            let out = produce(conv.name, conv.opType, [conv.weight] + (conv.bias.map { [$0] } ?? []), outputs: conv.outChannels,
                              flops: flops, shape: shape)
            fold(out.segments![0].space, by: conv.groups)
            return out
        case let dense as Dense:
            precondition(dense.inputs % x.spatial == 0,
                         "\(dense.name): \(dense.inputs) inputs are not \(x.spatial) positions × channels")
            consume(x, by: dense.name, dense.opType, dense.weight, outputs: dense.outputs,
                    flops: dense.flops(for: Array(x.shape.dropFirst())))
            return produce(dense.name, dense.opType, [dense.weight] + (dense.bias.map { [$0] } ?? []), outputs: dense.outputs,
                           flops: dense.flops(for: Array(x.shape.dropFirst())), shape: shape)
        case let bn as BatchNorm:
            follow(x, by: bn.name, bn.opType, bn.ownParameters, isWeightLayer: false, flopsPerChannel: 0)
            return x
        case is ReLU, is ActivationLayer, is MaxPool, is AvgPool:
            return ChannelStream(segments: x.segments, shape: shape, spatial: x.spatial)
        case is Flatten:
            let spatial = x.shape.count == 4 ? x.shape[1] * x.shape[2] : x.spatial
            return ChannelStream(segments: x.segments, shape: shape, spatial: spatial)
        case is GlobalAvgPool:
            return ChannelStream(segments: x.segments, shape: shape, spatial: 1)
        default:
            // Unknown, or a grouped convolution: it may mix channels or own weights we cannot
            // shrink; keep its input whole.
            pin(x)
            return .opaque(shape)
        }
    }

    /// An element-wise op: two feature maps tie their spaces run by run; a constant operand
    /// with a channel axis follows the other operand's spaces; one with a single channel, or a
    /// broadcast over positions, passes the spaces on.
    private mutating func elementwise(_ inputs: [ChannelStream], _ shape: [Int]) -> ChannelStream {
        let (a, b) = (inputs[0], inputs[1])
        let aFull = a.channels == shape.last, bFull = b.channels == shape.last
        // A per-channel constant (`[C]`, `[1, 1, 1, C]`) follows the feature map's spaces.
        for (x, k) in [(a, b), (b, a)] {
            guard let p = k.constant, x.segments != nil, k.channels == x.channels, k.channels > 1 else { continue }
            guard k.shape.dropLast().allSatisfy({ $0 == 1 }), x.channels == shape.last else { return pinAll(inputs, shape) }
            follow(x, by: p.name, "Constant", [p], isWeightLayer: false, flopsPerChannel: 0)
            return ChannelStream(segments: x.segments, shape: shape, spatial: x.spatial)
        }
        // An operand of one channel stretched over all of them (a spatial gate) leaves the
        // other's channels alone.
        let width = shape.last ?? 0
        let aStretched = a.shape.last == 1 && width > 1, bStretched = b.shape.last == 1 && width > 1
        switch (a.segments, b.segments) {
        case let (sa?, sb?) where aFull && bFull:
            guard sa.map(\.count) == sb.map(\.count) else { return pinAll(inputs, shape) }
            var tied: [ChannelStream.Segment] = []
            for (x, y) in zip(sa, sb) { tied.append(ChannelStream.Segment(space: tie(x.space, y.space), count: x.count)) }
            return ChannelStream(segments: tied, shape: shape, spatial: a.spatial)
        case (_?, _) where aFull && bStretched:
            return ChannelStream(segments: a.segments, shape: shape, spatial: a.spatial)
        case (_, _?) where bFull && aStretched:
            return ChannelStream(segments: b.segments, shape: shape, spatial: b.spatial)
        default:
            return pinAll(inputs, shape)
        }
    }

    // MARK: - Members

    /// Records `layer` as a reader of every space of `x`.
    private mutating func consume(_ x: ChannelStream, by layer: String, _ opType: String, _ kernel: Parameter, outputs: Int,
                                  flops: Int) {
        for (segment, offset) in x.placed {
            members[segment.space].append(SpaceMember(kind: .consumer, layer: layer, opType: opType, parameters: [kernel],
                                                      innerStride: outputs, period: x.channels, offset: offset,
                                                      isWeightLayer: true, flopsPerChannel: flops / x.channels,
                                                      width: segment.count))
        }
    }

    /// Records a channel-by-channel layer on every space of `x`.
    private mutating func follow(_ x: ChannelStream, by layer: String, _ opType: String, _ parameters: [Parameter],
                                 isWeightLayer: Bool, flopsPerChannel: Int) {
        for (segment, offset) in x.placed {
            members[segment.space].append(SpaceMember(kind: .follower, layer: layer, opType: opType, parameters: parameters,
                                                      innerStride: 1, period: x.channels, offset: offset,
                                                      isWeightLayer: isWeightLayer, flopsPerChannel: flopsPerChannel,
                                                      width: segment.count))
        }
    }

    /// A new space holding a layer's outputs.
    private mutating func produce(_ layer: String, _ opType: String, _ parameters: [Parameter], outputs: Int, flops: Int,
                                  shape: [Int]) -> ChannelStream {
        let s = parent.count
        parent.append(s)
        channels.append(outputs)
        members.append([SpaceMember(kind: .producer, layer: layer, opType: opType, parameters: parameters, innerStride: 1,
                                    period: outputs, offset: 0, isWeightLayer: true, flopsPerChannel: flops / outputs,
                                    width: outputs)])
        pinned.append(false)
        fold.append(1)
        lastProducerSpace = s
        return ChannelStream(segments: [.init(space: s, count: outputs)], shape: shape, spatial: 1)
    }

    /// Unites two spaces an element-wise op joins.
    private mutating func tie(_ a: Int, _ b: Int) -> Int {
        let (ra, rb) = (find(a), find(b))
        precondition(channels[ra] == channels[rb], "element-wise op on \(channels[ra]) and \(channels[rb]) channels")
        if ra != rb {
            parent[rb] = ra
            pinned[ra] = pinned[ra] || pinned[rb]
            fold(ra, by: fold[rb])
        }
        return ra
    }

    /// Folds `space`'s set by `factor` too (the least common multiple of its folds), or pins
    /// it when its width is not a multiple of that.
    private mutating func fold(_ space: Int, by factor: Int) {
        let root = find(space)
        func gcd(_ a: Int, _ b: Int) -> Int { b == 0 ? a : gcd(b, a % b) }
        let lcm = fold[root] / gcd(fold[root], factor) * factor
        if channels[root] % lcm == 0 { fold[root] = lcm } else { pinned[root] = true }
    }

    /// The channels of `space`'s set as pruning sees them: its width over its fold.
    mutating func groupChannels(_ space: Int) -> Int {
        let root = find(space)
        return channels[root] / fold[root]
    }

    private mutating func pin(_ x: ChannelStream) {
        for s in x.segments ?? [] { pinned[find(s.space)] = true }
    }

    /// Pins what the op reads; its outputs are opaque.
    private mutating func pinAll(_ inputs: [ChannelStream], _ shape: [Int]) -> ChannelStream {
        pinAll(inputs, [shape])[0]
    }

    private mutating func pinAll(_ inputs: [ChannelStream], _ shapes: [[Int]]) -> [ChannelStream] {
        for x in inputs { pin(x) }
        return shapes.map { .opaque($0) }
    }
}
