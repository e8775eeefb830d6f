import ECTestSupport
import EasyCompression
import ECCheckpoint
import Foundation
import XCTest

/// Fault survival (docs/formats.md, checkpoints): a compression job whose rank is SIGKILLed mid-run ends promptly
/// with a non-zero status, its last checkpoint stays intact, and `--resume` finishes the job
/// with the same final weights and compressor state as an uninterrupted run on the same
/// number of ranks.
final class KillResumeTests: XCTestCase {
    var work: URL!
    override func setUpWithError() throws { work = try TestPaths.temporaryDirectory(name) }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: work) }

    /// 8 steps, a checkpoint every 3, decisions at steps 2, 4, 6: the kill after step 5 lands
    /// between two decisions and two checkpoints.
    func job(_ name: String, compression: String, extra: String = "", checkpointEvery: Int = 3,
             model: String = "fmnist-cnn") throws -> (config: String, saveDir: String) {
        let saveDir = work.appendingPathComponent(name).path, config = work.appendingPathComponent("\(name).yaml").path
        try """
            model: \(model)
            dataset: {limit_train: 640, limit_test: 200}
            steps: 8
            batch_size: 64
            optimizer: {name: sgd, lr: 0.01, momentum: 0.9}
            seed: 11
            log_every: 100
            checkpoint_every: \(checkpointEvery)
            save_dir: \(saveDir)
            \(extra)
            compression:
              \(compression)
            """.write(toFile: config, atomically: true, encoding: .utf8)
        return (config, saveDir)
    }

    /// `resumeKey`: relaunch with the job key `resume: true` instead of `--resume`.
    func assertKilledJobResumesToTheUninterruptedState(compression: String, prefix: String, ranks: Int, resumeKey: Bool = false,
                                                       checkpointEvery: Int = 3, model: String = "fmnist-cnn",
                                                       file: StaticString = #filePath, line: UInt = #line) throws {
        let survivorStep = 5 / checkpointEvery * checkpointEvery
        let straight = try job("straight", compression: compression, checkpointEvery: checkpointEvery, model: model)
        let done = try TrainCommand.run(straight.config, ranks: ranks)
        XCTAssertEqual(done.status, 0, done.stderr, file: file, line: line)

        let killed = try job("killed", compression: compression, extra: resumeKey ? "resume: true" : "",
                             checkpointEvery: checkpointEvery, model: model)
        let victim = ranks - 1
        let crash = try TrainCommand.run(killed.config, ranks: ranks, environment: ["EC_FAULT_KILL": "\(victim):5"],
                                         timeoutSeconds: 60)
        XCTAssertNotEqual(crash.status, 0, "a killed rank fails the job", file: file, line: line)
        XCTAssertFalse(crash.timedOut, "the job ends promptly, no rank left waiting: \(crash.stderr)", file: file, line: line)
        let store = CheckpointStore(directory: URL(fileURLWithPath: killed.saveDir).appendingPathComponent("checkpoints"))
        let survivor = try store.loadLatest()  // verifies every file's checksum
        XCTAssertEqual(survivor?.step, survivorStep, "the step-\(survivorStep) checkpoint is the newest and intact",
                       file: file, line: line)
        XCTAssertFalse(FileManager.default.fileExists(atPath: killed.saveDir + "/summary.json"), file: file, line: line)

        let resumed = try TrainCommand.run(killed.config, ranks: ranks, args: resumeKey ? [] : ["--resume"])
        XCTAssertEqual(resumed.status, 0, resumed.stderr, file: file, line: line)
        XCTAssertTrue(resumed.stderr.contains("resumed from step \(survivorStep)"), resumed.stderr, file: file, line: line)

        // The metrics log has each step once, as the uninterrupted run's.
        func lines(_ dir: String) throws -> [String] {
            try String(contentsOfFile: dir + "/metrics.jsonl", encoding: .utf8).split(separator: "\n").map { line in
                let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
                return "\(object["event"]!) \(object["step"]!) \(object["compressor"] ?? "")"
            }
        }
        XCTAssertEqual(try lines(killed.saveDir), try lines(straight.saveDir), file: file, line: line)

        let expected = try WeightLoader.readTensors(from: straight.saveDir)
        let found = try WeightLoader.readTensors(from: killed.saveDir)
        XCTAssertEqual(found.names, expected.names, file: file, line: line)
        XCTAssertTrue(expected.names.contains { $0.hasPrefix(prefix) }, "the compressor's state is checked", file: file, line: line)
        for name in expected.names {
            XCTAssertEqual(found[name], expected[name], "\(name) equals the uninterrupted run's, bit for bit", file: file, line: line)
        }
    }

    static let pruner = "pruner: {compression_ratio: 0.5, step_interval: 2, num_trials: 3}"
    static let quantizer = "quantizer: {step_interval: 2, num_trials: 3, signed: false}"
    static let sparsifier = "sparsifier: {target_sparse_ratio: 0.6, sparse_block_shape: [1, 16], step_interval: 2, num_trials: 3}"

    func testKilledPruningJobResumes() throws {
        try assertKilledJobResumesToTheUninterruptedState(compression: Self.pruner, prefix: "pruner/", ranks: 1)
    }

    func testKilledPruningJobOnTwoRanksResumes() throws {
        try assertKilledJobResumesToTheUninterruptedState(compression: Self.pruner, prefix: "pruner/", ranks: 2)
    }

    /// Decisions are delayed by one step (docs/distributed.md): the decision of trial step s
    /// is computed while step s + 1 trains and applied after it, on every rank; one at the last
    /// step is applied at once. A checkpoint of a trial step holds no decision yet — the resumed
    /// run computes it again from the same state (the step-4 checkpoint here, trial steps 2, 4,
    /// 6, 8 of 8), on one rank and on two, pruner and sparsifier alike.
    func testAJobKilledAfterACheckpointOfAPendingDecisionResumes() throws {
        let pruner = "pruner: {compression_ratio: 0.5, step_interval: 2, num_trials: 4}"
        let sparsifier = "sparsifier: {target_sparse_ratio: 0.6, sparse_block_shape: [1, 16], step_interval: 2, num_trials: 4}"
        for (compression, prefix) in [(pruner, "pruner/"), (sparsifier, "sparsifier/")] {
            for ranks in [1, 2] {
                try assertKilledJobResumesToTheUninterruptedState(compression: compression, prefix: prefix, ranks: ranks,
                                                                  checkpointEvery: 2)
                let lines = try String(contentsOfFile: work.appendingPathComponent("straight").path + "/metrics.jsonl", encoding: .utf8)
                    .split(separator: "\n").compactMap { try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
                    .filter { $0["event"] as? String == "compression" }
                XCTAssertEqual(lines.map { $0["step"] as? Int }, [3, 5, 7, 8], "applied after the next step; the last at once")
                XCTAssertEqual(lines.map { $0["decision_step"] as? Double }, [2, 4, 6, nil])
                try FileManager.default.removeItem(at: work)
                work = try TestPaths.temporaryDirectory(name)
            }
        }
    }

    /// The user's own model too: the imported PyTorch ResNet-style fixture (batch norm, residual
    /// adds) killed and resumed on 2 ranks under each compressor ends bit for bit where the
    /// uninterrupted run does.
    func testKilledJobsOnAnImportedModelResume() throws {
        let model = "{onnx: \(TestPaths.fixtures.appendingPathComponent("onnx/torch_resnet.onnx").path)}"
        for (compression, prefix) in [(Self.pruner, "pruner/"), (Self.quantizer, "quantizer/"), (Self.sparsifier, "sparsifier/")] {
            try assertKilledJobResumesToTheUninterruptedState(compression: compression, prefix: prefix, ranks: 2, model: model)
            try FileManager.default.removeItem(at: work)
            work = try TestPaths.temporaryDirectory(name)
        }
    }

    func testKilledQuantizationJobResumes() throws {
        try assertKilledJobResumesToTheUninterruptedState(compression: Self.quantizer, prefix: "quantizer/", ranks: 1, resumeKey: true)
    }

    func testKilledQuantizationJobOnTwoRanksResumes() throws {
        try assertKilledJobResumesToTheUninterruptedState(compression: Self.quantizer, prefix: "quantizer/", ranks: 2)
    }

    func testKilledSparsityJobResumes() throws {
        try assertKilledJobResumesToTheUninterruptedState(compression: Self.sparsifier, prefix: "sparsifier/", ranks: 1)
    }

    func testKilledSparsityJobOnTwoRanksResumes() throws {
        try assertKilledJobResumesToTheUninterruptedState(compression: Self.sparsifier, prefix: "sparsifier/", ranks: 2)
    }

    /// A newest checkpoint damaged on disk (a flipped byte) is skipped with a warning naming it;
    /// the job resumes from the one before and ends where the undamaged run ended.
    func testACorruptNewestCheckpointIsSkippedAndTheJobResumesFromTheOlderOne() throws {
        let run = try job("corrupt", compression: Self.pruner)
        XCTAssertEqual(try TrainCommand.run(run.config).status, 0)
        let expected = try WeightLoader.readTensors(from: run.saveDir)
        let newest = URL(fileURLWithPath: run.saveDir).appendingPathComponent("checkpoints/step-00000008/tensors.safetensors")
        var bytes = try Data(contentsOf: newest)
        bytes[bytes.count - 5] ^= 0x40
        try bytes.write(to: newest)

        let resumed = try TrainCommand.run(run.config, args: ["--resume"])
        XCTAssertEqual(resumed.status, 0, resumed.stderr)
        XCTAssertTrue(resumed.stderr.contains("warning: skipping checkpoint \(newest.deletingLastPathComponent().path)"), resumed.stderr)
        XCTAssertTrue(resumed.stderr.contains("checksum"), resumed.stderr)
        XCTAssertTrue(resumed.stderr.contains("resumed from step 6"), resumed.stderr)
        let found = try WeightLoader.readTensors(from: run.saveDir)
        for name in expected.names { XCTAssertEqual(found[name], expected[name], name) }
    }

    /// Resuming on another number of ranks continues the job (the data position and the
    /// global batch do not depend on it) and says that the result is not bit-identical.
    func testResumingOnAnotherWorldSizeContinuesWithAWarning() throws {
        let run = try job("resize", compression: Self.pruner)
        let crash = try TrainCommand.run(run.config, environment: ["EC_FAULT_KILL": "0:5"], timeoutSeconds: 60)
        XCTAssertNotEqual(crash.status, 0)
        let resumed = try TrainCommand.run(run.config, ranks: 2, args: ["--resume"])
        XCTAssertEqual(resumed.status, 0, resumed.stderr)
        XCTAssertTrue(resumed.stderr.contains("was written by a job on 1 rank(s), this one runs on 2"), resumed.stderr)
        XCTAssertTrue(resumed.stderr.contains("resumed from step 3"), resumed.stderr)
        let summary = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: run.saveDir + "/summary.json")))
        XCTAssertEqual((summary as? [String: Any])?["steps"] as? Int, 8)
    }
}
