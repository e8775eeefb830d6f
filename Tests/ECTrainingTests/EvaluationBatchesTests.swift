import ECTraining
import XCTest

final class EvaluationBatchesTests: XCTestCase {
    func testSingleRankVisitsEverySampleInFileOrder() throws {
        let data = DataFixtures.indexedDataset(count: 10)
        let batches = Array(try EvaluationBatches(dataset: data, batchSize: 4))
        XCTAssertEqual(batches.map(\.labels.count), [4, 4, 2])
        XCTAssertEqual(batches.flatMap { DataFixtures.sampleIndices(of: $0.images) }, Array(0..<10))
    }

    func testRankShardsCoverEachSampleOnceWithEqualBatchCounts() throws {
        let data = DataFixtures.indexedDataset(count: 11)
        for worldSize in 1...3 {
            var seen: [Int] = []
            var perRank: [[[Int]]] = []
            for rank in 0..<worldSize {
                let passes = try EvaluationBatches(dataset: data, batchSize: 5, rank: rank, worldSize: worldSize)
                XCTAssertEqual(passes.batchCount, 3)
                perRank.append(passes.map { DataFixtures.sampleIndices(of: $0.images) })
            }
            for batch in 0..<3 {
                for rank in 0..<worldSize { seen += perRank[rank][batch] }
            }
            XCTAssertEqual(seen, Array(0..<11), "world \(worldSize)")
        }
    }

    func testInvalidBatchSize() {
        assertDataError(try EvaluationBatches(dataset: DataFixtures.indexedDataset(count: 3), batchSize: 0)) {
            if case .invalidOption("eval_batch_size", "0", _) = $0 { return true }
            return false
        }
    }
}
