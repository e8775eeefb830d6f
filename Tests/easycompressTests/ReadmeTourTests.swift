import EasyCompression
import XCTest

/// The README's 30-second Swift tour, as written there (only the data is cut down and the
/// stop step lowered so the test is quick): if the API changes, this stops compiling.
final class ReadmeTourTests: XCTestCase {
    func testSwiftTourRuns() throws {
        let model = ModelZoo.make("fmnist-cnn", seed: 42)!
        let train = try Dataset.load(.train, limit: 640)                    // README: Dataset.load(.train)
        let schedule = try BatchSchedule(dataset: train, batchSize: 64, seed: 42)
        let world = try World.current()                         // MPI ranks, or a world of one
        let session = try MonitoredSession(model: model, optimizer: try SGD(learningRate: 0.05, momentum: 0.9),
                                           communicator: world, hooks: [StopAtStepHook(lastStep: 10)])  // README: 938
        var batches = try schedule.makeIterator(startingAt: .init(epoch: 0, stepInEpoch: 0),
                                                rank: world.rank, worldSize: world.size)
        while !session.shouldStop {
            let b = batches.next()
            try session.run(images: b.images, labels: b.labels, globalBatchSize: b.globalCount)
        }
        try session.close()
        let result = try Evaluator.evaluate(model, on: try Dataset.load(.test, limit: 500), communicator: world)
        XCTAssertEqual(session.globalStep, 10)
        XCTAssertGreaterThan(result.accuracy, 0.3)
    }
}
