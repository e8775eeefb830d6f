import ECNN
import ECTensor

// The pruner's checks of what it is given (groups, decisions) and its element-mask kernel.
extension Pruner {
    /// Checks that `groups` describe the model: unique non-empty ids, each slice in an existing
    /// parameter with `period == channels` and an element count that is a multiple of
    /// `period · innerStride`; a prunable group has a positive cost and a scored producer.
    static func check(_ groups: [ChannelGroup], parameters: [String: Parameter]) throws {
        var seen = Set<String>()
        for group in groups {
            guard !group.id.isEmpty else { throw PrunerError.invalidGroup(group: group.id, reason: "empty id") }
            guard seen.insert(group.id).inserted else {
                throw PrunerError.invalidGroup(group: group.id, reason: "two groups have this id")
            }
            guard group.channels > 0 else {
                throw PrunerError.invalidGroup(group: group.id, reason: "\(group.channels) channels, expected > 0")
            }
            for slice in group.slices {
                guard let p = parameters[slice.parameter] else {
                    throw PrunerError.invalidGroup(group: group.id, reason: "the model has no parameter '\(slice.parameter)'")
                }
                guard slice.offset + group.channels * slice.copies <= slice.period,
                      slice.copies == 1 || slice.copyStride == group.channels else {
                    throw PrunerError.invalidGroup(group: group.id, reason: "slice of \(slice.parameter) has period "
                                                   + "\(slice.period) and offset \(slice.offset)"
                                                   + (slice.copies > 1 ? " (\(slice.copies) copies \(slice.copyStride) apart)" : "")
                                                   + ", the group has \(group.channels) channels")
                }
                guard p.value.count % (slice.period * slice.innerStride) == 0 else {
                    throw PrunerError.invalidGroup(group: group.id, reason: "\(slice.parameter) \(p.shape) has "
                                                   + "\(p.value.count) elements, not a multiple of period \(slice.period) "
                                                   + "× innerStride \(slice.innerStride)")
                }
            }
            guard group.prunable else { continue }
            guard group.parametersPerChannel > 0 else {
                throw PrunerError.invalidGroup(group: group.id,
                                               reason: "parametersPerChannel is \(group.parametersPerChannel), expected > 0")
            }
            guard !TaylorImportance.scoredSlices(of: group, parameters: parameters).isEmpty else {
                throw PrunerError.invalidGroup(group: group.id, reason: "no producer kernel or bias slice to score")
            }
        }
    }

    /// Checks one broadcast keep mask: shape `[channels]`, ≥ 1 kept, no pruned channel revived.
    static func checkDecision(_ mask: Mask, group: ChannelGroup, current: [Bool]) throws {
        guard mask.shape == [group.channels] else {
            throw PrunerError.decisionMismatch(group: group.id, reason: "mask shape \(mask.shape), expected [\(group.channels)]")
        }
        guard mask.keptCount > 0 else {
            throw PrunerError.decisionMismatch(group: group.id, reason: "every channel pruned")
        }
        if let c = zip(mask.values, current).enumerated().first(where: { $0.element.0 && !$0.element.1 })?.offset {
            throw PrunerError.decisionMismatch(group: group.id, reason: "channel \(c) was pruned and is kept again")
        }
    }

    /// The layer scope of a parameter path: `block1/conv2/weight` → `block1/conv2`.
    static func layerScope(of parameter: String) -> Substring {
        guard let slash = parameter.lastIndex(of: "/") else { return "" }
        return parameter[..<slash]
    }
}
