import ECTensor

/// One rank's shard of one training step.
public struct TrainingBatch {
    /// The schedule position of this step.
    public let position: BatchPosition
    /// This rank's images, `[n, H, W, C]`; `n` may be 0 (see `BatchSchedule.shard(of:rank:worldSize:)`).
    public let images: Tensor
    /// This rank's labels, one per image.
    public let labels: [Int32]
    /// The number of samples of the global batch over all ranks: divide the summed per-sample
    /// loss by it (then sum over ranks) to get the global-batch mean on every rank.
    public let globalCount: Int
}

/// Walks a `BatchSchedule` step by step for one rank, across epochs, without end.
///
/// Computes each epoch's permutation once. `position` is the position of the batch the next
/// call to `next()` returns: save it in a checkpoint after a completed step and pass it to
/// `BatchSchedule.makeIterator(startingAt:rank:worldSize:)` to resume exactly there. The caller
/// decides when to stop (a number of epochs or steps).
public struct BatchIterator {
    /// The schedule being walked.
    public let schedule: BatchSchedule
    /// This process's rank in `0..<worldSize`.
    public let rank: Int
    /// The number of ranks sharing each global batch.
    public let worldSize: Int
    /// The position of the batch that `next()` returns.
    public private(set) var position: BatchPosition

    private var permutationEpoch = -1
    private var permutation: [Int] = []

    init(schedule: BatchSchedule, position: BatchPosition, rank: Int, worldSize: Int) {
        precondition(worldSize >= 1 && rank >= 0 && rank < worldSize,
                     "rank \(rank) out of range for world size \(worldSize)")
        self.schedule = schedule
        self.position = position
        self.rank = rank
        self.worldSize = worldSize
    }

    /// This rank's shard of the batch at `position`, then advances `position`.
    public mutating func next() -> TrainingBatch {
        if permutationEpoch != position.epoch {
            permutation = schedule.permutation(epoch: position.epoch)
            permutationEpoch = position.epoch
        }
        let step = position.stepInEpoch
        let indices = schedule.shard(in: permutation, step: step, rank: rank, worldSize: worldSize)
        let (images, labels) = schedule.dataset.gather(indices)
        let batch = TrainingBatch(position: position, images: images, labels: labels,
                                  globalCount: schedule.globalBatchCount(step: step))
        position = schedule.position(after: position)
        return batch
    }
}
