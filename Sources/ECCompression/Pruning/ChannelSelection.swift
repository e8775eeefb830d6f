/// Chooses the channels to prune so that the removed parameters reach a target (the chief's
/// global or local sort, docs/pruning.md). Pruning is monotone: channels already pruned stay pruned
/// and count toward the target; no group is left with fewer than one channel.
enum ChannelSelection {
    /// A group's importance normalised so that groups of different size and scale compare:
    ///
    ///     Ĩ_c = I_c / mean_{c' kept} I_c'
    ///
    /// The mean is over the group's channels still kept, so a kept channel of average
    /// importance scores 1 in every layer, whatever the layer's width, fan-in or gradient
    /// scale (raw Taylor scores of a wide MatMul and a thin Conv2D differ by orders of
    /// magnitude). When the mean is 0 (or not finite) the scores are used as they are.
    static func normalized(_ importance: [Float], keep: [Bool]) -> [Double] {
        var sum = 0.0, count = 0
        for (value, isKept) in zip(importance, keep) where isKept {
            sum += Double(value)
            count += 1
        }
        let mean = count > 0 ? sum / Double(count) : 0
        guard mean > 0, mean.isFinite else { return importance.map(Double.init) }
        return importance.map { Double($0) / mean }
    }

    /// Global sort: every kept channel of every group is ranked by
    ///
    ///     key_c = Ĩ_c / parametersPerChannel(group)
    ///
    /// (normalised importance per parameter its removal saves) and pruned lowest-first — ties
    /// by group id, then channel — skipping a group's last kept channel, until
    /// `elements.removedCounted ≥ target`. The target is thus reached within one channel's
    /// parameters. NaN keys rank last.
    static func global(groups: [ChannelGroup], importance: [String: [Float]], keep: inout [String: [Bool]],
                       elements: inout PrunedElements, target: Double) {
        guard Double(elements.removedCounted) < target else { return }
        var candidates: [(key: Double, group: Int, channel: Int)] = []
        var keptCount: [Int] = []
        for (g, group) in groups.enumerated() {
            let flags = keep[group.id]!
            let norm = normalized(importance[group.id]!, keep: flags)
            let cost = Double(group.parametersPerChannel)
            for c in 0..<group.channels where flags[c] {
                let key = norm[c] / cost
                candidates.append((key.isNaN ? .infinity : key, g, c))
            }
            keptCount.append(flags.reduce(0) { $0 + ($1 ? 1 : 0) })
        }
        candidates.sort { a, b in
            if a.key != b.key { return a.key < b.key }
            if a.group != b.group { return a.group < b.group }  // groups are in id order
            return a.channel < b.channel
        }
        for candidate in candidates {
            if Double(elements.removedCounted) >= target { break }
            guard keptCount[candidate.group] > 1 else { continue }
            let group = groups[candidate.group]
            keep[group.id]![candidate.channel] = false
            keptCount[candidate.group] -= 1
            elements.prune(channel: candidate.channel, of: group)
        }
    }

    /// Local sort: every group prunes the same fraction f of its channels — ⌊f·channels⌋, at
    /// most channels − 1, at least what it has already pruned — choosing its lowest-importance
    /// kept channels (raw importance; the order within one group needs no normalisation). f is
    /// the smallest fraction of the form j / channels(g) for which the removed parameters reach
    /// `target` (binary search: the removed count grows with f), or the largest one if none does.
    static func local(groups: [ChannelGroup], importance: [String: [Float]], keep: inout [String: [Bool]],
                      elements: inout PrunedElements, target: Double) {
        guard Double(elements.removedCounted) < target else { return }
        // Each group's kept channels, least important first (ties by channel index).
        let order: [[Int]] = groups.map { group in
            let flags = keep[group.id]!, scores = importance[group.id]!
            return (0..<group.channels).filter { flags[$0] }.sorted { a, b in
                let sa = scores[a].isNaN ? Float.infinity : scores[a]
                let sb = scores[b].isNaN ? Float.infinity : scores[b]
                return sa != sb ? sa < sb : a < b
            }
        }
        // Candidate fractions j/n, as exact rationals, ascending and distinct.
        var fractions: [(j: Int, n: Int)] = []
        for group in groups where group.channels > 1 {
            for j in 1..<group.channels { fractions.append((j, group.channels)) }
        }
        fractions.sort { $0.j * $1.n < $1.j * $0.n }
        fractions = fractions.enumerated().filter { i, f in
            i == 0 || f.j * fractions[i - 1].n != fractions[i - 1].j * f.n
        }.map(\.element)
        guard !fractions.isEmpty else { return }

        func apply(_ f: (j: Int, n: Int), keep: inout [String: [Bool]], elements: inout PrunedElements) {
            for (g, group) in groups.enumerated() {
                let pruned = group.channels - order[g].count
                let wanted = min(group.channels - 1, f.j * group.channels / f.n)
                for c in order[g].prefix(max(0, wanted - pruned)) {
                    keep[group.id]![c] = false
                    elements.prune(channel: c, of: group)
                }
            }
        }
        var low = 0, high = fractions.count - 1
        while low < high {
            let mid = (low + high) / 2
            var trialKeep = keep, trialElements = elements
            apply(fractions[mid], keep: &trialKeep, elements: &trialElements)
            if Double(trialElements.removedCounted) >= target { high = mid } else { low = mid + 1 }
        }
        apply(fractions[low], keep: &keep, elements: &elements)
    }
}
