import ECTestSupport
import EasyCompression
import ECCheckpoint
import Foundation
import XCTest

/// LSQ quantization-aware training in real jobs: fake quantization of TensorFlow's weights,
/// chief-only step-size updates at the configured interval, identical scales on every rank.
final class QuantizationJobTests: XCTestCase {
    var work: URL!
    override func setUpWithError() throws { work = try TestPaths.temporaryDirectory(name) }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: work) }

    /// TensorFlow's golden fmnist-cnn through 8-bit and 2-bit fake quantization (no training).
    func testFakeQuantizedGoldenModel() throws {
        let test = try Dataset.load(.test, limit: 2000), train = try Dataset.load(.train, limit: 256)
        func accuracy(bits: Int?) throws -> Double {
            let model = try XCTUnwrap(ModelZoo.make("fmnist-cnn", seed: 0))
            try WeightLoader.load(into: model, from: TestPaths.goldenWeights.path)
            if let bits {
                var c = QuantizerConfig()
                c.bits = bits; c.wbits = bits; c.signed = false
                let q = try LSQQuantizer(config: c, calibration: train.images, learningRate: 0.01)
                try q.prepare(model: model, communicator: SingleProcessCommunicator())
            }
            return try Evaluator.evaluate(model, on: test).accuracy
        }
        let fp32 = try accuracy(bits: nil), w8a8 = try accuracy(bits: 8), w2a2 = try accuracy(bits: 2)
        XCTAssertEqual(w8a8, fp32, accuracy: 0.005, "8 bits lose almost nothing before any training")
        XCTAssertLessThan(w2a2, fp32 - 0.05, "2 bits without training lose a lot (QAT's job)")
    }

    func job(_ name: String, steps: Int, quantizer: String, extra: String = "") throws -> (String, String) {
        let saveDir = work.appendingPathComponent(name).path, config = work.appendingPathComponent("\(name).yaml").path
        try """
            model: fmnist-cnn
            dataset: {limit_train: 640, limit_test: 300}
            steps: \(steps)
            batch_size: 64
            optimizer: {name: sgd, lr: 0.01, momentum: 0.9}
            seed: 4
            log_every: 100
            save_dir: \(saveDir)
            compression:
              quantizer: {\(quantizer)}
            \(extra)
            """.write(toFile: config, atomically: true, encoding: .utf8)
        return (config, saveDir)
    }

    func run(_ config: String, ranks: Int = 1, args: [String] = []) throws -> ProcessResult {
        let r = try TrainCommand.run(config, ranks: ranks, args: args)
        XCTAssertEqual(r.status, 0, r.stderr)
        return r
    }

    func section(_ dir: String) throws -> [String: Any] {
        let s = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/summary.json")))
        return try XCTUnwrap((s as? [String: Any])?["quantizer"] as? [String: Any])
    }

    func testStepSizesUpdateAtTheIntervalThenFreeze() throws {
        let (config, dir) = try job("interval", steps: 9, quantizer: "step_interval: 3, num_trials: 2, fp32_layers: [fc2]")
        _ = try run(config)
        let s = try section(dir)
        XCTAssertEqual(s["updates_done"] as? Int, 2, "steps 3 and 6; frozen after num_trials")
        let layers = try XCTUnwrap(s["layers"] as? [[String: Any]])
        XCTAssertEqual(layers.first { $0["layer"] as? String == "fc2" }?["fp32"] as? Bool, true)
        XCTAssertEqual(layers.filter { $0["fp32"] as? Bool == false }.count, 3)
        let tensors = try WeightLoader.readTensors(from: dir)
        XCTAssertNotNil(tensors["quantizer/step/weight:conv1"])
        XCTAssertNil(tensors["quantizer/step/weight:fc2"], "fp32_layers stay FP32")
    }

    /// Step sizes identical on every rank (`--debug` compares them every step) and the run
    /// exactly one process's of 2 thread replicas: same shards and kernels, the step-size
    /// gradients scaled by the global batch's element count on both, summed in rank order as
    /// in replica order — weights, optimizer state and step sizes bit for bit, on any CPU.
    /// (One pass over the whole batch sums in other orders; `ThreadReplicaTests` compares its
    /// step-size gradients to rounding.)
    func testScalesAreIdenticalOnEveryRankAndMatchOneProcess() throws {
        let q = "step_interval: 2, num_trials: 3, per_channel: true"
        let (replicated, replicatedDir) = try job("replicas", steps: 6, quantizer: q, extra: "threads: 1\nthread_replicas: 2")
        _ = try run(replicated)
        let (config, dir) = try job("two", steps: 6, quantizer: q, extra: "debug_check_every: 1")
        _ = try run(config, ranks: 2, args: ["--debug"])  // parameters and step sizes compared every step
        let tensors = try WeightLoader.readTensors(from: dir)
        XCTAssertFalse(tensors.names.filter { $0.hasPrefix("quantizer/step/") }.isEmpty)
        assertBitIdentical(tensors, try WeightLoader.readTensors(from: replicatedDir), "2 ranks vs 2 thread replicas")
    }

    func testBadQuantizerConfigsAreClearErrors() throws {
        for (q, text) in [("bits: 9", "compression.quantizer.bits must be in [1, 8], got 9"),
                          ("fp32_layers: [conv9]", "'conv9' is not a Conv2D/MatMul layer of fmnist-cnn"),
                          ("pretrained_model: /nonexistent/x", "no such file or directory: /nonexistent/x"),
                          ("pretrained_model: a, pretrain_model: b", "not both")] {
            let (config, _) = try job("bad", steps: 2, quantizer: q)
            let r = try ProcessRunner.run([try TestPaths.executable("easycompress"), "train", "--config", config],
                                          timeoutSeconds: 60)
            XCTAssertNotEqual(r.status, 0, q)
            XCTAssertTrue(r.stderr.contains(text), "\(q): \(r.stderr)")
        }
    }
}

