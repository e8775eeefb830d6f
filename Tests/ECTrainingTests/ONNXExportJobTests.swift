import ECTestSupport
import EasyCompression
import ECCheckpoint
import Foundation
import XCTest

/// `easycompress export --format onnx` on real save_dirs — a trained FP32 model, a pruning run
/// (extracted on export), a fine-tuned extracted model, LSQ QAT runs (QDQ) — checked by the
/// `onnx` checker and ONNX Runtime on Fashion-MNIST test images.
final class ONNXExportJobTests: XCTestCase {
    var work: URL!
    override func setUpWithError() throws { work = try TestPaths.temporaryDirectory(name) }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: work) }

    func cli(_ args: [String], timeout: Double = 180) throws -> ProcessResult {
        let r = try ProcessRunner.run([try TestPaths.executable("easycompress")] + args,
                                      environment: ["OPENBLAS_NUM_THREADS": "1"], timeoutSeconds: timeout)
        XCTAssertFalse(r.timedOut, "easycompress \(args) timed out")
        return r
    }

    /// A job file: TensorFlow's golden fmnist-cnn weights, a few steps, `extra` appended.
    func job(_ name: String, steps: Int = 4, limitTest: Int = 500, extra: String = "") throws -> (config: String, saveDir: String) {
        let saveDir = work.appendingPathComponent(name).path, config = work.appendingPathComponent("\(name).yaml").path
        try """
            model: fmnist-cnn
            dataset: {limit_train: 640, limit_test: \(limitTest)}
            steps: \(steps)
            batch_size: 64
            optimizer: {name: sgd, lr: 0.01, momentum: 0.9}
            seed: 4
            log_every: 100
            save_dir: \(saveDir)
            \(extra)
            """.write(toFile: config, atomically: true, encoding: .utf8)
        return (config, saveDir)
    }

    func train(_ config: String) throws {
        let r = try TrainCommand.run(config)
        XCTAssertEqual(r.status, 0, r.stderr)
    }

    /// Exports `saveDir` to ONNX with the CLI and returns the file and the log line.
    func export(_ config: String, from saveDir: String, file: StaticString = #filePath, line: UInt = #line) throws -> (String, String) {
        let out = work.appendingPathComponent("\(URL(fileURLWithPath: saveDir).lastPathComponent).onnx").path
        let r = try cli(["export", "--format", "onnx", "--from", saveDir, "--config", config, "--out", out])
        XCTAssertEqual(r.status, 0, r.stderr, file: file, line: line)
        return (out, String(try XCTUnwrap(r.stderr.split(separator: "\n").first { $0.contains("wrote") }, r.stderr, file: file, line: line)))
    }

    /// Runs the ONNX file on the first `count` test images: ONNX Runtime's logits and accuracy.
    func runtime(_ onnx: String, images count: Int, file: StaticString = #filePath, line: UInt = #line) throws -> (Tensor, Double) {
        let (x, labels) = try Dataset.load(.test, limit: count).gather(0..<count)
        let inputs = work.appendingPathComponent("inputs.safetensors"), outputs = work.appendingPathComponent("outputs.safetensors")
        try SafeTensors(tensors: NamedTensors([("input", x), ("labels", Tensor(shape: [count], scalars: labels.map(Float.init)))]))
            .write(to: inputs)
        let info = try PythonRunner.runONNX(model: onnx, inputs: inputs.path, outputs: outputs.path, file: file, line: line)
        return (try XCTUnwrap(SafeTensors.read(from: outputs)["logits"]?.tensor), try XCTUnwrap(info["accuracy"] as? Double))
    }

    /// The engine's logits for the model `ExportSource` reads from `saveDir`.
    func engine(_ config: String, _ saveDir: String, images count: Int) throws -> (Tensor, ExportSource) {
        let source = try ExportSource.load(try JobConfig.load(file: config), from: saveDir)
        let (x, _) = try Dataset.load(.test, limit: count).gather(0..<count)
        return (source.model(Variable(x), .inference()).value, source)
    }

    func assertSameLogits(_ onnx: Tensor, _ engine: Tensor, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(onnx.shape, engine.shape, file: file, line: line)
        XCTAssertLessThanOrEqual(onnx.maxAbsDifference(engine), 1e-4 * max(1, engine.scalars.map(abs).max()!), file: file, line: line)
    }

    func testFP32RunExportsWithTheEnginesOutputs() throws {
        guard try PythonRunner.require("numpy, onnx, onnxruntime, safetensors.numpy") else { return }
        let (config, dir) = try job("fp32", extra: "init_from: \(TestPaths.goldenWeights.path)")
        try train(config)
        let (onnx, log) = try export(config, from: dir)
        XCTAssertTrue(log.contains("FP32 fmnist-cnn model, ONNX opset 13"), log)
        let (logits, accuracy) = try runtime(onnx, images: 500)
        let (expected, source) = try engine(config, dir, images: 500)
        XCTAssertEqual(source.kind, .fp32)
        assertSameLogits(logits, expected)
        XCTAssertGreaterThan(accuracy, 0.85, "the golden weights' accuracy survives the export")
    }

    /// A pruning run's save_dir is extracted on export; `easycompress finetune`'s save_dir holds
    /// the extracted architecture, rebuilt from its checkpoint's shapes.
    func testPrunedAndFinetunedRunsExportTheSmallModel() throws {
        guard try PythonRunner.require("numpy, onnx, onnxruntime, safetensors.numpy") else { return }
        let (config, pruned) = try job("pruned", steps: 6, extra: """
            init_from: \(TestPaths.goldenWeights.path)
            compression:
              pruner: {compression_ratio: 0.5, step_interval: 2, num_trials: 2, prune_sort_range: local}
            """)
        try train(config)
        let (onnx, log) = try export(config, from: pruned)
        XCTAssertTrue(log.contains("extracted (physically pruned) fmnist-cnn model"), log)
        let (logits, _) = try runtime(onnx, images: 300)
        let (expected, source) = try engine(config, pruned, images: 300)
        XCTAssertEqual(source.kind, .extracted)
        XCTAssertLessThan(source.model.parameterCount, try XCTUnwrap(ModelZoo.make("fmnist-cnn", seed: 0)).parameterCount)
        assertSameLogits(logits, expected)

        let (ftConfig, ftDir) = try job("finetuned", steps: 2)
        let ft = try cli(["finetune", "--from", pruned, "--config", ftConfig])
        XCTAssertEqual(ft.status, 0, ft.stderr)
        let (ftOnnx, ftLog) = try export(ftConfig, from: ftDir)
        XCTAssertTrue(ftLog.contains("extracted (physically pruned)"), ftLog)
        let (ftLogits, _) = try runtime(ftOnnx, images: 300)
        let (ftExpected, ftSource) = try engine(ftConfig, ftDir, images: 300)
        XCTAssertEqual(ftSource.model.parameterCount, source.model.parameterCount, "the same extracted architecture")
        assertSameLogits(ftLogits, ftExpected)
    }

    /// QDQ int8 in ONNX Runtime: test accuracy within 0.2 points of the engine's fake-quant
    /// model on 3000 test images, W8A8 per tensor and W4A4 per channel.
    func testQATRunsExportAsQDQWithTheEnginesAccuracy() throws {
        guard try PythonRunner.require("numpy, onnx, onnxruntime, safetensors.numpy") else { return }
        for (name, quantizer) in [("w8a8", "signed: false"), ("w4a4", "bits: 4, wbits: 4, per_channel: true, signed: false")] {
            let (config, dir) = try job(name, steps: 8, limitTest: 3000, extra: """
                compression:
                  quantizer: {pretrained_model: \(TestPaths.goldenWeights.path), step_interval: 2, num_trials: 3, \(quantizer)}
                """)
            try train(config)
            let (onnx, log) = try export(config, from: dir)
            XCTAssertTrue(log.contains("LSQ-quantized fmnist-cnn model"), log)
            let engineAccuracy = try XCTUnwrap(log.split(separator: " ").last.flatMap { Double($0) }, log)
            let (_, accuracy) = try runtime(onnx, images: 3000)
            XCTAssertEqual(accuracy, engineAccuracy, accuracy: 0.002, "\(name): ONNX Runtime vs engine fake-quant accuracy")
            XCTAssertGreaterThan(accuracy, 0.8, name)
        }
    }

    func testBadExportsAreClearErrors() throws {
        let (config, dir) = try job("bad", steps: 2, extra: """
            compression:
              quantizer: {bits: 1, signed: true, step_interval: 1, num_trials: 1}
            """)
        try train(config)
        let out = work.appendingPathComponent("x.onnx").path
        let binary = try cli(["export", "--format", "onnx", "--from", dir, "--config", config, "--out", out])
        XCTAssertEqual(binary.status, 1)
        XCTAssertTrue(binary.stderr.contains("signed 1-bit (binary) input activations"), binary.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out), "nothing written on error")

        let format = try cli(["export", "--format", "tflite", "--from", dir, "--config", config, "--out", out])
        XCTAssertNotEqual(format.status, 0)
        XCTAssertTrue(format.stderr.contains("'tflite'") && format.stderr.contains("'int8', 'onnx' or 'bsr'"), format.stderr)

        let missing = try cli(["export", "--format", "onnx", "--config", config, "--out", out])
        XCTAssertNotEqual(missing.status, 0)
        XCTAssertTrue(missing.stderr.contains("Missing expected argument '--from"), missing.stderr)

        let nowhere = try cli(["export", "--format", "onnx", "--from", work.appendingPathComponent("nope").path,
                               "--config", config, "--out", out])
        XCTAssertEqual(nowhere.status, 1)
        XCTAssertTrue(nowhere.stderr.contains("no checkpoint in"), nowhere.stderr)

        let (plain, _) = try job("plain")
        let noQuantizer = try cli(["export", "--format", "onnx", "--from", dir, "--config", plain, "--out", out])
        XCTAssertEqual(noQuantizer.status, 2)
        XCTAssertTrue(noQuantizer.stderr.contains("is a quantization-aware training run; give its job file"), noQuantizer.stderr)
    }
}
