import ECTestSupport
import EasyCompression
import Foundation
import XCTest

/// Batch norm on several ranks (docs/distributed.md, "Batch norm on several ranks"): replicas
/// stay identical (running statistics averaged after every step), the reported accuracy is the
/// saved model's, and synchronised batch norm (`sync_batch_norm: true`) on N ranks computes
/// what one process computes on the same global batch.
final class BatchNormAcrossRanksTests: XCTestCase {
    var work: URL!
    override func setUpWithError() throws { work = try TestPaths.temporaryDirectory(name) }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: work) }

    func job(_ name: String, samples: Int = 640, batch: Int = 48, steps: Int, extra: String = "") throws -> (config: String, saveDir: String) {
        let saveDir = work.appendingPathComponent(name).path
        let config = work.appendingPathComponent("\(name).yaml").path
        try """
            model: resnet-mini
            dataset: {limit_train: \(samples), limit_test: 300}
            steps: \(steps)
            batch_size: \(batch)
            seed: 3
            log_every: 100
            report: false
            save_dir: \(saveDir)
            \(extra)
            """.write(toFile: config, atomically: true, encoding: .utf8)
        return (config, saveDir)
    }

    @discardableResult
    func train(_ job: (config: String, saveDir: String), ranks: Int = 1, args: [String] = [],
               file: StaticString = #filePath, line: UInt = #line) throws -> ProcessResult {
        let r = try TrainCommand.run(job.config, ranks: ranks, args: args)
        XCTAssertFalse(r.timedOut, "\(ranks) rank(s) timed out", file: file, line: line)
        XCTAssertEqual(r.status, 0, r.stderr, file: file, line: line)
        return r
    }

    func summaryAccuracy(_ saveDir: String) throws -> Double {
        let s = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: saveDir + "/summary.json")))
        return try XCTUnwrap((s as? [String: Any])?["test_accuracy"] as? Double)
    }

    /// `easycompress eval --json` of the saved model on `ranks` ranks.
    func evalAccuracy(_ job: (config: String, saveDir: String), ranks: Int) throws -> Double {
        let program = [try TestPaths.executable("easycompress"), "eval", "--config", job.config, "--checkpoint", job.saveDir, "--json"]
        let r = ranks > 1 ? try MPIRun.run(ranks: ranks, program, timeoutSeconds: 120)
            : try ProcessRunner.run(program, environment: ["OPENBLAS_NUM_THREADS": "1"], timeoutSeconds: 120)
        XCTAssertEqual(r.status, 0, r.stderr)
        let line = try XCTUnwrap(r.stdout.split(separator: "\n").last { $0.hasPrefix("{") })
        let result = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
        return try XCTUnwrap(result?["accuracy"] as? Double)
    }

    /// resnet-mini on 2 and 3 ranks with `--debug` comparing every parameter (batch-norm
    /// statistics included) after every step; the accuracy the run reports is `eval`'s of the
    /// checkpoint it saved — exactly on the same ranks (the same model, the same shards of the
    /// test set), and on one process up to a prediction whose two largest logits tie within
    /// rounding (the test set's shards are other batches there).
    func testResnetMiniStaysIdenticalOnEveryRankAndReportsTheSavedModel() throws {
        for ranks in [2, 3] {
            let run = try job("ranks\(ranks)", steps: 6, extra: "debug_check_every: 1")
            try train(run, ranks: ranks, args: ["--debug"])
            let reported = try summaryAccuracy(run.saveDir)
            XCTAssertEqual(try evalAccuracy(run, ranks: ranks), reported, "\(ranks) ranks: eval of the saved checkpoint")
            XCTAssertEqual(try evalAccuracy(run, ranks: 1), reported, accuracy: 1.0 / 300 + 1e-12,
                           "\(ranks) ranks: eval on one process")
        }
    }

    /// N ranks of one pass and one process of N thread replicas run synchronised batch norm
    /// with the same shards and add every sum in the same order (replicas in replica order,
    /// ranks in rank order), so their runs — weights, running statistics, optimizer state and
    /// the pruner's masks — are bit-identical; and the masks are one process's (one pass).
    func testSyncBatchNormOnNRanksEqualsNThreadReplicasBitForBit() throws {
        let extra = """
            sync_batch_norm: true
            compression:
              pruner: {compression_ratio: 0.4, step_interval: 2, num_trials: 2}
            """
        let single = try job("one", steps: 5, extra: extra)
        try train(single)
        let onePass = try WeightLoader.readTensors(from: single.saveDir)
        for ranks in [2, 3] {
            let replicated = try job("replicas\(ranks)", steps: 5, extra: extra + "\nthreads: 1\nthread_replicas: \(ranks)")
            let distributed = try job("ranks\(ranks)", steps: 5, extra: extra + "\ndebug_check_every: 1")
            try train(replicated)
            try train(distributed, ranks: ranks, args: ["--debug"])
            let a = try WeightLoader.readTensors(from: replicated.saveDir), b = try WeightLoader.readTensors(from: distributed.saveDir)
            assertBitIdentical(b, a, "\(ranks) ranks vs \(ranks) thread replicas")
            for name in onePass.names where name.hasPrefix("pruner/keep/") {
                XCTAssertEqual(b[name], onePass[name], "\(ranks) ranks: \(name) as one pass decides")
            }
        }
    }

    /// One step of SGD from the same weights: the momentum slot is then the step's gradient g.
    /// With synchronised batch norm, g on N ranks is one process's g up to the order of its
    /// sums: per tensor ‖g_N − g₁‖₂ ≤ 2·γₙ·‖g₁‖₂, the worst-case relative error of two orders
    /// of a sum of n terms (γₙ = n·u/(1 − n·u), u = 2⁻²⁴, n = 48 samples × 28·28 positions, the
    /// longest sum of the step) — CPU-independent. Without synchronisation each rank
    /// normalises its shard by the shard's own statistics, another function: far outside it.
    func testSyncBatchNormOnNRanksMatchesOneProcessOnTheSameGlobalBatch() throws {
        let n = 48.0 * 28 * 28, u = pow(2.0, -24.0)
        let bound = 2 * n * u / (1 - n * u)
        func gradients(_ saveDir: String) throws -> [(String, Tensor)] {
            try WeightLoader.readTensors(from: saveDir).sorted.filter { $0.name.hasSuffix("/momentum") }.map { ($0.name, $0.tensor) }
        }
        func relativeDifference(_ a: Tensor, _ b: Tensor) -> Double {
            let d = zip(a.scalars, b.scalars).reduce(0.0) { $0 + Double($1.0 - $1.1) * Double($1.0 - $1.1) }
            let norm = b.scalars.reduce(0.0) { $0 + Double($1) * Double($1) }
            return norm == 0 ? d.squareRoot() : (d / norm).squareRoot()
        }
        let single = try job("one", steps: 1, extra: "sync_batch_norm: true")
        try train(single)
        let reference = try gradients(single.saveDir)
        XCTAssertFalse(reference.isEmpty)
        for ranks in [2, 3] {
            let synced = try job("sync\(ranks)", steps: 1, extra: "sync_batch_norm: true")
            let own = try job("own\(ranks)", steps: 1)
            try train(synced, ranks: ranks)
            try train(own, ranks: ranks)
            var worstUnsynced = 0.0
            for ((name, g1), (_, gs), (_, go)) in zip3(reference, try gradients(synced.saveDir), try gradients(own.saveDir)) {
                XCTAssertLessThanOrEqual(relativeDifference(gs, g1), bound, "\(ranks) ranks, synchronised: \(name)")
                worstUnsynced = max(worstUnsynced, relativeDifference(go, g1))
            }
            XCTAssertGreaterThan(worstUnsynced, 10 * bound, "\(ranks) ranks without synchronisation: per-shard statistics")
        }
    }

    /// A step whose global batch leaves a rank without samples (98 samples, batch 48: the
    /// third batch has 2, shards 1, 1 and 0): the empty rank still takes part in every layer's
    /// sums, and its running statistics count for nothing in the average.
    func testARankWithAnEmptyShardTakesPart() throws {
        for sync in [true, false] {
            let run = try job("empty-\(sync)", samples: 98, steps: 3,
                              extra: "sync_batch_norm: \(sync)\ndebug_check_every: 1")
            try train(run, ranks: 3, args: ["--debug"])
        }
    }

    func testSyncBatchNormOnAModelWithoutBatchNormIsAnError() throws {
        let saveDir = work.appendingPathComponent("cnn").path, config = work.appendingPathComponent("cnn.yaml").path
        try "model: fmnist-cnn\nsteps: 1\ndataset: {limit_train: 64, limit_test: 64}\nsync_batch_norm: true\nsave_dir: \(saveDir)\n"
            .write(toFile: config, atomically: true, encoding: .utf8)
        let r = try TrainCommand.run(config)
        XCTAssertEqual(r.status, 2, r.stderr)
        XCTAssertTrue(r.stderr.contains("sync_batch_norm: fmnist-cnn has no batch norm layer"), r.stderr)
    }
}

private func zip3<A, B, C>(_ a: [A], _ b: [B], _ c: [C]) -> [(A, B, C)] {
    precondition(a.count == b.count && b.count == c.count, "zip3: \(a.count), \(b.count), \(c.count) elements")
    return a.indices.map { (a[$0], b[$0], c[$0]) }
}
