import ECTestSupport
import Foundation
import XCTest

/// A user's run is never lost or silently replaced (issue #13, items 4–6, 9, 10), through the
/// CLI: a save_dir holding a run is refused unless `--resume` or `--overwrite` says what to do;
/// a job that fails its checks leaves the save_dir byte for byte as it was; a damaged newest
/// checkpoint is named by `eval`, and `--resume` refuses when none verifies; save_dir problems
/// name the key, the path and the fix; `export` reads the job the run recorded.
final class SaveDirTests: XCTestCase {
    var work: URL!

    override func setUpWithError() throws {
        work = try TestPaths.temporaryDirectory(name)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: work)
    }

    private func cli(_ args: [String], timeout: Double = 180, file: StaticString = #filePath, line: UInt = #line) throws -> ProcessResult {
        let result = try ProcessRunner.run([try TestPaths.executable("easycompress")] + args,
                                           environment: ["OPENBLAS_NUM_THREADS": "1"], timeoutSeconds: timeout)
        XCTAssertFalse(result.timedOut, "easycompress \(args) timed out", file: file, line: line)
        return result
    }

    /// A 4-step fmnist-cnn job into `saveDir`, checkpoints at steps 2 and 4, plus `extra` lines.
    private func job(_ saveDir: URL, _ extra: String = "", model: String = "fmnist-cnn", steps: Int = 4, batchSize: Int = 64,
                     dataset: String = "{limit_train: 256, limit_test: 128}") throws -> String {
        let path = work.appendingPathComponent("job-\(UUID().uuidString.prefix(6)).yaml")
        try """
        model: \(model)
        dataset: \(dataset)
        steps: \(steps)
        batch_size: \(batchSize)
        checkpoint_every: 2
        log_every: 2
        save_dir: \(saveDir.path)
        \(extra)
        """.write(to: path, atomically: true, encoding: .utf8)
        return path.path
    }

    /// Every file under `dir` (relative path → bytes).
    private func snapshot(_ dir: URL) throws -> [String: Data] {
        var files: [String: Data] = [:]
        let enumerator = FileManager.default.enumerator(at: dir, includingPropertiesForKeys: [.isRegularFileKey])!
        for case let url as URL in enumerator where (try url.resourceValues(forKeys: [.isRegularFileKey])).isRegularFile == true {
            files[String(url.path.dropFirst(dir.path.count))] = try Data(contentsOf: url)
        }
        return files
    }

    private func assertUnchanged(_ dir: URL, _ before: [String: Data], _ what: String,
                                 file: StaticString = #filePath, line: UInt = #line) throws {
        let after = try snapshot(dir)
        XCTAssertEqual(after.keys.sorted(), before.keys.sorted(), "\(what): the set of files changed", file: file, line: line)
        for (name, data) in before where after[name] != data {
            XCTFail("\(what): \(name) changed", file: file, line: line)
        }
    }

    private func assertFailure(_ r: ProcessResult, status: Int32, saying texts: [String], _ what: String,
                               file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(r.status, status, "\(what): exit status; stderr: \(r.stderr)", file: file, line: line)
        for text in texts {
            XCTAssertTrue(r.stderr.contains(text), "\(what): stderr should contain «\(text)», got: \(r.stderr)", file: file, line: line)
        }
        for hidden in ["NSCocoaErrorDomain", "Error Domain", ".tmp"] {
            XCTAssertFalse(r.stderr.contains(hidden), "\(what): «\(hidden)» in: \(r.stderr)", file: file, line: line)
        }
    }

    // MARK: item 4

    func testTrainRefusesASaveDirHoldingARunUnlessResumeOrOverwrite() throws {
        let saveDir = work.appendingPathComponent("run")
        let config = try job(saveDir)
        let first = try cli(["train", "--config", config])
        XCTAssertEqual(first.status, 0, first.stderr)
        let mine = saveDir.appendingPathComponent("notes.txt")  // the user's own file beside the run
        try Data("mine".utf8).write(to: mine)
        let good = try snapshot(saveDir)

        let again = try cli(["train", "--config", config])
        assertFailure(again, status: 2, saying: ["save_dir: \(saveDir.path) already holds a run (fmnist-cnn, step 4 (finished)",
                                                 "checkpoints/ (2 checkpoints), summary.json, metrics.jsonl, config.json",
                                                 "last written 20", "nothing was changed",
                                                 "add --resume (or resume: true in the job)", "add --overwrite"], "plain train")
        try assertUnchanged(saveDir, good, "a refused train")

        let both = try cli(["train", "--config", config, "--resume", "--overwrite"])
        assertFailure(both, status: 2, saying: ["--overwrite replaces it; give one of them"], "--resume --overwrite")
        try assertUnchanged(saveDir, good, "--resume with --overwrite")

        // --resume continues it (here: nothing left to do, the run is at its last step).
        let resumed = try cli(["train", "--config", config, "--resume"])
        XCTAssertEqual(resumed.status, 0, resumed.stderr)
        XCTAssertTrue(resumed.stderr.contains("resumed from step 4"), resumed.stderr)
        // … and so does resume: true in the job.
        let auto = try cli(["train", "--config", try job(saveDir, "resume: true")])
        XCTAssertEqual(auto.status, 0, auto.stderr)
        XCTAssertTrue(auto.stderr.contains("resumed from step 4"), auto.stderr)

        // --overwrite replaces the run: a 2-step job leaves a 2-step run, nothing of the old one,
        // and the user's other file untouched.
        let short = try job(saveDir, steps: 2)
        let overwritten = try cli(["train", "--config", short, "--overwrite"])
        XCTAssertEqual(overwritten.status, 0, overwritten.stderr)
        XCTAssertTrue(overwritten.stderr.contains("--overwrite: removed the run that was in \(saveDir.path)"), overwritten.stderr)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: saveDir.appendingPathComponent("checkpoints").path).sorted(),
                       ["step-00000002"])
        let metrics = try String(contentsOf: saveDir.appendingPathComponent("metrics.jsonl"), encoding: .utf8)
        XCTAssertFalse(metrics.contains("\"step\":4"), metrics)
        let summary = try JSONSerialization.jsonObject(with: Data(contentsOf: saveDir.appendingPathComponent("summary.json"))) as? [String: Any]
        XCTAssertEqual(summary?["steps"] as? Int, 2)
        XCTAssertEqual(try Data(contentsOf: mine), Data("mine".utf8))
    }

    func testFinetuneRefusesASaveDirHoldingARunAndItsOwnSource() throws {
        let pruned = work.appendingPathComponent("pruned")
        let prune = try job(pruned, "compression: {pruner: {compression_ratio: 0.5, step_interval: 2, num_trials: 1}}")
        XCTAssertEqual(try cli(["train", "--config", prune]).status, 0)
        let small = work.appendingPathComponent("small")
        let finetune = try job(small, steps: 2)
        let first = try cli(["finetune", "--from", pruned.path, "--config", finetune])
        XCTAssertEqual(first.status, 0, first.stderr)
        let good = try snapshot(small)

        let again = try cli(["finetune", "--from", pruned.path, "--config", finetune])
        assertFailure(again, status: 2, saying: ["save_dir: \(small.path) already holds a run", "--overwrite"], "finetune again")
        XCTAssertFalse(again.stderr.contains("extracted"), "refused before the slow part: \(again.stderr)")
        try assertUnchanged(small, good, "a refused finetune")
        let overwritten = try cli(["finetune", "--from", pruned.path, "--config", finetune, "--overwrite"])
        XCTAssertEqual(overwritten.status, 0, overwritten.stderr)

        let prunedBefore = try snapshot(pruned)
        let intoSource = try cli(["finetune", "--from", pruned.path, "--config", try job(pruned), "--overwrite"])
        assertFailure(intoSource, status: 2, saying: ["save_dir: \(pruned.path) is the pruned run given by --from"], "into --from")
        try assertUnchanged(pruned, prunedBefore, "finetune into its own source")
    }

    // MARK: item 5

    /// A good run, then jobs that fail a check into the same save_dir, with `--overwrite` and
    /// with `--resume`: every file stays byte-identical (config.json included).
    func testAJobThatFailsItsChecksLeavesTheSaveDirByteIdentical() throws {
        let saveDir = work.appendingPathComponent("run")
        XCTAssertEqual(try cli(["train", "--config", try job(saveDir)]).status, 0)
        let good = try snapshot(saveDir)
        let q = "compression: {quantizer: {step_interval: 1, num_trials: 1"
        let missing = work.appendingPathComponent("nothing-here").path
        let bad: [(job: String, flags: [[String]], status: Int32, message: String)] = [
            (try job(saveDir, "compression: {pruner: {compression_ratio: 0.5, include_scopes: [conv9]}}"),
             [["--overwrite"], ["--resume"]], 2, "pruner.include_scopes: 'conv9' matches no Conv2D/MatMul kernel of fmnist-cnn"),
            (try job(saveDir, "compression: {sparsifier: {exclude_scopes: [fc3]}}"), [["--overwrite"]], 2,
             "sparsifier.exclude_scopes: 'fc3' matches no Conv2D/MatMul kernel"),
            (try job(saveDir, "\(q), fp32_layers: [conv9]}}"), [["--overwrite"]], 2,
             "quantizer.fp32_layers: 'conv9' is not a Conv2D/MatMul layer"),
            (try job(saveDir, "\(q), include_scopes: [fc9]}}"), [["--overwrite"]], 2,
             "quantizer.include_scopes: 'fc9' matches no Conv2D/MatMul layer"),
            (try job(saveDir, "\(q), pretrained_model: \(missing)}}"), [["--overwrite"]], 2,
             "quantizer.pretrained_model: no such file or directory"),
            (try job(saveDir, "init_from: \(missing)"), [["--overwrite"], ["--resume"]], 1, "no such file or directory"),
            (try job(saveDir, dataset: "{path: \(work.path)}"), [["--overwrite"]], 1, "train-images-idx3-ubyte"),
            (try job(saveDir, batchSize: 512), [["--overwrite"]], 2, "batch_size: 512 is larger than the training set of 256 samples"),
            (try job(saveDir, model: "mlp"), [["--resume"]], 1, "it was written by a job with model fmnist-cnn"),
            (try job(saveDir, batchSize: 32), [["--resume"]], 1, "it was written by a job with model fmnist-cnn, batch_size 64"),
            (try job(saveDir, "seed: 9"), [["--resume"]], 1, "seed 42"),
            (try job(saveDir, "compression: {pruner: {compression_ratio: 0.5}}"), [["--resume"]], 1, "it has no pruner state"),
        ]
        for case_ in bad {
            let text = try String(contentsOfFile: case_.job, encoding: .utf8)
            for flags in case_.flags {
                let r = try cli(["train", "--config", case_.job] + flags)
                assertFailure(r, status: case_.status, saying: [case_.message], "\(text) \(flags)")
                try assertUnchanged(saveDir, good, "\(text) \(flags)")
            }
        }
    }

    // MARK: item 6

    func testEvalNamesTheCheckpointItFallsBackToAndResumeRefusesWhenNoneVerifies() throws {
        let saveDir = work.appendingPathComponent("run")
        let config = try job(saveDir)
        XCTAssertEqual(try cli(["train", "--config", config]).status, 0)
        func damage(_ step: String) throws {
            let url = saveDir.appendingPathComponent("checkpoints/\(step)/tensors.safetensors")
            var bytes = try Data(contentsOf: url)
            bytes[bytes.count - 5] ^= 0xFF
            try bytes.write(to: url)
        }
        try damage("step-00000004")
        let eval = try cli(["eval", "--config", config, "--json"])  // the job's save_dir
        XCTAssertEqual(eval.status, 0, eval.stderr)
        XCTAssertTrue(eval.stderr.contains("warning: skipping checkpoint \(saveDir.path)/checkpoints/step-00000004"), eval.stderr)
        XCTAssertTrue(eval.stderr.contains("checksum"), eval.stderr)
        XCTAssertTrue(eval.stderr.contains("using \(saveDir.path)/checkpoints/step-00000002 (step 2)"), eval.stderr)
        let explicit = try cli(["eval", "--config", config, "--checkpoint", saveDir.path])
        XCTAssertTrue(explicit.stderr.contains("using \(saveDir.path)/checkpoints/step-00000002 (step 2)"), explicit.stderr)

        try damage("step-00000002")
        let before = try snapshot(saveDir)
        let resume = try cli(["train", "--config", config, "--resume"])
        assertFailure(resume, status: 1, saying: ["cannot resume: every checkpoint in \(saveDir.path)/checkpoints fails verification",
                                                  "step-00000004: ", "step-00000002: ", "checksum", "nothing was changed"],
                      "--resume with every checkpoint damaged")
        XCTAssertFalse(resume.stderr.contains("training fmnist-cnn"), "it must not start over: \(resume.stderr)")
        try assertUnchanged(saveDir, before, "a refused resume")
        let auto = try cli(["train", "--config", try job(saveDir, "resume: true")])
        XCTAssertEqual(auto.status, 1, "resume: true refuses as well: \(auto.stderr)")
    }

    // MARK: item 9

    func testSaveDirProblemsNameTheKeyThePathAndTheFix() throws {
        let file = work.appendingPathComponent("a-file")
        try Data("x".utf8).write(to: file)
        let isFile = try cli(["train", "--config", try job(file)])
        assertFailure(isFile, status: 2, saying: ["save_dir: \(file.path) is a file, not a directory", "hint:"], "a file")
        let under = file.appendingPathComponent("run")
        let underFile = try cli(["train", "--config", try job(under)])
        assertFailure(underFile, status: 2, saying: ["save_dir: \(under.path) cannot be created: \(file.path) is a file", "hint:"],
                      "under a file")

        // A read-only file system: a read-only tmpfs mounted in a private mount namespace.
        let mountPoint = work.appendingPathComponent("ro")
        try FileManager.default.createDirectory(at: mountPoint, withIntermediateDirectories: true)
        let probe = try ProcessRunner.run(["unshare", "-m", "sh", "-c", "mount -t tmpfs -o ro tmpfs \"$0\"", mountPoint.path],
                                          timeoutSeconds: 20)
        guard probe.status == 0 else { throw XCTSkip("cannot mount a read-only file system here: \(probe.stderr)") }
        let roJob = try job(mountPoint.appendingPathComponent("run"))
        let readOnly = try ProcessRunner.run(
            ["unshare", "-m", "sh", "-c", "mount -t tmpfs -o ro tmpfs \"$0\" && exec \"$1\" train --config \"$2\"",
             mountPoint.path, try TestPaths.executable("easycompress"), roJob],
            environment: ["OPENBLAS_NUM_THREADS": "1"], timeoutSeconds: 120)
        assertFailure(readOnly, status: 2, saying: ["save_dir: \(mountPoint.path)/run", "is on a read-only file system",
                                                    "hint: choose a save_dir on a writable disk"], "read-only")
    }

    // MARK: item 10

    func testExportReadsTheJobFromTheSaveDirWithoutConfig() throws {
        let saveDir = work.appendingPathComponent("run")
        XCTAssertEqual(try cli(["train", "--config", try job(saveDir)]).status, 0)
        let out = work.appendingPathComponent("model.onnx")
        let r = try cli(["export", "--format", "onnx", "--from", saveDir.path, "--out", out.path])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stderr.contains("FP32 fmnist-cnn model"), r.stderr)
        XCTAssertTrue(FileManager.default.fileExists(atPath: out.path))

        let empty = work.appendingPathComponent("empty")
        try FileManager.default.createDirectory(at: empty, withIntermediateDirectories: true)
        let none = try cli(["export", "--format", "onnx", "--from", empty.path, "--out", out.path])
        assertFailure(none, status: 2, saying: ["\(empty.path)/config.json", "hint: give the job file with --config"], "no config.json")
    }
}
