import ECTestSupport
import EasyCompression
@testable import ECCompression
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

    /// The replicas' summed gradients are the whole batch's up to the order of the sums: per
    /// parameter ‖g_R − g₁‖₂ ≤ 2·γₙ·‖g₁‖₂, the worst-case relative difference of two orders of
    /// the pass's longest sum (n = 64 × 28·28 terms; γₙ = n·u/(1 − n·u), u = 2⁻²⁴), whatever
    /// order a CPU's kernels sum in; the losses likewise (n = 64).
    func testReplicatedGradientsEqualTheWholeBatchGradients() throws {
        let (images, labels) = try batch(64)
        let u = pow(2.0, -24.0)
        func gamma(_ n: Double) -> Double { n * u / (1 - n * u) }
        func norm(_ t: Tensor) -> Double { t.scalars.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot() }
        for replicas in [2, 3, 4] {
            let one = try XCTUnwrap(ModelZoo.make("fmnist-cnn", seed: 5)), many = try XCTUnwrap(ModelZoo.make("fmnist-cnn", seed: 5))
            let a = try session(one, replicas: 1), b = try session(many, replicas: replicas)
            XCTAssertEqual(b.replicaCount(batch: 64), replicas)
            let lossA = a.forwardBackward(images: images, labels: labels, globalBatchSize: 64)
            let lossB = b.forwardBackward(images: images, labels: labels, globalBatchSize: 64)
            XCTAssertLessThanOrEqual(Double(abs(lossA - lossB)), 2 * gamma(64) * Double(abs(lossA)))
            for (p, q) in zip(one.parameters, many.parameters) {
                var difference = p.grad
                difference.addScaled(q.grad, alpha: -1)
                XCTAssertLessThanOrEqual(norm(difference), 2 * gamma(64 * 28 * 28) * norm(p.grad), "\(p.name) with \(replicas) replicas")
            }
        }
    }

    /// N thread replicas compute exactly what N ranks of one thread compute (same shards,
    /// same single-threaded kernels, gradients summed ((g₀ + g₁) + g₂)… — replicas in replica
    /// order, ranks in rank order, `Communicator`): the CLI job on one process with
    /// `thread_replicas: N` and under `mpirun -np N` end with bit-identical weights, optimizer
    /// state and masks, for N = 2 and 3.
    func testThreadReplicasEqualRanksBitForBit() throws {
        for n in [2, 3] {
            try assertThreadReplicasEqualRanks(n, compression: "pruner: {compression_ratio: 0.3, step_interval: 3, num_trials: 2}")
        }
    }

    /// The quantizer too: each replica's step-size gradients go to its own accumulator and are
    /// summed in replica order, as the chief's reduce sums the ranks' in rank order, and the
    /// activations' gradient scale counts the global batch in both.
    func testQuantizationWithThreadReplicasEqualsRanksBitForBit() throws {
        for n in [2, 3] {
            try assertThreadReplicasEqualRanks(n, compression: "quantizer: {step_interval: 3, num_trials: 2, signed: false}")
        }
    }

    func assertThreadReplicasEqualRanks(_ n: Int, compression: String, file: StaticString = #filePath, line: UInt = #line) throws {
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
        let (replicated, replicatedDir) = try job("replicas", replicas: n)
        let (ranks, ranksDir) = try job("ranks", replicas: 1)
        let a = try TrainCommand.run(replicated), b = try TrainCommand.run(ranks, ranks: n)
        XCTAssertEqual(a.status, 0, a.stderr, file: file, line: line)
        XCTAssertEqual(b.status, 0, b.stderr, file: file, line: line)
        assertBitIdentical(try WeightLoader.readTensors(from: ranksDir), try WeightLoader.readTensors(from: replicatedDir),
                           "\(n) ranks vs \(n) thread replicas", file: file, line: line)
    }

    /// LSQ's step-size gradient scale g = 1/√(N·Qp) counts N over the *global* batch for
    /// activations (over the kernel for weights), so replicas (and ranks, bit-identical to
    /// replicas above) sum to one pass's gradient over the global batch — not √R times more,
    /// as counting each replica's slice made it.
    ///
    /// Compared on a batch of R identical copies of a batch A, so that both sides run the same
    /// single-threaded kernels on the same rows and nothing depends on a GEMM's summation
    /// order: each replica's pass is one pass over A with its loss divided by R·|A| instead of
    /// |A| — every gradient exactly 1/R of it (R is a power of two) — and R replicas add R
    /// equal parts exactly. So the weights' step-size gradients equal one pass's over A bit
    /// for bit, and the activations' are one pass's over A times √(N_A/N_RA) = 1/√R (LSQ's
    /// scale over the R-times-larger batch), within the two Float roundings of the scaled sums
    /// (2u·|g|, u = 2⁻²⁴; bound 4u·|g|). Counting the slice gave exactly one pass's instead.
    ///
    /// (One pass over a real batch is no reference here: the step-size gradient is a sum of
    /// terms of both signs that nearly cancel — one pass with 1 or 2 BLAS threads differs by
    /// 13% on conv1's input step — so it agrees with replicas only as far as rounding does.)
    func testStepSizeGradientsCountTheGlobalBatch() throws {
        TrainJob.configureThreads(1)
        defer { TrainJob.configureThreads(nil) }
        let (a, labelsA) = try batch(32)
        func gradients(copies: Int, replicas: Int) throws -> [String: Tensor] {
            let model = try XCTUnwrap(ModelZoo.make("fmnist-cnn", seed: 5))
            let q = try LSQQuantizer(config: QuantizerConfig(), calibration: a, learningRate: 0.01)
            try q.prepare(model: model, communicator: SingleProcessCommunicator())
            let s = try session(model, replicas: replicas)
            let images = Tensor(concatenatingRows: Array(repeating: a, count: copies))
            let labels = Array(Array(repeating: labelsA, count: copies).joined())
            XCTAssertEqual(s.replicaCount(batch: labels.count), replicas)
            _ = s.forwardBackward(images: images, labels: labels, globalBatchSize: labels.count)
            return q.localGradients
        }
        let one = try gradients(copies: 1, replicas: 1)
        XCTAssertTrue(one.keys.contains("input:conv2") && one.keys.contains("weight:conv2"), "\(one.keys.sorted())")
        let u = pow(2.0, -24.0)
        for replicas in [2, 4] {
            let many = try gradients(copies: replicas, replicas: replicas)
            XCTAssertEqual(many.keys.sorted(), one.keys.sorted())
            for (key, g) in one.sorted(by: { $0.key < $1.key }) {
                let actual = try XCTUnwrap(many[key])
                if key.hasPrefix("weight:") {
                    XCTAssertEqual(actual.scalars.map(\.bitPattern), g.scalars.map(\.bitPattern), "\(replicas) replicas: \(key)")
                } else {
                    let expected = g.scalars.map { Double($0) / Double(replicas).squareRoot() }
                    for (i, e) in expected.enumerated() {
                        XCTAssertLessThanOrEqual(abs(Double(actual[flat: i]) - e), 4 * u * abs(Double(g[flat: i])),
                                                 "\(replicas) replicas: \(key)[\(i)] \(actual[flat: i]), expected \(e)")
                    }
                }
            }
        }
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
        resnet.syncBatchNorm = true
        XCTAssertEqual(resnet.replicaCount(batch: 64), 2, "synchronised: one replica moves the running statistics")
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
