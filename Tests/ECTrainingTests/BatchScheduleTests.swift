import ECTensor
import ECTraining
import XCTest

final class BatchScheduleTests: XCTestCase {
    private func schedule(count: Int, batchSize: Int, seed: UInt64 = 42, dropLast: Bool = false) throws -> BatchSchedule {
        try BatchSchedule(dataset: DataFixtures.indexedDataset(count: count), batchSize: batchSize, seed: seed,
                          dropLast: dropLast)
    }

    func testPermutationIsDeterministicPerSeedAndEpoch() throws {
        let a = try schedule(count: 100, batchSize: 7)
        let b = try schedule(count: 100, batchSize: 7)
        XCTAssertEqual(a.permutation(epoch: 3), b.permutation(epoch: 3))
        XCTAssertEqual(a.permutation(epoch: 0).sorted(), Array(0..<100))
        XCTAssertNotEqual(a.permutation(epoch: 0), a.permutation(epoch: 1))
        XCTAssertNotEqual(a.permutation(epoch: 0), Array(0..<100))
        XCTAssertNotEqual(a.permutation(epoch: 0), try schedule(count: 100, batchSize: 7, seed: 43).permutation(epoch: 0))
    }

    func testPermutationFollowsTheDocumentedDerivation() throws {
        var rng = RNG(seed: 42).derived(5)
        var expected = Array(0..<30)
        expected.seededShuffle(rng: &rng)
        XCTAssertEqual(try schedule(count: 30, batchSize: 4).permutation(epoch: 5), expected)
    }

    func testStepsPerEpochKeepOrDropTheLastPartialBatch() throws {
        XCTAssertEqual(try schedule(count: 10, batchSize: 3).stepsPerEpoch, 4)
        XCTAssertEqual(try schedule(count: 10, batchSize: 3, dropLast: true).stepsPerEpoch, 3)
        XCTAssertEqual(try schedule(count: 9, batchSize: 3).stepsPerEpoch, 3)
        XCTAssertEqual(try schedule(count: 9, batchSize: 3, dropLast: true).stepsPerEpoch, 3)
        XCTAssertEqual(try schedule(count: 2, batchSize: 5).stepsPerEpoch, 1)
        XCTAssertEqual(try schedule(count: 60_000, batchSize: 64).stepsPerEpoch, 938)
        XCTAssertEqual(try schedule(count: 60_000, batchSize: 64, dropLast: true).stepsPerEpoch, 937)
    }

    func testGlobalBatchesCoverTheEpochPermutation() throws {
        let s = try schedule(count: 10, batchSize: 3)
        XCTAssertEqual((0..<4).map { s.globalBatchCount(step: $0) }, [3, 3, 3, 1])
        let batches = (0..<4).flatMap { s.globalBatchIndices(epoch: 2, step: $0) }
        XCTAssertEqual(batches, s.permutation(epoch: 2))

        let dropping = try schedule(count: 10, batchSize: 3, dropLast: true)
        let kept = (0..<3).flatMap { dropping.globalBatchIndices(epoch: 2, step: $0) }
        XCTAssertEqual(kept, Array(s.permutation(epoch: 2).prefix(9)))
    }

    func testInvalidOptionsAreErrors() {
        let data = DataFixtures.indexedDataset(count: 4)
        assertDataError(try BatchSchedule(dataset: data, batchSize: 0, seed: 1)) {
            $0 == .invalidOption(name: "batch_size", value: "0", expected: ">= 1")
        }
        assertDataError(try BatchSchedule(dataset: data, batchSize: 5, seed: 1, dropLast: true)) {
            if case .invalidOption("batch_size", "5", _) = $0 { return true }
            return false
        }
        assertDataError(try BatchSchedule(dataset: DataFixtures.indexedDataset(count: 0), batchSize: 2, seed: 1)) {
            if case .invalidOption("batch_size", _, _) = $0 { return true }
            return false
        }
    }

    func testShardsPartitionTheGlobalBatchExactly() {
        for worldSize in 1...5 {
            for count in 0...23 {
                let shards = (0..<worldSize).map { BatchSchedule.shard(of: count, rank: $0, worldSize: worldSize) }
                XCTAssertEqual(shards.flatMap { Array($0) }, Array(0..<count), "count \(count) world \(worldSize)")
                let sizes = shards.map(\.count)
                XCTAssertLessThanOrEqual(sizes.max()! - sizes.min()!, 1)
                XCTAssertEqual(sizes.filter { $0 > count / worldSize }.count, count % worldSize)
                XCTAssertEqual(Array(sizes.prefix(count % worldSize)), Array(repeating: count / worldSize + 1,
                                                                             count: count % worldSize))
            }
        }
        XCTAssertEqual(BatchSchedule.shard(of: 64, rank: 2, worldSize: 3), 43..<64)
        XCTAssertEqual(BatchSchedule.shard(of: 64, rank: 0, worldSize: 3), 0..<22)
    }

    func testUnionOfRankShardBatchesIsTheGlobalBatch() throws {
        let s = try schedule(count: 23, batchSize: 7)  // 7 not divisible by 2 or 3; last batch of 2
        for worldSize in 1...3 {
            for step in 0..<s.stepsPerEpoch {
                let global = s.globalBatchIndices(epoch: 1, step: step)
                var images: [Int] = []
                var labels: [Int32] = []
                for rank in 0..<worldSize {
                    let shard = s.shardBatch(epoch: 1, step: step, rank: rank, worldSize: worldSize)
                    XCTAssertEqual(shard.images.shape, [shard.labels.count, 2, 2, 1])
                    XCTAssertEqual(s.shardIndices(epoch: 1, step: step, rank: rank, worldSize: worldSize),
                                   DataFixtures.sampleIndices(of: shard.images))
                    images += DataFixtures.sampleIndices(of: shard.images)
                    labels += shard.labels
                }
                XCTAssertEqual(images, global, "step \(step) world \(worldSize)")
                XCTAssertEqual(labels, global.map { Int32($0 % 10) })
            }
        }
    }

    func testPositionArithmetic() throws {
        let s = try schedule(count: 10, batchSize: 3)
        XCTAssertEqual(s.position(after: BatchPosition(epoch: 0, stepInEpoch: 3)), BatchPosition(epoch: 1, stepInEpoch: 0))
        XCTAssertEqual(s.position(atGlobalStep: 9), BatchPosition(epoch: 2, stepInEpoch: 1))
        XCTAssertEqual(s.globalStep(of: BatchPosition(epoch: 2, stepInEpoch: 1)), 9)
    }
}
