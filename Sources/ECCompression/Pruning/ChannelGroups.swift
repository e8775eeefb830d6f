import ECNN

/// Finds the dependency groups of a model: the sets of channels that must be pruned together.
///
/// Pruning granularity (docs/pruning.md) is a Conv2D output channel / a Dense output unit. Each
/// Conv2D/Dense output opens a channel space (`ChannelSpaces` walks the graph); spaces tied by
/// an element-wise op (union-find) form one group: with a projection shortcut a residual
/// block's last conv and the projection conv, with an identity shortcut the block's last conv
/// and whatever produced the block's input — so in `resnet-mini` `stem` and `block1/conv2` form
/// one group, and `block2/conv2`, `block2/shortcut` and `block3/conv2` another. One
/// `ChannelGroup` is returned per tied set of spaces with a producer.
///
/// A group's slices:
/// - producers: each producing kernel's output axis (innerStride 1, period C) and its bias;
/// - followers (producer role, innerStride 1): every BatchNorm vector (gamma, beta,
///   moving_mean, moving_variance), depthwise kernel and bias, and per-channel constant acting
///   on the space;
/// - consumers: every layer reading the space — a Conv2D kernel's input axis (innerStride
///   cout, period C), a Dense kernel's rows (innerStride out, period C; after a Flatten of
///   `[H, W, C]` the rows are in H, W, C order, so row r is channel r % C).
/// After a concatenation the followers and consumers of the joined axis have one slice per
/// group, at the group's offset on that axis.
///
/// Units of the per-channel costs:
/// - `parametersPerChannel` counts elements of Conv2D/MatMul kernels and biases removed with
///   one channel: producer (and depthwise) kernel elements per channel + 1 per bias, plus the
///   consumer kernel elements per input channel for consumers whose op type is in
///   `prunableOpTypes` (the "prunable layers' parameters" of `compression_ratio`). BatchNorm
///   vectors and constants are not counted. Pruning channels of two adjacent groups removes the
///   elements at their crossing once, so the sum over groups overestimates a joint pruning by
///   that overlap; the exact count comes from `ModelSurgery.parameterMasks`.
/// - `flopsPerChannel` is the forward FLOPs per sample (multiply-adds × 2) removed in every
///   producer, depthwise and consumer Conv2D/MatMul, at the spatial sizes of the graph.
public enum ChannelGroups {
    /// The dependency groups of `model`, sorted by id.
    ///
    /// Every group with a producer is returned; `prunable` is false when a producer is the
    /// classifier (the model's last layer, or any layer whose outputs reach the model output
    /// unchanged), when a producer's op type is not in `prunableOpTypes`, when a producer's (or
    /// a depthwise follower's) kernel path (`conv1/weight`, so also its layer scope `conv1` and
    /// enclosing scopes) is not in `scopes`, when any layer the group touches is excluded (a
    /// group touching an excluded node is kept whole), or when the space meets an op the
    /// analysis cannot follow.
    ///
    /// - Parameters:
    ///   - model: any graph (`ChannelSpaces` says which ops carry, tie, join or pin channels).
    ///   - prunableOpTypes: op types whose output channels may be pruned (`Conv2D`, `MatMul`).
    ///   - scopes: the include/exclude scopes of the config.
    public static func build(model: Model, prunableOpTypes: [String] = ["Conv2D", "MatMul"],
                             scopes: ScopeFilter = .all) -> [ChannelGroup] {
        var spaces = ChannelSpaces(model: model)
        let prunableTypes = Set(prunableOpTypes)
        var groups: [ChannelGroup] = []
        for (root, members) in spaces.tiedSets() {
            groups.append(group(of: members, channels: spaces.groupChannels(root), in: spaces, prunableTypes: prunableTypes,
                                scopes: scopes))
        }
        return groups.sorted { $0.id < $1.id }
    }

    /// The group of the tied spaces `spaceIDs`, `c` channels as pruning sees them.
    private static func group(of spaceIDs: [Int], channels c: Int, in spaces: ChannelSpaces, prunableTypes: Set<String>,
                              scopes: ScopeFilter) -> ChannelGroup {
        let members = spaceIDs.flatMap { spaces.members[$0] }
        // A member covering `width` axis channels of a folded space stands for width / c of
        // them per group channel.
        func copies(_ m: SpaceMember) -> Int { max(1, m.width / c) }
        func order(_ kind: SpaceMember.Kind) -> [SpaceMember] {
            members.filter { $0.kind == kind }.sorted { ($0.layer, $0.offset) < ($1.layer, $1.offset) }
        }
        let producers = order(.producer), followers = order(.follower), consumers = order(.consumer)

        var slices: [ChannelSlice] = []
        for m in producers + followers + consumers {
            for p in m.parameters {
                slices.append(ChannelSlice(parameter: p.name, role: m.kind == .consumer ? .consumer : .producer,
                                           innerStride: m.innerStride, period: m.period, offset: m.offset,
                                           copies: copies(m), copyStride: c))
            }
        }

        // Per pruned channel: the kernel (and bias) elements of the Conv2D/MatMul layers it
        // removes — producers and channel-by-channel convolutions always, consumers when their
        // op type is prunable — and their FLOPs.
        let parameters = members.filter { $0.isWeightLayer && ($0.kind != .consumer || prunableTypes.contains($0.opType)) }
            .reduce(0) { total, m in total + m.parameters.reduce(0) { $0 + $1.value.count / m.period } * copies(m) }
        let flops = members.reduce(0) { $0 + $1.flopsPerChannel * copies($1) }
        let weightBearing = producers + followers.filter(\.isWeightLayer)
        let prunable = !spaceIDs.contains { spaces.pinned[$0] }
            && producers.allSatisfy { prunableTypes.contains($0.opType) }
            && weightBearing.allSatisfy { scopes.contains($0.parameters[0].name) }
            && !members.contains { scopes.excludes($0.layer) }

        return ChannelGroup(id: producers.map(\.layer).joined(separator: "+"), channels: c, slices: slices,
                            producers: producers.map(\.parameters[0].name), prunable: prunable,
                            parametersPerChannel: parameters, flopsPerChannel: flops)
    }
}
