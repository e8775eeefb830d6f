import ECCheckpoint
import ECTestSupport
import EasyCompression
import Foundation
import XCTest

/// The integer inference path and the int8 export: TensorFlow's golden fmnist-cnn, quantized by
/// LSQ (calibrated on 256 training images, no training), run with int8 codes and Int32 sums.
final class Int8Tests: XCTestCase {
    var work: URL!
    override func setUpWithError() throws { work = try TestPaths.temporaryDirectory(name) }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: work) }

    nonisolated(unsafe) static var cachedTest: Dataset?
    nonisolated(unsafe) static var cachedCalibration: Tensor?

    var test: Dataset { get throws {
        if Self.cachedTest == nil { Self.cachedTest = try Dataset.load(.test, limit: 2000) }
        return Self.cachedTest!
    } }

    /// The golden model with an LSQ quantizer (W`bits`A`bits`, unsigned activations) prepared on it.
    func quantizedGolden(bits: Int, perChannel: Bool = false) throws -> (Model, LSQQuantizer) {
        if Self.cachedCalibration == nil { Self.cachedCalibration = try Dataset.load(.train, limit: 256).images }
        let model = try XCTUnwrap(ModelZoo.make("fmnist-cnn", seed: 0))
        try WeightLoader.load(into: model, from: TestPaths.goldenWeights.path)
        var c = QuantizerConfig()
        c.bits = bits; c.wbits = bits; c.signed = false; c.perChannel = perChannel
        let q = try LSQQuantizer(config: c, calibration: Self.cachedCalibration, learningRate: 0.01)
        try q.prepare(model: model, communicator: SingleProcessCommunicator())
        return (model, q)
    }

    /// Integer and fake-quant accuracies over the 2,000 test images; the largest logit
    /// difference relative to the largest logit magnitude over 500 of them, and how many of
    /// those 500 images differ by more than 1e-5 of it.
    func compare(_ model: Model, _ int8: Int8Model) throws -> (int8: Double, fake: Double, relative: Float, imagesOver1e5: Int) {
        let data = try test
        let clock = ContinuousClock()
        var fake = 0.0, integer = 0.0
        let fakeTime = try clock.measure { fake = try Evaluator.evaluate(model, on: data).accuracy }
        let intTime = clock.measure { integer = int8.accuracy(on: data) }
        print("int8: \(data.count) images in \(intTime) (integer) vs \(fakeTime) (fake-quant, BLAS)")
        let batch = data.gather(0..<500).images
        let a = int8(batch), b = model(Variable(batch), .inference()).value
        let scale = b.scalars.map(abs).max() ?? 1
        let classes = b.shape[1]
        let over = (0..<b.shape[0]).filter { i in
            (0..<classes).contains { abs(a.scalars[i * classes + $0] - b.scalars[i * classes + $0]) / scale > 1e-5 }
        }
        return (integer, fake, a.maxAbsDifference(b) / scale, over.count)
    }

    /// (a) W8A8: the integer path's accuracy equals the fake-quant model's within 0.2 points and
    /// its logits differ only by Float rounding of the sums.
    func testW8A8MatchesFakeQuantModel() throws {
        let (model, q) = try quantizedGolden(bits: 8)
        let r = try compare(model, try Int8Model(model: model, quantizer: q))
        print("int8 W8A8: integer \(r.int8), fake-quant \(r.fake), max |Δlogit| / max |logit| = \(r.relative)")
        XCTAssertEqual(r.int8, r.fake, accuracy: 0.002)
        XCTAssertGreaterThan(r.int8, 0.85, "the golden model stays accurate at 8 bits")
        // Both paths compute Σ q_x·q_w·s_a·s_w on the same codes: the integer sums are exact, the
        // fake-quant Float sums (K ≤ 3136 terms) err by about √K·ε ≈ 3e-6 relative (measured:
        // 1.5e-7 on all but one image). An activation within that rounding of a code boundary
        // can still take the neighbouring code in one path: one image of the 500 does with the
        // engine's own GEMM kernels (4.2e-4, one code step; OpenBLAS's sums happened to round to
        // the integer path's side). Paths disagreeing on some code would show on many images.
        XCTAssertLessThanOrEqual(r.imagesOver1e5, 2, "images whose logits differ by more than Float rounding")
        XCTAssertLessThan(r.relative, 1e-3)
    }

    /// (b) Stored codes lie in [−Qn, Qp] and dequantize exactly to the fake-quantized kernels.
    func testWeightCodesDequantizeToFakeQuantWeights() throws {
        for perChannel in [false, true] {
            let (model, q) = try quantizedGolden(bits: 8, perChannel: perChannel)
            let int8 = try Int8Model(model: model, quantizer: q)
            for planned in try XCTUnwrap(q.plan).quantized {
                let layer = try XCTUnwrap(int8.layers[planned.layer])
                let range = QuantRange(bits: 8, signed: true)
                XCTAssertTrue(layer.weights.allSatisfy { Float($0) >= -range.qn && Float($0) <= range.qp })
                XCTAssertEqual(layer.weightScale.count, perChannel ? layer.weightShape.last! : 1)
                let w = try XCTUnwrap(model.parameter(named: planned.weight.parameter)).value
                let step = try XCTUnwrap(q.steps["weight:\(planned.layer)"])
                let fake = Variable(w).fakeQuantLSQ(stepSize: Variable(step), range: range,
                                                    channelAxisSize: perChannel ? w.shape.last : nil).value
                XCTAssertEqual(layer.dequantizedWeights, fake, "\(planned.layer) per_channel \(perChannel)")
            }
        }
    }

    /// (c) Export → load into a fresh skeleton gives identical outputs; (e) a missing entry or
    /// a wrong shape is a clear error naming it.
    func testExportRoundTripAndErrors() throws {
        var config = QuantizerConfig()
        config.signed = false; config.fp32Layers = ["fc2"]; config.perChannel = true
        let model = try XCTUnwrap(ModelZoo.make("fmnist-cnn", seed: 0))
        try WeightLoader.load(into: model, from: TestPaths.goldenWeights.path)
        let q = try LSQQuantizer(config: config, calibration: try test.gather(0..<64).images, learningRate: 0.01)
        try q.prepare(model: model, communicator: SingleProcessCommunicator())
        let url = work.appendingPathComponent("int8.safetensors")
        try Int8Export.write(model: model, quantizer: q, to: url)

        let st = try SafeTensors.read(from: url)
        XCTAssertEqual(st["conv2/weight_int8"]?.dtype, .i8)
        XCTAssertEqual(st["conv2/weight_int8"]?.shape, [3, 3, 32, 64])
        XCTAssertEqual(st["conv2/weight_scale"]?.shape, [64])
        XCTAssertEqual(st["fc1/input_scale"]?.shape, [1])
        XCTAssertEqual(st["fc2/weight"]?.dtype, .f32, "fp32_layers stay FP32")
        XCTAssertNil(st["conv1/weight"], "no FP32 copy of a quantized kernel")
        XCTAssertEqual(st.metadata["format_version"], "1")

        let original = try Int8Model(model: model, quantizer: q)
        let loaded = try Int8Model.load(from: url, model: try XCTUnwrap(ModelZoo.make("fmnist-cnn", seed: 7)))
        XCTAssertEqual(loaded.layers, original.layers)
        let x = try test.gather(0..<200).images
        XCTAssertEqual(loaded(x), original(x), "bit-identical logits")

        var broken = st
        broken["fc1/input_scale"] = nil
        let brokenURL = work.appendingPathComponent("broken.safetensors")
        try broken.write(to: brokenURL)
        XCTAssertThrowsError(try Int8Model.load(from: brokenURL, model: try XCTUnwrap(ModelZoo.make("fmnist-cnn", seed: 7)))) {
            XCTAssertEqual($0 as? Int8ExportError, .missingEntry(file: brokenURL.path, entry: "fc1/input_scale"))
            XCTAssertTrue("\($0)".contains("has no entry 'fc1/input_scale'"), "\($0)")
        }
        broken = st
        broken["conv1/weight_int8"] = SafeTensorsEntry(shape: [3, 3, 1, 16], values: [Int8](repeating: 0, count: 144))
        try broken.write(to: brokenURL)
        XCTAssertThrowsError(try Int8Model.load(from: brokenURL, model: try XCTUnwrap(ModelZoo.make("fmnist-cnn", seed: 7)))) {
            XCTAssertTrue("\($0)".contains("'conv1/weight_int8' is I8 [3, 3, 1, 16], the model expects I8 [3, 3, 1, 32]"), "\($0)")
        }
        // A plan in the metadata with an impossible bit width: an error, not a trap.
        broken = st
        broken.metadata["quantization_plan"] = st.metadata["quantization_plan"]!.replacingOccurrences(of: "\"bits\":8", with: "\"bits\":9")
        try broken.write(to: brokenURL)
        XCTAssertThrowsError(try Int8Model.load(from: brokenURL, model: try XCTUnwrap(ModelZoo.make("fmnist-cnn", seed: 7)))) {
            XCTAssertTrue("\($0)".contains("not a valid plan") && "\($0)".contains("got 9"), "\($0)")
        }
    }

    /// A diverged model (NaN weights) is refused by name, never trapped on.
    func testNaNWeightsAreAClearError() throws {
        let (model, q) = try quantizedGolden(bits: 8)
        model.parameter(named: "conv2/weight")!.value[flat: 5] = .nan
        XCTAssertThrowsError(try Int8Model(model: model, quantizer: q)) {
            XCTAssertTrue("\($0)".contains("'conv2'") && "\($0)".contains("NaN"), "\($0)")
        }
    }

    /// Binary post-quant outputs (0 ↦ +s) with Conv → ReLU → MaxPool: the integer path keeps
    /// the fake-quant model's order (output grid, then ReLU), so it still equals it.
    func testBinaryPostQuantOutputsMatchFakeQuant() throws {
        let model = try XCTUnwrap(ModelZoo.make("fmnist-cnn", seed: 0))
        try WeightLoader.load(into: model, from: TestPaths.goldenWeights.path)
        var c = QuantizerConfig(bits: 1, wbits: 8)
        c.signed = true; c.postQuant = true
        let q = try LSQQuantizer(config: c, calibration: try Dataset.load(.train, limit: 256).images, learningRate: 0.01)
        try q.prepare(model: model, communicator: SingleProcessCommunicator())
        let r = try compare(model, try Int8Model(model: model, quantizer: q))
        XCTAssertEqual(r.int8, r.fake, accuracy: 0.002, "binary post-quant: int8 \(r.int8) vs fake-quant \(r.fake)")
        XCTAssertLessThan(r.relative, 1e-4)
    }

    /// (d) W4A4: still the fake-quant model's accuracy within 0.2 points.
    func testW4A4MatchesFakeQuantModel() throws {
        let (model, q) = try quantizedGolden(bits: 4)
        let r = try compare(model, try Int8Model(model: model, quantizer: q))
        print("int8 W4A4: integer \(r.int8), fake-quant \(r.fake), max |Δlogit| / max |logit| = \(r.relative)")
        XCTAssertEqual(r.int8, r.fake, accuracy: 0.002)
        XCTAssertLessThan(r.relative, 1e-5, "as at 8 bits (measured: 1.9e-7)")
    }

    /// The walk handles lenet5 (valid padding, 5×5 kernels), mlp (flatten first) and resnet-mini
    /// (batch norm, residual adds, strided and 1×1 convolutions: the layers between the integer
    /// convolutions run in Float as in the fake-quantized model), with signed (Int8) or unsigned
    /// (UInt8) activation codes, W8 or W3, with or without post_quant.
    func testOtherZooModels() throws {
        let x = try test.gather(0..<32).images
        for (name, signed, wbits, postQuant) in [("lenet5", true, 8, false), ("lenet5", false, 3, true),
                                                 ("mlp", false, 8, false), ("mlp", true, 5, true),
                                                 ("resnet-mini", true, 8, false), ("resnet-mini", true, 4, true)] {
            let model = try XCTUnwrap(ModelZoo.make(name, seed: 3))
            var c = QuantizerConfig()
            c.signed = signed; c.wbits = wbits; c.postQuant = postQuant
            let q = try LSQQuantizer(config: c, calibration: x, learningRate: 0.01)
            try q.prepare(model: model, communicator: SingleProcessCommunicator())
            let fake = model(Variable(x), .inference()).value
            let int8 = try Int8Model(model: model, quantizer: q)(x)
            XCTAssertLessThan(int8.maxAbsDifference(fake), 1e-5 * (fake.scalars.map(abs).max() ?? 1),
                              "\(name) signed \(signed) wbits \(wbits) post_quant \(postQuant)")
        }
        let mlp = try XCTUnwrap(ModelZoo.make("mlp", seed: 3))
        let unprepared = try LSQQuantizer(config: QuantizerConfig(), calibration: nil, learningRate: 0.01)
        try unprepared.prepare(model: mlp, communicator: SingleProcessCommunicator())
        XCTAssertThrowsError(try Int8Model(model: mlp, quantizer: unprepared)) {
            XCTAssertEqual($0 as? Int8ModelError, .notPrepared(missing: "input:fc1"), "no calibration batch: no activation steps yet")
        }
    }
}
