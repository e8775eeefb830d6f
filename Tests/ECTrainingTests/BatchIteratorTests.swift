import ECTraining
import Foundation
import XCTest

final class BatchIteratorTests: XCTestCase {
    private let schedule = try! BatchSchedule(dataset: DataFixtures.indexedDataset(count: 11), batchSize: 4, seed: 7)

    func testWalksStepsAcrossEpochsLikeTheRandomAccessAPI() throws {
        var iterator = try schedule.makeIterator(rank: 1, worldSize: 2)
        for globalStep in 0..<9 {  // 3 steps per epoch: crosses two epoch boundaries
            let expected = schedule.position(atGlobalStep: globalStep)
            XCTAssertEqual(iterator.position, expected)
            let batch = iterator.next()
            XCTAssertEqual(batch.position, expected)
            XCTAssertEqual(batch.globalCount, expected.stepInEpoch == 2 ? 3 : 4)
            let direct = schedule.shardBatch(epoch: expected.epoch, step: expected.stepInEpoch, rank: 1, worldSize: 2)
            XCTAssertEqual(batch.images, direct.images)
            XCTAssertEqual(batch.labels, direct.labels)
        }
        XCTAssertEqual(iterator.position, BatchPosition(epoch: 3, stepInEpoch: 0))
    }

    func testResumingFromASavedPositionContinuesTheSameSequence() throws {
        var uninterrupted = try schedule.makeIterator()
        var saved = BatchPosition()
        for _ in 0..<4 {
            _ = uninterrupted.next()
            saved = uninterrupted.position
        }
        let decoded = try JSONDecoder().decode(BatchPosition.self, from: JSONEncoder().encode(saved))
        var resumed = try schedule.makeIterator(startingAt: decoded)
        for _ in 0..<5 {
            let (a, b) = (uninterrupted.next(), resumed.next())
            XCTAssertEqual(a.position, b.position)
            XCTAssertEqual(a.images, b.images)
        }
    }

    func testResumePositionOutsideTheScheduleIsAnError() {
        assertDataError(try schedule.makeIterator(startingAt: BatchPosition(epoch: 0, stepInEpoch: 3))) {
            if case .invalidOption("resume position", _, _) = $0 { return true }
            return false
        }
        assertDataError(try schedule.makeIterator(startingAt: BatchPosition(epoch: -1, stepInEpoch: 0))) {
            if case .invalidOption = $0 { return true }
            return false
        }
    }
}

