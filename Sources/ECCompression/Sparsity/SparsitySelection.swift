/// The chief's choice of blocks to zero at one trial (magnitude criterion, monotone).
///
/// Candidates are ranked by: already zeroed first (a zeroed block never comes back), then
/// ascending mean |w|, then layer order and block index (a deterministic tie-break). Blocks are
/// zeroed in that order while the zeroed elements stay ≤ ⌊target·elements⌋ (1e-9 slack for the
/// float product); the first block that would overshoot stops the walk. So the achieved
/// sparsity is at most the target and short of it by less than one block.
enum SparsitySelection {
    struct Layer {
        let grid: BlockGrid
        /// Mean |w| per block.
        let scores: [Float]
        /// Current keep flags per block.
        let keep: [Bool]
    }

    /// Within each layer: every layer reaches `target` of its own elements.
    static func local(_ layers: [Layer], target: Double) -> [[Bool]] {
        layers.map { select([$0], target: target)[0] }
    }

    /// Across layers: `target` of all the layers' elements together.
    static func global(_ layers: [Layer], target: Double) -> [[Bool]] {
        select(layers, target: target)
    }

    private static func select(_ layers: [Layer], target: Double) -> [[Bool]] {
        let total = layers.reduce(0) { $0 + $1.grid.elementCount }
        let budget = Int((target * Double(total) + 1e-9).rounded(.down))
        var candidates: [(layer: Int, block: Int)] = []
        for (l, layer) in layers.enumerated() { for b in 0..<layer.grid.blockCount { candidates.append((l, b)) } }
        candidates.sort { a, b in
            let la = layers[a.layer], lb = layers[b.layer]
            let za = !la.keep[a.block], zb = !lb.keep[b.block]
            if za != zb { return za }
            let sa = la.scores[a.block], sb = lb.scores[b.block]
            if sa != sb { return sa < sb }
            return (a.layer, a.block) < (b.layer, b.block)
        }
        var keep = layers.map { [Bool](repeating: true, count: $0.grid.blockCount) }
        var zeroed = 0
        for c in candidates {
            let size = layers[c.layer].grid.elementCount(ofBlock: c.block)
            if zeroed + size > budget { break }
            zeroed += size
            keep[c.layer][c.block] = false
        }
        return keep
    }

    /// N:M: in every group of `pattern.m` consecutive rows (inputs) of one column, zero the
    /// ⌊fraction·M⌋ smallest |w| (already zeroed ones first), never more than the group's
    /// length − N. With `fraction` = (M − N)/M every full group keeps exactly N; a partial last
    /// group of p < M rows keeps min(p, N). `grid` must have [1, 1] blocks.
    static func pattern(_ pattern: NMPattern, grid: BlockGrid, weights: [Float], keep: [Bool],
                        fraction: Double) -> [Bool] {
        precondition(grid.blockRows == 1 && grid.blockColumns == 1, "N:M selection works on single weights")
        let perGroup = Int((fraction * Double(pattern.m) + 1e-9).rounded(.down))
        var out = [Bool](repeating: true, count: keep.count)
        let n = grid.columns
        var group: [Int] = []
        for c in 0..<n {
            var start = 0
            while start < grid.rows {
                let end = min(grid.rows, start + pattern.m)
                group = (start..<end).map { $0 * n + c }
                let zeros = min(perGroup, max(0, group.count - pattern.n))
                group.sort { a, b in
                    if keep[a] != keep[b] { return !keep[a] }
                    let ma = abs(weights[a]), mb = abs(weights[b])
                    return ma != mb ? ma < mb : a < b
                }
                for e in group.prefix(zeros) { out[e] = false }
                start = end
            }
        }
        return out
    }
}
