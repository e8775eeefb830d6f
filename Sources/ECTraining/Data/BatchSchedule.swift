import ECTensor

/// The order in which training visits a dataset: a fresh seeded permutation each epoch, cut
/// into global batches, each global batch split into contiguous per-rank shards.
///
/// Deterministic by construction: epoch `e` uses the permutation drawn by
/// `RNG(seed: seed).derived(UInt64(e))` (a Fisher–Yates `seededShuffle`), so every rank and every
/// run with the same seed sees the same order, and no state has to be exchanged between ranks.
///
/// With `N` samples and global batch size `B`, an epoch has `ceil(N / B)` steps: the last,
/// partial batch (`N % B` samples) is kept, unless `dropLast` is set, in which case an epoch has
/// `floor(N / B)` steps and the last `N % B` samples of that epoch's permutation are skipped.
///
/// Rank `r` of `W` takes the contiguous range `shard(of: b, rank: r, worldSize: W)` of a global
/// batch of `b` samples; concatenating the shards of ranks `0..<W` gives the global batch back,
/// so `k` steps on `W` ranks see exactly the samples of `k` steps on one rank.
public struct BatchSchedule {
    /// The samples being scheduled.
    public let dataset: Dataset
    /// The global batch size `B` (the sum over all ranks).
    public let batchSize: Int
    /// The seed of the per-epoch permutations.
    public let seed: UInt64
    /// Whether the last, partial batch of each epoch is dropped.
    public let dropLast: Bool
    /// `ceil(N / B)`, or `floor(N / B)` with `dropLast`.
    public let stepsPerEpoch: Int

    /// A schedule over `dataset`.
    ///
    /// - Throws: `DataError.invalidOption` if `batchSize < 1`, or if an epoch would have no step
    ///   (an empty dataset, or fewer than `batchSize` samples with `dropLast`).
    public init(dataset: Dataset, batchSize: Int, seed: UInt64, dropLast: Bool = false) throws {
        guard batchSize >= 1 else {
            throw DataError.invalidOption(name: "batch_size", value: "\(batchSize)", expected: ">= 1")
        }
        let steps = dropLast ? dataset.count / batchSize : (dataset.count + batchSize - 1) / batchSize
        guard steps > 0 else {
            throw DataError.invalidOption(
                name: "batch_size", value: "\(batchSize)",
                expected: dropLast ? "<= the \(dataset.count) samples of the dataset when drop_last is set"
                                   : "used with a non-empty dataset (it has 0 samples)")
        }
        self.dataset = dataset
        self.batchSize = batchSize
        self.seed = seed
        self.dropLast = dropLast
        self.stepsPerEpoch = steps
    }

    /// The sample order of `epoch`: a permutation of `0..<dataset.count`. Costs O(N); the
    /// `BatchIterator` computes it once per epoch.
    public func permutation(epoch: Int) -> [Int] {
        precondition(epoch >= 0, "epoch must be >= 0, got \(epoch)")
        var rng = RNG(seed: seed).derived(UInt64(epoch))
        var order = Array(0..<dataset.count)
        order.seededShuffle(rng: &rng)
        return order
    }

    /// The number of samples in global batch `step` of an epoch: `B`, except for a kept last
    /// partial batch.
    public func globalBatchCount(step: Int) -> Int {
        precondition(step >= 0 && step < stepsPerEpoch, "step \(step) out of range 0..<\(stepsPerEpoch)")
        return min(batchSize, dataset.count - step * batchSize)
    }

    /// The dataset indices of global batch `step` of `epoch`, in batch order.
    public func globalBatchIndices(epoch: Int, step: Int) -> [Int] {
        Array(globalBatch(in: permutation(epoch: epoch), step: step))
    }

