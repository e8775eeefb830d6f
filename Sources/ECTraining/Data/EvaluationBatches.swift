import ECTensor

/// The batches of an evaluation pass over a dataset (usually the test split), in file order,
/// for one rank.
///
/// Global batch `i` holds samples `i·B ..< min((i+1)·B, N)` (the last one may be partial; none
/// is dropped); rank `r` of `W` takes `BatchSchedule.shard(of:rank:worldSize:)` of it. Every
/// rank therefore sees the same number of batches (a shard may be empty when a batch has fewer
/// samples than ranks), and the ranks together see every sample exactly once: sum the per-rank
/// counts (e.g. correct predictions) over ranks to get the dataset's metric.
public struct EvaluationBatches: Sequence, IteratorProtocol {
    /// The samples being evaluated.
    public let dataset: Dataset
    /// The global batch size `B` (the sum over all ranks).
    public let batchSize: Int
    /// This process's rank in `0..<worldSize`.
    public let rank: Int
    /// The number of ranks sharing each global batch.
    public let worldSize: Int
    /// `ceil(N / B)`.
    public let batchCount: Int

    private var nextBatch = 0

    /// An evaluation pass over `dataset` for rank `rank` of `worldSize`.
    ///
    /// - Throws: `DataError.invalidOption` if `batchSize < 1`.
    /// - Precondition: `rank` is in `0..<worldSize`.
    public init(dataset: Dataset, batchSize: Int, rank: Int = 0, worldSize: Int = 1) throws {
        guard batchSize >= 1 else {
            throw DataError.invalidOption(name: "eval_batch_size", value: "\(batchSize)", expected: ">= 1")
        }
        precondition(worldSize >= 1 && rank >= 0 && rank < worldSize,
                     "rank \(rank) out of range for world size \(worldSize)")
        self.dataset = dataset
        self.batchSize = batchSize
        self.rank = rank
        self.worldSize = worldSize
        self.batchCount = (dataset.count + batchSize - 1) / batchSize
    }

    /// The dataset indices of this rank's shard of global batch `index`.
    public func indices(ofBatch index: Int) -> Range<Int> {
        precondition(index >= 0 && index < batchCount, "batch \(index) out of range 0..<\(batchCount)")
        let start = index * batchSize
        let shard = BatchSchedule.shard(of: Swift.min(batchSize, dataset.count - start), rank: rank, worldSize: worldSize)
        return (start + shard.lowerBound)..<(start + shard.upperBound)
    }

    /// This rank's images `[n, H, W, C]` and labels of global batch `index`.
    public func batch(_ index: Int) -> (images: Tensor, labels: [Int32]) {
        dataset.gather(indices(ofBatch: index))
    }

    /// The next batch of the pass, or `nil` after the last one.
    public mutating func next() -> (images: Tensor, labels: [Int32])? {
        guard nextBatch < batchCount else { return nil }
        defer { nextBatch += 1 }
        return batch(nextBatch)
    }
}
