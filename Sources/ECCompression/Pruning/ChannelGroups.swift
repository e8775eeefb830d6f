import ECNN

/// Finds the dependency groups of a model: the sets of channels that must be pruned together.
///
/// Pruning granularity (docs/pruning.md) is a Conv2D output channel / a Dense output unit. Each
/// Conv2D/Dense output opens a channel space; ReLU, MaxPool, BatchNorm, Flatten and
/// GlobalAvgPool carry it on; a residual add ties the spaces it sums (union-find): with a
/// projection shortcut the body's last conv and the projection conv, with an identity shortcut
/// the body's last conv and whatever produced the block's input — so in `resnet-mini` `stem`
/// and `block1/conv2` form one group, and `block2/conv2`, `block2/shortcut` and `block3/conv2`
/// another. One `ChannelGroup` is returned per tied set of spaces with a producer.
///
/// A group's slices:
/// - producers: each producing kernel's output axis (innerStride 1, period C), its bias, and
///   every BatchNorm vector (gamma, beta, moving_mean, moving_variance) normalising the space;
/// - consumers: every layer reading the space — a Conv2D kernel's input axis (innerStride
///   cout, period C), a Dense kernel's rows (innerStride out, period C; after a Flatten of
///   `[H, W, C]` the rows are in H, W, C order, so row r is channel r % C).
///
/// Units of the per-channel costs:
/// - `parametersPerChannel` counts elements of Conv2D/MatMul kernels and biases removed with
///   one channel: producer kernel elements per output channel + 1 per bias, plus the consumer
///   kernel elements per input channel for consumers whose op type is in `prunableOpTypes`
///   (the "prunable layers' parameters" of `compression_ratio`). BatchNorm vectors are not
///   counted. Pruning channels of two adjacent groups removes the elements at their crossing
///   once, so the sum over groups overestimates a joint pruning by that overlap; the exact
///   count comes from `ModelSurgery.parameterMasks`.
/// - `flopsPerChannel` is the forward FLOPs per sample (multiply-adds × 2) removed in every
///   producer and consumer Conv2D/MatMul, at the spatial sizes the model's `inputShape` gives.
public enum ChannelGroups {
    /// The dependency groups of `model`, sorted by id.
    ///
    /// Every group with a producer is returned; `prunable` is false when a producer is the
    /// classifier (the model's last layer, or any layer whose outputs reach the model output
    /// unchanged), when a producer's op type is not in `prunableOpTypes`, when a producer's
    /// kernel path (`conv1/weight`, so also its layer scope `conv1` and enclosing scopes) is not
    /// in `scopes`, or when the space meets a module the analysis does not know.
    ///
    /// - Parameters:
    ///   - model: a graph of `Conv2D`, `Dense`, `BatchNorm`, `ReLU`, `MaxPool`, `Flatten`,
    ///     `GlobalAvgPool` and element-wise adds (other ops pin the channels they read).
    ///   - prunableOpTypes: op types whose output channels may be pruned (`Conv2D`, `MatMul`).
    ///   - scopes: the include/exclude scopes of the config.
    public static func build(model: Model, prunableOpTypes: [String] = ["Conv2D", "MatMul"],
                             scopes: ScopeFilter = .all) -> [ChannelGroup] {
        var spaces = ChannelSpaces(model: model)
        let prunableTypes = Set(prunableOpTypes)
        return spaces.tiedSets().values.map { members in
            group(of: members, in: spaces, prunableTypes: prunableTypes, scopes: scopes)
        }.sorted { $0.id < $1.id }
    }

    private static func group(of members: [Int], in spaces: ChannelSpaces, prunableTypes: Set<String>,
                              scopes: ScopeFilter) -> ChannelGroup {
        let producers = members.flatMap { spaces.producers[$0] }.sorted { $0.name < $1.name }
        let norms = members.flatMap { spaces.norms[$0] }.sorted { $0.name < $1.name }
        let consumers = members.flatMap { spaces.consumers[$0] }.sorted { $0.name < $1.name }
        let c = spaces.channels[members[0]]

        var slices: [ChannelSlice] = []
        for p in producers {
            slices.append(ChannelSlice(parameter: p.kernel.name, role: .producer, innerStride: 1, period: c))
            if let bias = p.bias {
                slices.append(ChannelSlice(parameter: bias.name, role: .producer, innerStride: 1, period: c))
            }
        }
        for bn in norms {
            for v in bn.ownParameters {
                slices.append(ChannelSlice(parameter: v.name, role: .producer, innerStride: 1, period: c))
            }
        }
        for r in consumers {
            slices.append(ChannelSlice(parameter: r.kernel.name, role: .consumer, innerStride: r.outputs, period: c))
        }

        let producerParameters = producers.reduce(0) { $0 + $1.kernel.value.count / c + ($1.bias == nil ? 0 : 1) }
        let consumerParameters = consumers.filter { prunableTypes.contains($0.opType) }
            .reduce(0) { $0 + $1.kernel.value.count / c }
        let flops = (producers + consumers).reduce(0) { $0 + $1.flops / c }
        let prunable = !members.contains { spaces.pinned[$0] }
            && producers.allSatisfy { prunableTypes.contains($0.opType) && scopes.contains($0.kernel.name) }

        return ChannelGroup(id: producers.map(\.name).joined(separator: "+"), channels: c, slices: slices,
                            producers: producers.map(\.kernel.name), prunable: prunable,
                            parametersPerChannel: producerParameters + consumerParameters, flopsPerChannel: flops)
    }
}