    /// The contiguous range of a global batch of `globalBatchCount` samples that rank `rank` of
    /// `worldSize` takes: the first `globalBatchCount % worldSize` ranks get one sample more
    /// than the others. Shards are disjoint, in rank order, and cover the batch; a shard is empty
    /// when the batch has fewer samples than ranks (that rank still joins the step's collectives).
    ///
    /// - Precondition: `globalBatchCount >= 0`, `worldSize >= 1`, `rank` in `0..<worldSize`.
    public static func shard(of globalBatchCount: Int, rank: Int, worldSize: Int) -> Range<Int> {
        precondition(globalBatchCount >= 0, "globalBatchCount must be >= 0, got \(globalBatchCount)")
        precondition(worldSize >= 1 && rank >= 0 && rank < worldSize,
                     "rank \(rank) out of range for world size \(worldSize)")
        let base = globalBatchCount / worldSize
        let extra = globalBatchCount % worldSize
        let start = rank * base + min(rank, extra)
        return start..<(start + base + (rank < extra ? 1 : 0))
    }

    /// The dataset indices of rank `rank`'s shard of global batch `step` of `epoch`.
    public func shardIndices(epoch: Int, step: Int, rank: Int, worldSize: Int) -> [Int] {
        Array(shard(in: permutation(epoch: epoch), step: step, rank: rank, worldSize: worldSize))
    }

    /// Rank `rank`'s samples of global batch `step` of `epoch`: images `[n, H, W, C]` gathered
    /// into a fresh tensor, and their labels, where `n` is the shard size (see `shard(of:rank:worldSize:)`).
    /// Costs O(N) for the permutation; iterate with `makeIterator` to pay it once per epoch.
    public func shardBatch(epoch: Int, step: Int, rank: Int, worldSize: Int) -> (images: Tensor, labels: [Int32]) {
        dataset.gather(shard(in: permutation(epoch: epoch), step: step, rank: rank, worldSize: worldSize))
    }

    /// An iterator over this rank's shards, starting at `position` (e.g. from a checkpoint).
    ///
    /// - Throws: `DataError.invalidOption` if `position` is negative or its step is not in
    ///   `0..<stepsPerEpoch` (a checkpoint written with another batch size or dataset).
    public func makeIterator(startingAt position: BatchPosition = BatchPosition(), rank: Int = 0,
                             worldSize: Int = 1) throws -> BatchIterator {
        guard position.epoch >= 0, position.stepInEpoch >= 0, position.stepInEpoch < stepsPerEpoch else {
            throw DataError.invalidOption(name: "resume position", value: "\(position)",
                                          expected: "a step in 0..<\(stepsPerEpoch) of an epoch >= 0")
        }
        return BatchIterator(schedule: self, position: position, rank: rank, worldSize: worldSize)
    }

    /// The number of steps before `position` since the start of training.
    public func globalStep(of position: BatchPosition) -> Int {
        position.epoch * stepsPerEpoch + position.stepInEpoch
    }

    /// The position reached after `globalStep` steps from the start of training.
    public func position(atGlobalStep globalStep: Int) -> BatchPosition {
        precondition(globalStep >= 0, "global step must be >= 0, got \(globalStep)")
        return BatchPosition(epoch: globalStep / stepsPerEpoch, stepInEpoch: globalStep % stepsPerEpoch)
    }

    /// The position that follows `position`, wrapping into the next epoch.
    public func position(after position: BatchPosition) -> BatchPosition {
        self.position(atGlobalStep: globalStep(of: position) + 1)
    }

    func globalBatch(in permutation: [Int], step: Int) -> ArraySlice<Int> {
        let start = step * batchSize
        return permutation[start..<(start + globalBatchCount(step: step))]
    }

    func shard(in permutation: [Int], step: Int, rank: Int, worldSize: Int) -> ArraySlice<Int> {
        let batch = globalBatch(in: permutation, step: step)
        let range = BatchSchedule.shard(of: batch.count, rank: rank, worldSize: worldSize)
        return batch[(batch.startIndex + range.lowerBound)..<(batch.startIndex + range.upperBound)]
    }
}
