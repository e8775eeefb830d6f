import ECNN
import Foundation

/// The pruner's `summary.json` section.
struct PrunerSummary: Encodable, Equatable {
    struct Group: Encodable, Equatable {
        let id: String
        /// The producing layers' scopes.
        let layers: [String]
        let prunable: Bool
        let channelsBefore: Int
        let channelsAfter: Int

        enum CodingKeys: String, CodingKey {
            case id, layers, prunable, channelsBefore = "channels_before", channelsAfter = "channels_after"
        }
    }

    let kind: String
    let compressionRatio: Double
    let achievedRatio: Double
    let prunableParams: Int
    let paramsRemoved: Int
    let paramsBefore: Int
    let paramsAfter: Int
    let flopsBefore: Int
    let flopsAfter: Int
    let trialsDone: Int
    let numTrials: Int
    let groups: [Group]

    enum CodingKeys: String, CodingKey {
        case kind, compressionRatio = "compression_ratio", achievedRatio = "achieved_ratio"
        case prunableParams = "prunable_params", paramsRemoved = "params_removed"
        case paramsBefore = "params_before", paramsAfter = "params_after"
        case flopsBefore = "flops_before", flopsAfter = "flops_after"
        case trialsDone = "trials_done", numTrials = "num_trials", groups
    }
}

extension Pruner {
    /// The summary: the achieved ratio in the unit of `compression_ratio` (removed / prunable
    /// parameters), and the parameters and FLOPs of the model before and of the extracted
    /// (physically smaller) model after, with each group's channels before and after.
    ///
    /// Exact counts, from the element masks rather than from `parametersPerChannel` ×
    /// channels, which would count twice a kernel element whose input and output channels
    /// are both pruned:
    /// - params_after = `model.parameterCount` − the trainable elements the pruned channels
    ///   cover (kernels, biases, batch-norm scales and offsets);
    /// - flops_after = `model.flops` − Σ over Conv2D/MatMul layers of flops(layer) × removed
    ///   kernel elements / kernel elements (a layer's FLOPs are 2 × output positions × kernel
    ///   elements, so they shrink exactly with its kernel).
    ///
    /// - Throws: `PrunerError.notPrepared`; encoding errors.
    public func summarySection(model: Model) throws -> Data {
        try summaryJSON { summary(model: model) }
    }

    func summary(model: Model) -> PrunerSummary {
        let trainableRemoved = elements.removed.reduce(0) { total, entry in
            total + (parameters[entry.key]?.isTrainable == true ? entry.value : 0)
        }
        var flopsRemoved = 0
        for layer in model.layerSummaries {
            let kernel = scopePath(layer.name, "weight")
            guard let removed = elements.removed[kernel], removed > 0, let count = elementCounts[kernel] else { continue }
            flopsRemoved += layer.flops * removed / count
        }
        // In the layers' terms: a group channel of a folded group (grouped convolutions) is
        // several of its producers' output channels.
        let groupLines = groups.map { group in
            let k = group.outputChannelsPerChannel
            return PrunerSummary.Group(id: group.id, layers: group.producers.map { String(Self.layerScope(of: $0)) },
                                       prunable: group.prunable, channelsBefore: group.channels * k,
                                       channelsAfter: (keep[group.id].map { $0.reduce(0) { $0 + ($1 ? 1 : 0) } } ?? group.channels) * k)
        }
        return PrunerSummary(kind: kind, compressionRatio: config.compressionRatio, achievedRatio: achievedRatio,
                             prunableParams: prunableParameterCount, paramsRemoved: removedParameterCount,
                             paramsBefore: model.parameterCount, paramsAfter: model.parameterCount - trainableRemoved,
                             flopsBefore: model.flops, flopsAfter: model.flops - flopsRemoved,
                             trialsDone: trialsDone, numTrials: config.numTrials, groups: groupLines)
    }
}
