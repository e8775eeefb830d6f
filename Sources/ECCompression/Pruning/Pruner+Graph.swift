import ECTensor
import ECNN
import Foundation

extension Pruner {
    /// A pruner over the model's own channel groups (`ChannelGroups.build`), with the config's
    /// prunable op types and include/exclude scopes — the usual way to make one:
    ///
    /// ```swift
    /// let pruner = try Pruner(config: PrunerConfig(compressionRatio: 0.5, stepInterval: 1000, numTrials: 10))
    /// let hook = CompressionHook(pruner, saveDir: "output")
    /// ```
    public convenience init(config: PrunerConfig) throws {
        try self.init(config: config) { model in
            ChannelGroups.build(model: model, prunableOpTypes: config.prunableOpTypes,
                                scopes: ScopeFilter(include: config.includeScopes, exclude: config.excludeScopes))
        }
    }
}

extension Pruner {
    /// The keep flags of every prunable group (`pruner/keep/<group id>`, 1 kept, 0 pruned).
    public var decisionTensors: NamedTensors {
        NamedTensors(checkpointTensors().sorted.filter { $0.name.hasPrefix("pruner/keep/") }.map { ($0.name, $0.tensor) })
    }
}

extension Pruner {
    /// Channels before → after per group, and the totals.
    public func summaryRows(model: Model) -> [[String]] {
        var rows = [["channel group", "layers", "channels", "kept"]]
        for g in groups {
            let kept = keepFlags(group: g.id)?.filter { $0 }.count ?? g.channels
            rows.append([g.id, g.producers.map { String($0.split(separator: "/").dropLast().joined(separator: "/")) }
                .joined(separator: ", "), "\(g.channels)", g.prunable ? "\(kept)" : "\(kept) (not prunable)"])
        }
        rows.append(["parameters pruned", String(format: "%.1f%%", achievedRatio * 100),
                     "of \(prunableParameterCount)", String(format: "target %.1f%%", config.compressionRatio * 100)])
        return rows
    }
}
