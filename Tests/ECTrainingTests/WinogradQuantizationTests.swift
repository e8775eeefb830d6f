import ECCheckpoint
import ECTestSupport
import EasyCompression
import Foundation
import XCTest

/// `int8_winograd`: Winograd-aware quantization (the kernel and the input tiles quantized in
/// the Winograd F(2×2, 3×3) domain) and the int8 Winograd inference path that runs exactly
/// what training fake-quantized.
final class WinogradQuantizationTests: XCTestCase {
    var work: URL!
    override func setUpWithError() throws { work = try TestPaths.temporaryDirectory(name) }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: work) }

    func quantizedGolden(bits: Int, winograd: Bool, perChannel: Bool = false) throws -> (Model, LSQQuantizer) {
        let model = try XCTUnwrap(ModelZoo.make("fmnist-cnn", seed: 0))
        try WeightLoader.load(into: model, from: TestPaths.goldenWeights.path)
        var c = QuantizerConfig()
        c.bits = bits; c.wbits = bits; c.signed = false; c.int8Winograd = winograd; c.perChannel = perChannel
        let q = try LSQQuantizer(config: c, calibration: try Dataset.load(.train, limit: 256).images, learningRate: 0.01)
        try q.prepare(model: model, communicator: SingleProcessCommunicator())
        return (model, q)
    }

    func testPlanAndStepSizesOfWinogradLayers() throws {
        let (_, q) = try quantizedGolden(bits: 8, winograd: true, perChannel: true)
        let plan = try XCTUnwrap(q.plan)
        XCTAssertEqual(plan.quantized.map(\.winograd), [true, true, false, false], "the two 3×3 convolutions; not the dense layers")
        XCTAssertEqual(q.steps["winograd_weight:conv2"]?.shape, [64], "per output channel of U")
        XCTAssertEqual(q.steps["tiles:conv1"]?.shape, [1])
        XCTAssertNil(q.steps["weight:conv1"], "the spatial kernel is not quantized")
        XCTAssertNotNil(q.steps["weight:fc1"])
        let decoded = try JSONDecoder().decode(QuantizationPlan.self, from: try JSONEncoder().encode(plan))
        XCTAssertEqual(decoded, plan, "winograd survives the plan file")
        let old = Data(#"{"layer":"c","op_type":"Conv2D","reads_model_input":true,"input":{"bits":8,"signed":false},"weight":{"parameter":"c/weight","bits":8,"signed":true,"per_channel":false}}"#.utf8)
        XCTAssertFalse(try JSONDecoder().decode(QuantizedLayer.self, from: old).winograd, "older plans: not Winograd")
    }

    /// The int8 Winograd kernel equals the Winograd-aware fake-quant model (same codes; the
    /// integer sums exact), and W8A8 keeps the golden model's accuracy.
    func testInt8WinogradPathMatchesWinogradAwareFakeQuant() throws {
        let (model, q) = try quantizedGolden(bits: 8, winograd: true)
        let test = try Dataset.load(.test, limit: 1000)
        let int8 = try Int8Model(model: model, quantizer: q)
        XCTAssertEqual(Set(int8.winogradLayers.keys), ["conv1", "conv2"])
        let batch = test.gather(0..<200).images
        let a = int8(batch), b = model(Variable(batch), .inference()).value
        let scale = b.scalars.map(abs).max() ?? 1
        XCTAssertLessThan(a.maxAbsDifference(b) / scale, 1e-4, "same codes, sums in another order")
        let fake = try Evaluator.evaluate(model, on: test).accuracy
        XCTAssertEqual(int8.accuracy(on: test), fake, accuracy: 0.002)
        XCTAssertGreaterThan(fake, 0.88, "8-bit Winograd-domain quantization keeps the golden model's ~0.90")

        // Export round trip: the Winograd entries come back to the same outputs.
        let url = work.appendingPathComponent("wino.safetensors")
        try Int8Export.write(int8, to: url)
        let st = try SafeTensors.read(from: url)
        XCTAssertEqual(st["conv2/winograd_weight_int8"]?.shape, [16, 32, 64])
        XCTAssertNil(st["conv2/weight_int8"])
        let loaded = try Int8Model.load(from: url, model: try XCTUnwrap(ModelZoo.make("fmnist-cnn", seed: 3)))
        XCTAssertEqual(loaded(batch), a)
    }

    /// `post_quant` on Winograd layers: the integer path applies the output grid after the
    /// ReLU, as the fake-quant model does, and the export keeps it.
    func testWinogradLayersWithPostQuant() throws {
        let model = try XCTUnwrap(ModelZoo.make("fmnist-cnn", seed: 0))
        try WeightLoader.load(into: model, from: TestPaths.goldenWeights.path)
        var c = QuantizerConfig()
        c.signed = false; c.int8Winograd = true; c.postQuant = true
        let q = try LSQQuantizer(config: c, calibration: try Dataset.load(.train, limit: 256).images, learningRate: 0.01)
        try q.prepare(model: model, communicator: SingleProcessCommunicator())
        let int8 = try Int8Model(model: model, quantizer: q)
        XCTAssertNotNil(int8.winogradLayers["conv2"]?.outputScale)
        let batch = try Dataset.load(.test, limit: 200).images
        let a = int8(batch), b = model(Variable(batch), .inference()).value
        XCTAssertLessThan(a.maxAbsDifference(b) / (b.scalars.map(abs).max() ?? 1), 1e-4)
        let url = work.appendingPathComponent("wino-pq.safetensors")
        try Int8Export.write(int8, to: url)
        XCTAssertEqual(try Int8Model.load(from: url, model: try XCTUnwrap(ModelZoo.make("fmnist-cnn", seed: 3)))(batch), a)
    }

    /// ONNX cannot express Winograd-domain quantization: the QDQ export refuses it by name.
    func testONNXExportRefusesWinogradLayers() throws {
        let (_, q) = try quantizedGolden(bits: 8, winograd: true)
        XCTAssertThrowsError(try ONNXQuantization(q)) {
            XCTAssertTrue("\($0)".contains("conv1") && "\($0)".contains("Winograd domain"), "\($0)")
        }
    }

    /// A plain-QAT model can be run on the int8 Winograd kernel with post-training
    /// Winograd-domain steps; it computes through Winograd (not the direct kernel).
    func testPostTrainingWinogradOfAPlainModel() throws {
        let (model, q) = try quantizedGolden(bits: 8, winograd: false)
        let calibration = try Dataset.load(.train, limit: 256).images
        let direct = try Int8Model(model: model, quantizer: q)
        XCTAssertTrue(direct.winogradLayers.isEmpty)
        let winograd = try Int8Model.postTrainingWinograd(model: model, quantizer: q, calibration: calibration)
        XCTAssertEqual(Set(winograd.winogradLayers.keys), ["conv1", "conv2"])
        XCTAssertEqual(winograd.plan.quantized.filter(\.winograd).map(\.layer), ["conv1", "conv2"])
        let test = try Dataset.load(.test, limit: 1000)
        let batch = test.gather(0..<100).images
        XCTAssertNotEqual(winograd(batch), direct(batch), "another kernel, other roundings")
        XCTAssertEqual(winograd.accuracy(on: test), direct.accuracy(on: test), accuracy: 0.03)
    }

    /// A Winograd-aware QAT job from the CLI: the tile and Winograd-kernel step sizes train
    /// (the chief updates them) and are checkpointed; export writes the Winograd entries.
    func testWinogradAwareTrainingJob() throws {
        let dir = work.appendingPathComponent("run").path, config = work.appendingPathComponent("job.yaml").path
        try """
            model: fmnist-cnn
            dataset: {limit_train: 640, limit_test: 300}
            steps: 6
            batch_size: 64
            optimizer: {name: sgd, lr: 0.01, momentum: 0.9}
            init_from: \(TestPaths.goldenWeights.path)
            save_dir: \(dir)
            compression:
              quantizer: {bits: 4, wbits: 4, signed: false, int8_winograd: true, step_interval: 2, num_trials: 3}
            """.write(toFile: config, atomically: true, encoding: .utf8)
        let r = try TrainCommand.run(config)
        XCTAssertEqual(r.status, 0, r.stderr)
        let tensors = try WeightLoader.readTensors(from: dir)
        let tiles = try XCTUnwrap(tensors["quantizer/step/tiles:conv2"])
        let model = try XCTUnwrap(ModelZoo.make("fmnist-cnn", seed: 0))
        try WeightLoader.load(into: model, from: TestPaths.goldenWeights.path)
        var c = QuantizerConfig(bits: 4, wbits: 4)
        c.signed = false; c.int8Winograd = true
        let fresh = try LSQQuantizer(config: c, calibration: try Dataset.load(.train, limit: 256).images, learningRate: 0.01)
        try fresh.prepare(model: model, communicator: SingleProcessCommunicator())
        XCTAssertNotEqual(tiles, fresh.steps["tiles:conv2"], "the tile step size was updated by training")
        XCTAssertNotNil(tensors["quantizer/step/winograd_weight:conv1"])

        let out = work.appendingPathComponent("int8.safetensors").path
        let e = try ProcessRunner.run([try TestPaths.executable("easycompress"), "export", "--format", "int8", "--from", dir,
                                       "--config", config, "--out", out], timeoutSeconds: 120)
        XCTAssertEqual(e.status, 0, e.stderr)
        XCTAssertEqual(try SafeTensors.read(from: URL(fileURLWithPath: out))["conv1/winograd_weight_int8"]?.shape, [16, 1, 32])
    }
}