extension QuantizationJobTests {
    func testResumedQuantizationJobEqualsUninterrupted() throws {
        var config = JobConfig()
        config.dataset.limitTrain = 320
        config.dataset.limitTest = 100
        config.batchSize = 32
        config.steps = 8
        config.checkpointEvery = 3
        config.optimizer.lr = 0.01
        var q = QuantizerConfig()
        q.stepInterval = 2
        q.numTrials = 3
        q.signed = false
        config.quantizer = q
        try assertResumeEqualsUninterrupted(config, interruptAt: 3, in: work, prefixes: ["quantizer/"])

        let quantizer = try LSQQuantizer(config: q, calibration: nil, learningRate: 0.01)
        try quantizer.prepare(model: try XCTUnwrap(ModelZoo.make("fmnist-cnn", seed: 1)), communicator: SingleProcessCommunicator())
        XCTAssertThrowsError(try quantizer.restore(tensors: NamedTensors(), state: Data("{}".utf8))) {
            XCTAssertTrue("\($0)".contains("quantizer checkpoint state"), "\($0)")
        }
        XCTAssertThrowsError(try quantizer.restore(tensors: NamedTensors(), state: Data(#"{"format_version": 1, "updates_done": 0}"#.utf8))) {
            XCTAssertTrue("\($0)".contains("quantizer/step/input:conv1: checkpoint has no such tensor"), "\($0)")
        }
    }
}

extension QuantizationJobTests {
    /// `easycompress export --format int8` of a QAT run: the file holds int8 kernels and float
    /// scales (read back by the Python safetensors package too), and the integer path's
    /// accuracy matches the fake-quant model's.
    func testExportInt8FromAQATRun() throws {
        let (config, dir) = try job("export", steps: 6, quantizer: "step_interval: 2, num_trials: 2, signed: false")
        _ = try run(config)
        let out = work.appendingPathComponent("int8.safetensors").path
        let r = try ProcessRunner.run([try TestPaths.executable("easycompress"), "export", "--format", "int8", "--from", dir,
                                       "--config", config, "--out", out], timeoutSeconds: 120)
        XCTAssertEqual(r.status, 0, r.stderr)
        let line = try XCTUnwrap(r.stderr.split(separator: "\n").first { $0.contains("test accuracy int8") })
        let numbers = line.split(separator: " ").compactMap { Double($0.trimmingCharacters(in: .punctuationCharacters)) }
        XCTAssertEqual(numbers.count, 2, String(line))
        XCTAssertEqual(numbers[0], numbers[1], accuracy: 0.002, "int8 vs fake-quant accuracy: \(line)")

        let st = try SafeTensors.read(from: URL(fileURLWithPath: out))
        XCTAssertEqual(st["conv1/weight_int8"]?.dtype, .i8)
        XCTAssertEqual(st["conv1/weight_int8"]?.shape, [3, 3, 1, 32])
        XCTAssertEqual(st["fc1/weight_scale"]?.dtype, .f32)

        let python = ProcessInfo.processInfo.environment["EC_PYTHON"] ?? "python3"
        let check = try ProcessRunner.run([python, "-c", """
            from safetensors.numpy import load_file
            t = load_file('\(out)')
            print(t['conv2/weight_int8'].dtype, t['conv2/weight_int8'].shape, int(abs(t['conv2/weight_int8']).max()) <= 128)
            """], timeoutSeconds: 60)
        if check.status != 0 && ProcessInfo.processInfo.environment["EC_REQUIRE_PYTHON"] != "1" {
            throw XCTSkip("Python safetensors not available: \(check.stderr)")
        }
        XCTAssertEqual(check.stdout, "int8 (3, 3, 32, 64) True\n", check.stderr)

        let (plain, _) = try job("plain", steps: 1, quantizer: "")
        try String(contentsOfFile: plain).replacingOccurrences(of: "compression:\n  quantizer: {}", with: "")
            .write(toFile: plain, atomically: true, encoding: .utf8)
        let bad = try ProcessRunner.run([try TestPaths.executable("easycompress"), "export", "--format", "int8", "--from", dir,
                                         "--config", plain, "--out", out], timeoutSeconds: 60)
        XCTAssertEqual(bad.status, 2)
        XCTAssertTrue(bad.stderr.contains("compression.quantizer"), bad.stderr)
    }
}
