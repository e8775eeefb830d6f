import ECTestSupport
import XCTest
import EasyCompression

/// The hook-style training loop: hooks are called in order, training learns, and a job resumed
/// from a checkpoint ends with exactly the weights of an uninterrupted run.
final class MonitoredSessionTests: XCTestCase {
    final class RecordingHook: SessionRunHook {
        var events: [String] = []
        func begin(_ session: MonitoredSession) throws { events.append("begin") }
        func afterCreateSession(_ session: MonitoredSession) throws { events.append("created") }
        func beforeRun(_ context: RunContext) throws { events.append("before \(context.step)") }
        func afterRun(_ context: RunContext, result: StepResult) throws { events.append("after \(result.step)") }
        func end(_ session: MonitoredSession) throws { events.append("end") }
    }

    func testHooksRunInOrderAndStopAtStep() throws {
        let data = try Dataset.load(.train, limit: 256)
        let model = try XCTUnwrap(ModelZoo.make("mlp", seed: 1))
        let hook = RecordingHook()
        let session = try MonitoredSession(model: model, optimizer: try SGD(learningRate: 0.1),
                                           hooks: [hook, StopAtStepHook(lastStep: 3)])
        var batches = try BatchSchedule(dataset: data, batchSize: 32, seed: 1).makeIterator()
        var losses: [Float] = []
        while !session.shouldStop {
            let b = batches.next()
            losses.append(try session.run(images: b.images, labels: b.labels, globalBatchSize: b.globalCount).localLoss)
        }
        try session.close()
        try session.close()
        XCTAssertEqual(hook.events, ["begin", "created", "before 1", "after 1", "before 2", "after 2",
                                     "before 3", "after 3", "end"])
        XCTAssertEqual(session.globalStep, 3)
    }

    func testTrainingLearns() throws {
        let train = try Dataset.load(.train, limit: 2048), test = try Dataset.load(.test, limit: 1000)
        let model = try XCTUnwrap(ModelZoo.make("fmnist-cnn", seed: 3))
        let before = try Evaluator.evaluate(model, on: test)
        let session = try MonitoredSession(model: model, optimizer: try SGD(learningRate: 0.05, momentum: 0.9),
                                           hooks: [StopAtStepHook(lastStep: 64)])
        var batches = try BatchSchedule(dataset: train, batchSize: 64, seed: 3).makeIterator()
        while !session.shouldStop {
            let b = batches.next()
            try session.run(images: b.images, labels: b.labels, globalBatchSize: b.globalCount)
        }
        let after = try Evaluator.evaluate(model, on: test)
        XCTAssertLessThan(before.accuracy, 0.3)
        XCTAssertGreaterThan(after.accuracy, 0.65, "2 epochs of 2048 samples")
        XCTAssertLessThan(after.loss, before.loss)
    }

    func testResumeEqualsUninterruptedRun() throws {
        let dir = try TestPaths.temporaryDirectory(name)
        defer { try? FileManager.default.removeItem(at: dir) }
        var config = JobConfig()
        config.model = "lenet5"
        config.dataset.limitTrain = 320
        config.dataset.limitTest = 100
        config.batchSize = 32
        config.steps = 14
        config.checkpointEvery = 6
        config.optimizer.name = "adam"
        config.optimizer.lr = 0.01
        let (straight, resumed) = try assertResumeEqualsUninterrupted(config, interruptAt: 6, in: dir, prefixes: ["optimizer/"])
        XCTAssertEqual(resumed.summary.testAccuracy, straight.summary.testAccuracy)
    }
}
