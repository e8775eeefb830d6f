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
    ///     key_c = Ĩ_c / parametersPerChannel(group)      (cost .params)
    ///     key_c = Ĩ_c / flopsPerChannel(group)           (cost .flops)
    ///
    /// (normalised importance per parameter, or per forward FLOP, its removal saves; a group
    /// with no FLOPs counted falls back to its parameters) and pruned lowest-first — ties
    /// by group id, then channel — never below a group's `floor`, until
    /// `elements.removedCounted ≥ target`. NaN keys rank last.
    ///
    /// With `widths` other than `.any` a group's channels go in chunks that keep its count one
    /// of the allowed widths: its least important kept channels, as many as bring it to the next
    /// allowed width below; a chunk's key is the mean of its channels' keys (non-decreasing
    /// within a group, so taking the lowest chunk of any group each time is the same greedy).
    /// With `.any` every chunk is one channel and the order is the plain ranking above. The
    /// target is thus reached within one chunk's parameters.
    static func global(groups: [ChannelGroup], importance: [String: [Float]], keep: inout [String: [Bool]],
                       elements: inout PrunedElements, target: Double, widths: ChannelWidths = .any,
                       cost: PruneSortCost = .params) {
        guard Double(elements.removedCounted) < target else { return }
        // Each group's kept channels with their keys, least important first (ties by channel).
        var queues: [(channels: [(key: Double, channel: Int)], next: Int)] = []
        for group in groups {
            let flags = keep[group.id]!
            let norm = normalized(importance[group.id]!, keep: flags)
            let cost = Double(cost == .flops && group.flopsPerChannel > 0 ? group.flopsPerChannel : group.parametersPerChannel)
            let kept = (0..<group.channels).filter { flags[$0] }.map { c -> (key: Double, channel: Int) in
                let key = norm[c] / cost
                return (key.isNaN ? .infinity : key, c)
            }
            queues.append((kept.sorted { $0.key != $1.key ? $0.key < $1.key : $0.channel < $1.channel }, 0))
        }
        // The next chunk of group g: its channel range in the queue and its key; nil when the
        // group is at its floor.
        func chunk(_ g: Int) -> (range: Range<Int>, key: Double)? {
            let queue = queues[g], left = queue.channels.count - queue.next
            guard let next = widths.of(groups[g]).next(below: left, channels: groups[g].channels) else { return nil }
            let size = left - next, range = queue.next..<(queue.next + size)
            let sum = queue.channels[range].reduce(0.0) { $0 + $1.key }
            return (range, sum.isNaN ? .infinity : sum / Double(size))
        }
        var heads = groups.indices.map(chunk)
        while Double(elements.removedCounted) < target {
            // The lowest key; ties go to the lower group (groups are in id order).
            var best: Int?
            for g in groups.indices {
                guard let head = heads[g] else { continue }
                if let b = best, let current = heads[b], current.key <= head.key { continue }
                best = g
            }
            guard let g = best, let head = heads[g] else { break }
            let group = groups[g]
            for entry in queues[g].channels[head.range] {
                keep[group.id]![entry.channel] = false
                elements.prune(channel: entry.channel, of: group)
            }
            queues[g].next = head.range.upperBound
            heads[g] = chunk(g)
        }
    }

    /// Local sort: every group prunes the same fraction f of its channels — ⌊f·channels⌋, fewer
    /// where needed to keep an allowed width (`widths.roundUp`: the kept count rounded up to
    /// one), at least what it has already pruned — choosing its lowest-importance
    /// kept channels (raw importance; the order within one group needs no normalisation). f is
    /// the smallest fraction of the form j / channels(g) for which the removed parameters reach
    /// `target` (binary search: the removed count grows with f), or the largest one if none does.
    static func local(groups: [ChannelGroup], importance: [String: [Float]], keep: inout [String: [Bool]],
                      elements: inout PrunedElements, target: Double, widths: ChannelWidths = .any) {
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
                let kept = group.channels - f.j * group.channels / f.n
                let wanted = group.channels - widths.of(group).roundUp(kept, channels: group.channels)
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

/// The channel counts a pruned group may keep (`channel_multiple`, `narrow_channel_multiple`):
/// multiples of `multiple`, and below `multiple` the multiples of `narrowMultiple` (which
/// divides it) — with 16 and 8: 8, 16, 32, 48, …. A group keeps at least `narrowMultiple`
/// channels, or all of them when it is narrower than that; its full width is always allowed.
/// A part of a concatenation keeps multiples of `multiple` (`of(_:)`).
struct ChannelWidths: Equatable, Sendable {
    var multiple: Int
    var narrowMultiple: Int

    /// Any count of at least one channel.
    static let any = ChannelWidths(multiple: 1, narrowMultiple: 1)

    init(multiple: Int, narrowMultiple: Int? = nil) {
        self.multiple = multiple
        self.narrowMultiple = narrowMultiple ?? multiple
    }

    /// The widths `group` may keep. A narrow width pays for a tensor narrower than one block
    /// of the runtime; a part of a concatenation is not the whole tensor, and a narrow part
    /// would leave the joined tensor off the grid (16 + 16 + 8 = 40 channels, which ONNX
    /// Runtime then runs unblocked, with every op after the join): such a group keeps
    /// multiples of `multiple` only.
    func of(_ group: ChannelGroup) -> ChannelWidths {
        group.isConcatenationPart ? ChannelWidths(multiple: multiple) : self
    }

    /// The fewest channels a group of `channels` may keep.
    func floor(channels: Int) -> Int {
        channels < narrowMultiple ? channels : narrowMultiple
    }

    /// The largest allowed count below `kept` for a group of `channels`, or nil at its floor.
    func next(below kept: Int, channels: Int) -> Int? {
        let step = step(at: kept), next = (kept - 1) / step * step
        return next >= floor(channels: channels) ? next : nil
    }

    /// The smallest allowed count ≥ `kept` for a group of `channels` (its full width at most).
    func roundUp(_ kept: Int, channels: Int) -> Int {
        let step = step(at: kept)
        return min(channels, max(floor(channels: channels), (kept + step - 1) / step * step))
    }

    /// The spacing of the allowed counts next to `kept`: `multiple` above it, else `narrowMultiple`.
    private func step(at kept: Int) -> Int { kept > multiple ? multiple : narrowMultiple }
}
