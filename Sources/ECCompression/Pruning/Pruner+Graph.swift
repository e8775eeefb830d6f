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
    ///
    /// At `prepare`, every include/exclude scope must match a kernel of a layer whose op type is
    /// in `prunable_op_types` (`CompressionConfigError.unmatchedScope`), and with a ratio above
    /// 0 at least one channel group must be prunable (`PrunerError.nothingToPrune`): a job
    /// whose scopes leave nothing to prune is refused, not run as a no-op.
    public convenience init(config: PrunerConfig) throws {
        try self.init(config: config) { model in
            let candidates = model.graph.allModules.filter { config.prunableOpTypes.contains($0.opType) }
                .flatMap { $0.ownParameters.filter { $0.role == .weight }.map(\.name) }
            try ScopeFilter.requireMatches([("pruner.include_scopes", config.includeScopes),
                                            ("pruner.exclude_scopes", config.excludeScopes)],
                                           candidates: candidates,
                                           noun: config.prunableOpTypes.joined(separator: "/") + " kernel", model: model.name)
            let groups = ChannelGroups.build(model: model, prunableOpTypes: config.prunableOpTypes,
                                             scopes: ScopeFilter(include: config.includeScopes, exclude: config.excludeScopes))
            if config.compressionRatio > 0, !groups.contains(where: \.prunable) {
                throw PrunerError.nothingToPrune(model: model.name, includeScopes: config.includeScopes,
                                                 excludeScopes: config.excludeScopes)
            }
            return groups
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
