import XCTest
@testable import ECTensor
import EasyCompression

/// Speed machinery never changes a result: buffer recycling and multi-threaded loops give
/// bit-identical training to the plain single-threaded path.
final class EngineDeterminismTests: XCTestCase {
    func train(steps: Int) throws -> NamedTensors {
        let data = try Dataset.load(.train, limit: 1024)
        let model = try XCTUnwrap(ModelZoo.make("fmnist-cnn", seed: 9))
        let session = try MonitoredSession(model: model, optimizer: try SGD(learningRate: 0.05, momentum: 0.9),
                                           hooks: [StopAtStepHook(lastStep: steps)])
        var batches = try BatchSchedule(dataset: data, batchSize: 64, seed: 9).makeIterator()
        while !session.shouldStop {
            let b = batches.next()
            try session.run(images: b.images, labels: b.labels, globalBatchSize: b.globalCount)
        }
        return model.stateDict()
    }

    func testRecyclingAndThreadsDoNotChangeResults() throws {
        let saved = (BufferPool.isEnabled, Parallel.workers)
        defer { BufferPool.isEnabled = saved.0; Parallel.workers = saved.1 }
        BufferPool.isEnabled = false
        Parallel.workers = 1
        let plain = try train(steps: 20)
        BufferPool.isEnabled = true
        Parallel.workers = 2
        let fast = try train(steps: 20)
        XCTAssertEqual(plain, fast)
    }
}
