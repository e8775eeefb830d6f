import EasyCompression
import ECTestSupport
import XCTest

/// docs/pruning.md's Swift examples, as written there (data and steps cut down).
final class PruningDocsTests: XCTestCase {
    func testHookStyleAndGapFinetuneExamples() throws {
        let dir = try TestPaths.temporaryDirectory(name)
        defer { try? FileManager.default.removeItem(at: dir) }
        let model = ModelZoo.make("fmnist-cnn", seed: 1)!
        var batches = try BatchSchedule(dataset: try Dataset.load(.train, limit: 512), batchSize: 64, seed: 1).makeIterator()

        // docs: hook style
        let pruner = try Pruner(config: PrunerConfig(compressionRatio: 0.5, stepInterval: 2, numTrials: 2))  // docs: 1000, 10
        let hook = CompressionHook(pruner, saveDir: dir.path)
        let session = try MonitoredSession(model: model, optimizer: try SGD(learningRate: 0.05, momentum: 0.9),
                                           communicator: try World.current(), hooks: [hook, StopAtStepHook(lastStep: 4)])
        while !session.shouldStop {
            let b = batches.next()
            try session.run(images: b.images, labels: b.labels, globalBatchSize: b.globalCount)
        }
        try session.close()
        XCTAssertGreaterThanOrEqual(pruner.achievedRatio, 0.5)
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir.appendingPathComponent("pruner.json").path))
    }
}
