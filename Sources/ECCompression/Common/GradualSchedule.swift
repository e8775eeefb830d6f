/// When a gradual compressor acts and how much it has removed by then (Zhu & Gupta 2017, "To
/// prune, or not to prune", eq. 1, with the trial index as the time axis) — the schedule of the
/// Pruner (fraction of parameters) and of the Sparsifier (fraction of kernel elements).
///
/// Trial `k` (k = 1…n, n = `numTrials`) happens after step `k · stepInterval`; its target
/// fraction is the cubic
///
///     r_k = R · (1 − (1 − k/n)³)
///
/// which prunes fast while the network has redundancy and slowly near the end, and reaches
/// exactly R at k = n (the cube of 0 is 0). Between two trials the network fine-tunes for
/// `stepInterval` steps. After trial n nothing more is pruned.
public struct GradualSchedule: Equatable, Sendable {
    /// R, the final fraction (`compression_ratio`, `target_sparse_ratio`).
    public let finalRatio: Double
    public let stepInterval: Int
    public let numTrials: Int

    public init(finalRatio: Double, stepInterval: Int, numTrials: Int) {
        precondition(stepInterval > 0 && numTrials > 0,
                     "schedule needs step_interval > 0 and num_trials > 0, got \(stepInterval), \(numTrials)")
        self.finalRatio = finalRatio
        self.stepInterval = stepInterval
        self.numTrials = numTrials
    }

    /// The trial (1…n) that happens after `step`, or nil if `step` is not a pruning step.
    public func trial(atStep step: Int) -> Int? {
        guard step > 0, step % stepInterval == 0 else { return nil }
        let k = step / stepInterval
        return k <= numTrials ? k : nil
    }

    /// r_k = R·(1 − (1 − k/n)³) for trial `k` in 0…n (0 before the first trial).
    public func targetFraction(afterTrial k: Int) -> Double {
        precondition((0...numTrials).contains(k), "trial \(k) is outside 0...\(numTrials)")
        if k == numTrials { return finalRatio }
        let remaining = 1 - Double(k) / Double(numTrials)
        return finalRatio * (1 - remaining * remaining * remaining)
    }
}
