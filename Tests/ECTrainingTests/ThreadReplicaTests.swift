import ECTestSupport
import EasyCompression
@testable import ECTraining
import Foundation
import XCTest

/// Thread replicas (`MonitoredSession.threadReplicas`): a rank's shard is cut into slices
/// trained at once on several threads; the summed gradients must be the whole shard's.
final class ThreadReplicaTests: XCTestCase {
    func session(_ model: Model, replicas: Int) throws -> MonitoredSession {
        let s = try MonitoredSession(model: model, optimizer: try SGD(learningRate: 0.05, momentum: 0.9))
        s.threadReplicas = replicas
        return s
    }

    func batch(_ n: Int) throws -> (images: Tensor, labels: [Int32]) {
        try Dataset.load(.train, limit: n).gather(0..<n)
    }

    func testReplicatedGradientsEqualTheWholeBatchGradients() throws {
        let (images, labels) = try batch(64)
        for replicas in [2, 3, 4] {
            let one = try XCTUnwrap(ModelZoo.make("fmnist-cnn", seed: 5)), many = try XCTUnwrap(ModelZoo.make("fmnist-cnn", seed: 5))
            let a = try session(one, replicas: 1), b = try session(many, replicas: replicas)
            XCTAssertEqual(b.replicaCount(batch: 64), replicas)
            let lossA = a.forwardBackward(images: images, labels: labels, globalBatchSize: 64)
            let lossB = b.forwardBackward(images: images, labels: labels, globalBatchSize: 64)
            XCTAssertEqual(lossA, lossB, accuracy: 1e-5)
            for (p, q) in zip(one.parameters, many.parameters) {
                let scale = max(p.grad.scalars.map(abs).max() ?? 0, 1e-6)
                XCTAssertLessThanOrEqual(p.grad.maxAbsDifference(q.grad) / scale, 1e-5, "\(p.name) with \(replicas) replicas")
            }
        }
    }

    /// 2 thread replicas compute exactly what 2 ranks of one thread compute (same shards,
    /// same single-threaded kernels, gradients summed g₀ + g₁): the CLI job on one process
    /// with `thread_replicas: 2` and under `mpirun -np 2` end with bit-identical weights.
    func testTwoThreadReplicasEqualTwoRanksBitForBit() throws {
        try assertTwoThreadReplicasEqualTwoRanks(compression: "pruner: {compression_ratio: 0.3, step_interval: 3, num_trials: 2}")
    }

    /// The quantizer too: each replica's step-size gradients go to its own accumulator and are
    /// summed in replica order, as the chief's reduce sums the ranks'.
    func testQuantizationWithTwoThreadReplicasEqualsTwoRanksBitForBit() throws {
        try assertTwoThreadReplicasEqualTwoRanks(compression: "quantizer: {step_interval: 3, num_trials: 2, signed: false}")
    }

    func assertTwoThreadReplicasEqualTwoRanks(compression: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let work = try TestPaths.temporaryDirectory(name)
        defer { try? FileManager.default.removeItem(at: work) }
        func job(_ name: String, replicas: Int) throws -> (String, String) {
            let dir = work.appendingPathComponent(name).path, file = work.appendingPathComponent("\(name).yaml").path
            try """
                model: fmnist-cnn
                dataset: {limit_train: 650, limit_test: 100}
                steps: 11
                batch_size: 59
                optimizer: {name: sgd, lr: 0.05, momentum: 0.9}
                threads: 1
                thread_replicas: \(replicas)
                save_dir: \(dir)
                compression:
                  \(compression)
                """.write(toFile: file, atomically: true, encoding: .utf8)
            return (file, dir)
        }
        let (replicated, replicatedDir) = try job("replicas", replicas: 2)
        let (ranks, ranksDir) = try job("ranks", replicas: 1)
        let a = try TrainCommand.run(replicated), b = try TrainCommand.run(ranks, ranks: 2)
        XCTAssertEqual(a.status, 0, a.stderr, file: file, line: line)
        XCTAssertEqual(b.status, 0, b.stderr, file: file, line: line)
        let x = try WeightLoader.readTensors(from: replicatedDir), y = try WeightLoader.readTensors(from: ranksDir)
        XCTAssertEqual(x.names, y.names, file: file, line: line)
        for name in x.names { XCTAssertEqual(x[name], y[name], name, file: file, line: line) }
    }

    func testReplicatedTrainingIsDeterministic() throws {
        let data = try Dataset.load(.train, limit: 640)
        func train(replicas: Int) throws -> Model {
            let model = try XCTUnwrap(ModelZoo.make("fmnist-cnn", seed: 2))
            let s = try session(model, replicas: replicas)
            var batches = try BatchSchedule(dataset: data, batchSize: 64, seed: 3).makeIterator()
            for _ in 0..<6 {
                let b = batches.next()
                try s.run(images: b.images, labels: b.labels, globalBatchSize: b.globalCount)
            }
            return model
        }
        let first = try train(replicas: 2), second = try train(replicas: 2)
        for (p, q) in zip(first.parameters, second.parameters) {
            XCTAssertEqual(p.value, q.value, "\(p.name): same replica count → bit-identical")
        }
    }

    func testModelsWithBatchStatisticsOrATransformOrTinyShardsUseOnePass() throws {
        let resnet = try session(try XCTUnwrap(ModelZoo.make("resnet-mini", seed: 1)), replicas: 2)
        XCTAssertEqual(resnet.replicaCount(batch: 64), 1, "batch norm statistics would race")
        let cnn = try XCTUnwrap(ModelZoo.make("fmnist-cnn", seed: 1))
        let plain = try session(cnn, replicas: 2)
        XCTAssertEqual(plain.replicaCount(batch: 64), 2)
        XCTAssertEqual(plain.replicaCount(batch: 15), 1, "fewer than 8 samples per replica")
        let quantizer = try LSQQuantizer(config: QuantizerConfig(), calibration: nil, learningRate: 0.01)
        try quantizer.prepare(model: cnn, communicator: SingleProcessCommunicator())
        XCTAssertEqual(plain.replicaCount(batch: 64), 1, "uncalibrated: the first pass would set step sizes")
        let calibrated = try LSQQuantizer(config: QuantizerConfig(), calibration: try batch(64).images, learningRate: 0.01)
        try calibrated.prepare(model: cnn, communicator: SingleProcessCommunicator())
        XCTAssertEqual(plain.replicaCount(batch: 64), 2, "calibrated: passes only read the step sizes")
    }
}
