import ECTestSupport
import Foundation
import XCTest

/// The built `easycompress` binary: exit codes and error text a user sees.
final class CLITests: XCTestCase {
    var work: URL!

    override func setUpWithError() throws {
        work = try TestPaths.temporaryDirectory(name)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: work)
    }

    func cli(_ args: [String], timeout: Double = 120, file: StaticString = #filePath, line: UInt = #line) throws -> ProcessResult {
        let result = try ProcessRunner.run([try TestPaths.executable("easycompress")] + args,
                                           environment: ["OPENBLAS_NUM_THREADS": "1"], timeoutSeconds: timeout)
        XCTAssertFalse(result.timedOut, "easycompress \(args) timed out", file: file, line: line)
        return result
    }

    func job(_ yaml: String) throws -> String {
        let path = work.appendingPathComponent("job-\(UUID().uuidString.prefix(6)).yaml").path
        try yaml.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func assertFails(_ yaml: String, status: Int32 = 2, saying text: String,
                     file: StaticString = #filePath, line: UInt = #line) throws {
        let r = try cli(["train", "--config", try job(yaml)], file: file, line: line)
        XCTAssertEqual(r.status, status, "exit status; stderr: \(r.stderr)", file: file, line: line)
        XCTAssertTrue(r.stderr.contains(text), "stderr should contain «\(text)», got: \(r.stderr)", file: file, line: line)
    }

    func testHelpListsSubcommandsAndExamples() throws {
        let r = try cli(["--help"])
        XCTAssertEqual(r.status, 0)
        for word in ["train", "finetune", "eval", "export", "report", "Examples:", "easycompress report runs/fmnist-cnn-pruned"] {
            XCTAssertTrue(r.stdout.contains(word), "«\(word)» in: \(r.stdout)")
        }
        let examples = ["train": "easycompress train --config job.yaml --resume",
                        "finetune": "easycompress finetune --from runs/fmnist-cnn-pruned \\\n      --config examples/fmnist-cnn-finetune.yaml",
                        "eval": "easycompress eval --config job.yaml --checkpoint runs/job",
                        "export": "easycompress export --format int8 --from runs/fmnist-cnn-qat \\",
                        "report": "easycompress report runs/fmnist-cnn-pruned"]
        for (command, example) in examples {
            let h = try cli([command, "--help"])
            XCTAssertEqual(h.status, 0, h.stderr)
            XCTAssertTrue(h.stdout.contains("Examples:") && h.stdout.contains(example), "\(command) --help: \(h.stdout)")
        }
        XCTAssertTrue(try cli(["train", "--help"]).stdout.contains("report: false"), "train's help names the opt-out key")
    }

    func testBadConfigValuesAreClearErrors() throws {
        try assertFails("batch_size: 0\n", saying: "batch_size must be ≥ 1, got 0")
        try assertFails("batch_sise: 64\n", saying: "unknown config key 'batch_sise' (did you mean 'batch_size'?)")
        try assertFails("model: vgg99\n", saying: "model must be one of \"mlp\", \"lenet5\", \"fmnist-cnn\", \"resnet-mini\", got \"vgg99\"")
        try assertFails("optimizer: {name: sgd, lr: -0.1}\n", saying: "optimizer.lr must be > 0, got -0.1")
        try assertFails("optimizer: {name: rmsprop}\n", saying: "optimizer.name must be one of")
        try assertFails("epochs: two\n", saying: "epochs must be an integer, got \"two\"")
        try assertFails("dataset: {path: /x, limt_train: 5}\n", saying: "unknown config key 'dataset.limt_train' (did you mean 'dataset.limit_train'?)")
        try assertFails("model: [1, 2\n", saying: "not valid YAML/JSON")
        try assertFails("compression: {sparsifier: {target_sparse_ratio: 1.2}}\n",
                        saying: "compression.sparsifier.target_sparse_ratio must be in [0, 1], got 1.2")
        try assertFails("compression: {sparsifier: {sparse_block_shape: [1, -16]}}\n",
                        saying: "compression.sparsifier.sparse_block_shape must be > 0 in both dimensions, got [1, -16]")
        try assertFails("compression: {sparsifier: {pattern: \"2to4\"}}\n", saying: "compression.sparsifier.pattern must be \"N:M\"")
        try assertFails("compression: {pruner: {compression_ratio: 1.5}}\n",
                        saying: "compression.pruner.compression_ratio must be in [0, 1], got 1.5")
        try assertFails("compression: {pruner: {step_interval: 0}}\n", saying: "compression.pruner.step_interval must be ≥ 1, got 0")
        try assertFails("compression: {pruner: {prunable_op_types: [Conv3D]}}\n",
                        saying: "pruner.prunable_op_types: unknown op type 'Conv3D' (allowed: Conv2D, MatMul)")
        try assertFails("compression: {pruner: {prune_sort_range: galactic}}\n",
                        saying: "compression.pruner.prune_sort_range must be one of \"global\", \"local\", got \"galactic\"")
        try assertFails("compression: {pruner: {channel_multiple: 0}}\n",
                        saying: "compression.pruner.channel_multiple must be in [1, 1024], got 0")
        try assertFails("compression: {pruner: {channel_multiple: 16, narrow_channel_multiple: 0}}\n",
                        saying: "compression.pruner.narrow_channel_multiple must be in [1, 1024], got 0")
        try assertFails("compression: {pruner: {channel_multiple: 16, narrow_channel_multiple: 12}}\n",
                        saying: "pruner.narrow_channel_multiple = 12: it must divide channel_multiple (16)")
        try assertFails("compression: {pruner: {sort_cost: latency}}\n",
                        saying: "compression.pruner.sort_cost must be one of \"params\", \"flops\", got \"latency\"")
        try assertFails("compression: {pruner: {compresion_ratio: 0.5}}\n",
                        saying: "unknown config key 'compression.pruner.compresion_ratio' (did you mean 'compression.pruner.compression_ratio'?)")
    }

    /// Values in range that cannot mean what they say are errors with the reason (issue #13,
    /// item 8); integers too large say so (item 9).
    func testMeaninglessValuesAreErrorsWithAReason() throws {
        let data = "dataset: {limit_train: 200, limit_test: 100}\nsave_dir: \(work.path)/never\n"
        try assertFails("compression: {pruner: {compression_ratio: 1.0}}\n",
                        saying: "pruner.compression_ratio = 1: that would remove every prunable parameter")
        try assertFails("compression: {sparsifier: {target_sparse_ratio: 1}}\n",
                        saying: "sparsifier.target_sparse_ratio = 1: that would zero every weight")
        try assertFails(data + "compression: {pruner: {compression_ratio: 0.5, exclude_scopes: [fc_1]}}\n",
                        saying: "compression.pruner: pruner.exclude_scopes: 'fc_1' matches no Conv2D/MatMul kernel of fmnist-cnn")
        try assertFails(data + "compression: {pruner: {compression_ratio: 0.5, include_scopes: [fc2]}}\n",
                        saying: "pruner: no channel group of fmnist-cnn inside include_scopes [\"fc2\"]")
        try assertFails(data + "compression: {quantizer: {include_scopes: [conv3]}}\n",
                        saying: "compression.quantizer: quantizer.include_scopes: 'conv3' matches no Conv2D/MatMul layer of fmnist-cnn")
        try assertFails("compression: {quantizer: {signed: false, unsigned_after_relu: true}}\n",
                        saying: "quantizer.unsigned_after_relu = true: it only applies with signed: true")
        try assertFails(data + "batch_size: 256\n",
                        saying: "batch_size: 256 is larger than the training set of 200 samples (dataset.limit_train)")
        try assertFails("optimizer: {name: adam, momentum: 0.9}\n",
                        saying: "optimizer.momentum: applies to the sgd optimizer only, and this job's optimizer is adam")
        try assertFails("optimizer: {name: adamw, nesterov: true}\n", saying: "optimizer.nesterov: applies to the sgd optimizer only")
        try assertFails("optimizer: {name: sgd, beta1: 0.8}\n",
                        saying: "optimizer.beta1: applies to the adam/adamw optimizer only, and this job's optimizer is sgd")
        try assertFails("optimizer: {epsilon: 1.0e-7}\n", saying: "optimizer.epsilon: applies to the adam/adamw optimizer only")
        try assertFails("optimizer: {schedule: {name: cosine, step_size: 100}}\n",
                        saying: "optimizer.schedule.step_size: applies to the step schedule only, and this job's schedule is cosine")
        try assertFails("optimizer: {schedule: {gamma: 0.5}}\n", saying: "optimizer.schedule.gamma: applies to the step schedule only")
        try assertFails("optimizer: {schedule: {name: step, min_lr: 0.001}}\n",
                        saying: "optimizer.schedule.min_lr: applies to the cosine schedule only")
        try assertFails("steps: 99999999999999999999\n", saying: "steps must be in [1, 1000000000], got 99999999999999999999")
        try assertFails("batch_size: 99999999999999999999\n", saying: "batch_size: 99999999999999999999 is too large (at most 9223372036854775807)")
        try assertFails("seed: -99999999999999999999\n", saying: "seed: -99999999999999999999 is too small (at least 0)")
        try assertFails("threads: 1.0e+30\n", saying: "threads must be in [1, 256], got 1e+30")
        // The keys that do apply are accepted (the job then fails later, on the missing data).
        try assertFails("optimizer: {name: adam, beta1: 0.8, epsilon: 1.0e-7, schedule: {name: cosine, min_lr: 0.001}}\n"
                        + "dataset: {path: \(work.path)}\nsave_dir: \(work.path)/x\n", status: 1, saying: "train-images-idx3-ubyte")
    }

    /// A global batch smaller than the number of ranks leaves a rank without data at every step.
    func testFewerSamplesPerStepThanRanksIsRefused() throws {
        let config = try job("dataset: {limit_train: 64, limit_test: 64}\nbatch_size: 1\nsteps: 1\nsave_dir: \(work.path)/r\n")
        let r = try MPIRun.run(ranks: 2, [try TestPaths.executable("easycompress"), "train", "--config", config])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("batch_size: 1 samples per step cannot be shared by 2 ranks"), r.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: "\(work.path)/r/config.json"), "nothing written")
    }

    func testAMisspeltCommandGetsASuggestion() throws {
        for (typed, suggestion) in [("trian", "train"), ("evel", "eval"), ("fintune", "finetune"), ("exprot", "export")] {
            let r = try cli([typed, "--config", "job.yaml"])
            XCTAssertEqual(r.status, 64, r.stderr)
            XCTAssertTrue(r.stderr.contains("error: unknown command '\(typed)' (did you mean '\(suggestion)'?)"), r.stderr)
        }
        let far = try cli(["frobnicate"])
        XCTAssertEqual(far.status, 64)
        XCTAssertTrue(far.stderr.contains("unknown command 'frobnicate'\ncommands: train, finetune, eval, export, inspect, report"),
                      far.stderr)
    }

    func testVersionPrintsTheKernelsInUse() throws {
        let r = try cli(["--version"])
        XCTAssertEqual(r.status, 0, r.stderr)
        for line in ["easycompress (EasyCompression for Swift)", "CPU: ", "BLAS: OpenBLAS", "core in use: ", "engine kernels:",
                     "  int8 GEMM: ", "  block-sparse matmul: "] {
            XCTAssertTrue(r.stdout.contains(line), "«\(line)» in \(r.stdout)")
        }
    }

    func testMissingFilesAreClearErrors() throws {
        let r = try cli(["train", "--config", work.appendingPathComponent("nope.yaml").path])
        XCTAssertEqual(r.status, 2)
        XCTAssertTrue(r.stderr.contains("cannot read config"), r.stderr)
        try assertFails("dataset: {path: \(work.path)}\nsteps: 1\nsave_dir: \(work.path)/out\n", status: 1,
                        saying: "train-images-idx3-ubyte")
        let bad = try cli(["train", "--config", "x.yaml", "--confg", "y"])
        XCTAssertNotEqual(bad.status, 0)
        XCTAssertTrue(bad.stderr.contains("--confg"), bad.stderr)
    }

    func testTrainThenEvaluate() throws {
        let saveDir = work.appendingPathComponent("run").path
        let config = try job("""
            model: fmnist-cnn
            dataset: {limit_train: 640, limit_test: 500}
            steps: 12
            batch_size: 64
            checkpoint_every: 5
            keep_checkpoints: 2
            log_every: 4
            save_dir: \(saveDir)
            """)
        let r = try cli(["train", "--config", config])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stderr.contains("results in \(saveDir)"), r.stderr)

        let summaryData = try Data(contentsOf: URL(fileURLWithPath: saveDir + "/summary.json"))
        let summary = try XCTUnwrap(JSONSerialization.jsonObject(with: summaryData) as? [String: Any])
        for key in ["model", "world_size", "steps", "epochs", "test_accuracy", "test_loss", "params", "flops",
                    "train_samples_per_second", "layers"] {
            XCTAssertNotNil(summary[key], "summary.json lacks \(key)")
        }
        XCTAssertEqual(summary["steps"] as? Int, 12)
        XCTAssertEqual(summary["params"] as? Int, 421_642)
        let layers = try XCTUnwrap(summary["layers"] as? [[String: Any]])
        XCTAssertEqual(layers.map { $0["name"] as? String }, ["conv1", "conv2", "fc1", "fc2"])
        XCTAssertEqual(layers.map { $0["op_type"] as? String }, ["Conv2D", "Conv2D", "MatMul", "MatMul"])

        let metrics = try String(contentsOfFile: saveDir + "/metrics.jsonl", encoding: .utf8)
        XCTAssertEqual(metrics.split(separator: "\n").filter { $0.contains("\"event\":\"train\"") }.count, 3)
        let checkpoints = try FileManager.default.contentsOfDirectory(atPath: saveDir + "/checkpoints").sorted()
        XCTAssertEqual(checkpoints, ["step-00000010", "step-00000012"], "keeps the last 2")

        let e = try cli(["eval", "--config", config, "--checkpoint", saveDir, "--json"])
        XCTAssertEqual(e.status, 0, e.stderr)
        let result = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(e.stdout.utf8)) as? [String: Any])
        XCTAssertEqual(result["accuracy"] as? Double, summary["test_accuracy"] as? Double, "eval of the saved weights = final eval")

        // A flipped byte in the weights is detected, named, and not a crash.
        let tensors = saveDir + "/checkpoints/step-00000012/tensors.safetensors"
        var bytes = try Data(contentsOf: URL(fileURLWithPath: tensors))
        bytes[bytes.count - 3] ^= 0xFF
        try bytes.write(to: URL(fileURLWithPath: tensors))
        let corrupt = try cli(["eval", "--config", config, "--checkpoint", saveDir + "/checkpoints/step-00000012"])
        XCTAssertEqual(corrupt.status, 1)
        XCTAssertTrue(corrupt.stderr.contains("tensors.safetensors"), corrupt.stderr)
        XCTAssertTrue(corrupt.stderr.contains("checksum"), corrupt.stderr)
    }

    /// Runs `script` with real NumPy in `work` (skips, or fails under `EC_REQUIRE_PYTHON=1`, without it).
    func numpy(_ script: String, file: StaticString = #filePath, line: UInt = #line) throws -> Bool {
        guard try PythonRunner.require("numpy", file: file, line: line) else { return false }
        let r = try PythonRunner.run("import sys, os, numpy as np\nos.chdir(sys.argv[1])\n" + script, [work.path])
        XCTAssertEqual(r.status, 0, r.stderr, file: file, line: line)
        return r.status == 0
    }

    func summary(_ saveDir: String) throws -> [String: Any] {
        let data = try Data(contentsOf: URL(fileURLWithPath: saveDir + "/summary.json"))
        return try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    /// A slice of Fashion-MNIST written by NumPy as PyTorch users hold it (N×1×28×28 uint8,
    /// int64 labels) trains to a sane accuracy in a few dozen steps, and `eval` reads it back.
    func testTrainsOnAnNPZSliceOfFashionMNIST() throws {
        guard try numpy("""
            import gzip
            def idx(name, offset):
                path = '/usr/share/datasets/fashion-mnist/' + name
                data = open(path, 'rb').read() if os.path.exists(path) else gzip.open(path + '.gz').read()
                return np.frombuffer(data, np.uint8, offset=offset)
            x = idx('train-images-idx3-ubyte', 16).reshape(-1, 1, 28, 28)
            y = idx('train-labels-idx1-ubyte', 8).astype(np.int64)
            np.savez_compressed('train.npz', x=x[:640], y=y[:640])
            np.savez('test.npz', x=x[-200:], y=y[-200:])
            """) else { return }
        let saveDir = work.appendingPathComponent("run").path
        let config = try job("""
            model: fmnist-cnn
            dataset: {format: npz, train: \(work.path)/train.npz, test: \(work.path)/test.npz}
            steps: 60
            batch_size: 32
            optimizer: {name: sgd, lr: 0.05, momentum: 0.9}
            log_every: 20
            save_dir: \(saveDir)
            """)
        let r = try cli(["train", "--config", config], timeout: 300)
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stderr.contains("data: 640 training and 200 test images of 28×28×1, 10 classes (labels 0…9 in "
                                        + "\(work.path)/train.npz y); uint8 pixels kept as bytes (NCHW inferred from the shape)"), r.stderr)
        let accuracy = try XCTUnwrap(try summary(saveDir)["test_accuracy"] as? Double)
        XCTAssertGreaterThan(accuracy, 0.6, "60 steps (3 epochs) on 640 images reach 0.715; chance is 0.1")
        XCTAssertEqual(try summary(saveDir)["params"] as? Int, 421_642, "the zoo model as on the IDX files")

        let e = try cli(["eval", "--config", config, "--checkpoint", saveDir, "--json"])
        XCTAssertEqual(e.status, 0, e.stderr)
        let result = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(e.stdout.utf8)) as? [String: Any])
        XCTAssertEqual(result["accuracy"] as? Double, accuracy, "eval of the saved weights = final eval")
    }

    /// Colour images in separate .npy files with per-channel normalisation: the zoo model is
    /// built for 16×16×3 and 12 classes, trains, and evaluates.
    func testTrainsAZooModelOnColourNPYArrays() throws {
        guard try numpy("""
            rng = np.random.default_rng(3)
            for split, n in [('train', 96), ('test', 24)]:
                np.save(f'{split}_x.npy', rng.random((n, 16, 16, 3), dtype=np.float32) * 4)
                np.save(f'{split}_y.npy', np.arange(n) % 12)
            """) else { return }
        let saveDir = work.appendingPathComponent("rgb").path
        let config = try job("""
            model: lenet5
            dataset:
              format: npy
              train_x: \(work.path)/train_x.npy
              train_y: \(work.path)/train_y.npy
              test_x: \(work.path)/test_x.npy
              test_y: \(work.path)/test_y.npy
              scale: 0.25
              mean: [0.5, 0.5, 0.5]
              std: [0.29, 0.29, 0.29]
            steps: 3
            batch_size: 32
            save_dir: \(saveDir)
            """)
        let r = try cli(["train", "--config", config])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stderr.contains("96 training and 24 test images of 16×16×3, 12 classes"), r.stderr)
        let layers = try XCTUnwrap(try summary(saveDir)["layers"] as? [[String: Any]])
        XCTAssertEqual(layers.last?["params"] as? Int, 84 * 12 + 12, "fc3 has 12 outputs")
        let e = try cli(["eval", "--config", config, "--checkpoint", saveDir, "--json"])
        XCTAssertEqual(e.status, 0, e.stderr)
    }

    /// Data the model cannot take stop the job with the reason before anything is written.
    func testDataTheModelCannotTakeStopTheJobBeforeItWrites() throws {
        guard try numpy("""
            np.savez('twelve.npz', x=np.zeros((24, 28, 28), np.uint8), y=np.arange(24) % 12)
            np.savez('tiny.npz', x=np.zeros((4, 8, 8), np.uint8), y=np.arange(4))
            """) else { return }
        let saveDir = work.appendingPathComponent("never").path
        let labels = "\(work.path)/twelve.npz (member y.npy): label 10 at index 10 is outside 0..<10"
        try assertFails("dataset: {format: npz, train: \(work.path)/twelve.npz, test: \(work.path)/twelve.npz, classes: 10}\n"
                        + "steps: 1\nsave_dir: \(saveDir)\n", status: 1, saying: labels)
        XCTAssertFalse(FileManager.default.fileExists(atPath: saveDir), "nothing written")
        try assertFails("model: lenet5\ndataset: {format: npz, train: \(work.path)/tiny.npz, test: \(work.path)/tiny.npz}\n"
                        + "steps: 1\nsave_dir: \(saveDir)\n",
                        saying: "dataset: images are 8×8×1 (\(work.path)/tiny.npz x), model lenet5 needs at least 12×12")
        XCTAssertFalse(FileManager.default.fileExists(atPath: saveDir), "nothing written")
    }
}
