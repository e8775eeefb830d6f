import ECNN
import ECTensor

/// Turns channel-keep decisions into element masks, a masked model, or a physically smaller
/// model (the seed's GapFinetune).
///
/// `keep` maps a `ChannelGroup.id` to one flag per channel (`true` = kept). Groups absent from
/// `keep` keep every channel. Preconditions (the pruner's responsibility, not user input):
/// every key names a group, the flags have `channels` entries, at least one channel is kept,
/// and a group that is not `prunable` keeps all its channels.
public enum ModelSurgery {
    /// The element mask of a parameter of shape `shape` for one slice: element `e` is kept iff
    /// its group channel `slice.channel(ofElement: e)` is kept (elements of the axis outside
    /// the slice's channels are kept).
    ///
    /// - Precondition: `slice.offset + keep.count <= slice.period` and the element count is a
    ///   multiple of `innerStride · period`.
    public static func mask(for slice: ChannelSlice, shape: [Int], keep: [Bool]) -> Mask {
        let count = shape.reduce(1, *)
        precondition(slice.offset + keep.count * slice.copies <= slice.period,
                     "\(slice.parameter): \(keep.count) keep flags at offset \(slice.offset) for a period of \(slice.period)")
        precondition(count % (slice.innerStride * slice.period) == 0,
                     "\(slice.parameter): shape \(shape) is not a whole number of \(slice.innerStride)×\(slice.period) blocks")
        var values = [Bool](repeating: false, count: count)
        values.withUnsafeMutableBufferPointer { out in
            var e = 0
            while e < count {
                for a in 0..<slice.period {
                    let c = slice.copies == 1 ? a - slice.offset : slice.channel(ofElement: a * slice.innerStride)
                    if c < 0 || c >= keep.count || keep[c] { (out.baseAddress! + e).update(repeating: true, count: slice.innerStride) }
                    e += slice.innerStride
                }
            }
        }
        return Mask(shape: shape, values: values)
    }

    /// The element mask of every parameter that a group in `keep` slices: the AND of the
    /// masks of all slices on it (a kernel that both produces and consumes pruned channels
    /// loses the rows and the columns). Parameters not listed are untouched.
    public static func parameterMasks(model: Model, groups: [ChannelGroup], keep: [String: [Bool]]) -> [String: Mask] {
        let parameters = parametersByName(model)
        var masks: [String: Mask] = [:]
        for (group, flags) in decisions(groups: groups, keep: keep) {
            for slice in group.slices {
                guard let p = parameters[slice.parameter] else {
                    preconditionFailure("group \(group.id): model has no parameter \(slice.parameter)")
                }
                let m = mask(for: slice, shape: p.shape, keep: flags)
                if let previous = masks[slice.parameter] {
                    masks[slice.parameter] = Mask(shape: m.shape, values: zip(previous.values, m.values).map { $0 && $1 })
                } else {
                    masks[slice.parameter] = m
                }
            }
        }
        return masks
    }

    /// Zeroes, in place, every element of every slice whose channel is not kept (weights,
    /// biases, batch-norm vectors and statistics, consumer inputs): the masked large model,
    /// whose outputs the shrunk model reproduces.
    public static func applyMasks(model: Model, groups: [ChannelGroup], keep: [String: [Bool]]) {
        let parameters = parametersByName(model)
        for (name, mask) in parameterMasks(model: model, groups: groups, keep: keep) {
            let p = parameters[name]!
            mask.values.withUnsafeBufferPointer { flags in
                p.value.withUnsafeMutableBufferPointer { v in
                    for i in 0..<v.count where !flags[i] { v[i] = 0 }
                }
            }
        }
    }

    /// The validated `(group, flags)` pairs for the groups named in `keep`.
    static func decisions(groups: [ChannelGroup], keep: [String: [Bool]]) -> [(ChannelGroup, [Bool])] {
        let known = Set(groups.map(\.id))
        for id in keep.keys { precondition(known.contains(id), "keep names \(id), which is not a channel group") }
        return groups.compactMap { group in
            guard let flags = keep[group.id] else { return nil }
            precondition(flags.count == group.channels,
                         "group \(group.id): \(flags.count) keep flags for \(group.channels) channels")
            precondition(flags.contains(true), "group \(group.id): at least one channel must be kept")
            precondition(group.prunable || !flags.contains(false),
                         "group \(group.id) is not prunable but \(flags.filter { !$0 }.count) channels are dropped")
            return (group, flags)
        }
    }

    static func parametersByName(_ model: Model) -> [String: Parameter] {
        Dictionary(model.parameters.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
    }
}
