import ECCheckpoint
import ECCollective
import ECCompression
@testable import ECExport
import ECNN
import ECTensor
import ECTestSupport
import Foundation
import XCTest

/// ONNX export checked by the reference tools: `onnx.checker` (full check) accepts every file
/// and ONNX Runtime computes the engine's outputs — FP32 models within 1e-4, QDQ models the
/// engine's fake quantization.
final class ONNXExporterTests: XCTestCase {
    var work: URL!
    override func setUpWithError() throws { work = try TestPaths.temporaryDirectory(name) }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: work) }

    /// Exports `model`, runs the file in ONNX Runtime on `input` and returns its logits with
    /// the engine's, and what the Python side reported.
    func roundTrip(_ model: Model, quantization: ONNXQuantization? = nil, input: Tensor,
                   file: StaticString = #filePath, line: UInt = #line) throws -> (onnx: Tensor, engine: Tensor, info: [String: Any]) {
        let path = work.appendingPathComponent("\(model.name)-\(UUID().uuidString.prefix(6)).onnx")
        try ONNXExporter.export(model, quantization: quantization).data.write(to: path)
        let inputs = work.appendingPathComponent("inputs.safetensors"), outputs = work.appendingPathComponent("outputs.safetensors")
        try SafeTensors(tensors: NamedTensors([("input", input)])).write(to: inputs)
        let info = try PythonRunner.runONNX(model: path.path, inputs: inputs.path, outputs: outputs.path, file: file, line: line)
        let onnx = try XCTUnwrap(SafeTensors.read(from: outputs)["logits"]?.tensor, file: file, line: line)
        return (onnx, model(Variable(input), .inference()).value, info)
    }

    func images(_ n: Int, seed: UInt64 = 7) -> Tensor {
        var rng = RNG(seed: seed)
        return Tensor.uniform(shape: [n, 28, 28, 1], low: 0, high: 1, rng: &rng)
    }

    /// Non-trivial batch-norm statistics and affine parameters (a fresh model has 0/1).
    func randomizeBatchNorms(_ model: Model, seed: UInt64 = 3) {
        var rng = RNG(seed: seed)
        for case let bn as BatchNorm in model.graph.allModules {
            let c = [bn.channels]
            bn.gamma.value = Tensor.uniform(shape: c, low: 0.5, high: 1.5, rng: &rng)
            bn.beta.value = Tensor.uniform(shape: c, low: -0.2, high: 0.2, rng: &rng)
            bn.movingMean.value = Tensor.uniform(shape: c, low: -0.3, high: 0.3, rng: &rng)
            bn.movingVariance.value = Tensor.uniform(shape: c, low: 0.2, high: 2, rng: &rng)
        }
    }

    func testEveryZooModelMatchesTheEngineInONNXRuntime() throws {
        guard try PythonRunner.require("numpy, onnx, onnxruntime, safetensors.numpy") else { return }
        for name in ModelZoo.names {
            let model = try XCTUnwrap(ModelZoo.make(name, seed: 11))
            randomizeBatchNorms(model)
            // Non-zero biases, so a misplaced bias would show.
            var rng = RNG(seed: 5)
            for p in model.parameters where p.name.hasSuffix("/bias") {
                p.value = Tensor.uniform(shape: p.shape, low: -0.1, high: 0.1, rng: &rng)
            }
            let r = try roundTrip(model, input: images(16))
            XCTAssertEqual(r.onnx.shape, [16, 10], name)
            let scale = max(1, r.engine.scalars.map(abs).max()!)
            XCTAssertLessThanOrEqual(r.onnx.maxAbsDifference(r.engine), 1e-4 * scale, name)
            XCTAssertEqual(r.info["opset"] as? Int, ONNXExporter.opset, name)
            let ops = Set(try XCTUnwrap(r.info["ops"] as? [String]))
            if name == "resnet-mini" {
                XCTAssertTrue(ops.isSuperset(of: ["Add", "GlobalAveragePool", "Conv", "Gemm"]), "\(ops)")
                XCTAssertFalse(ops.contains("BatchNormalization"), "every batch norm follows a conv and folds into it: \(ops)")
            }
            XCTAssertFalse(ops.contains("QuantizeLinear"), "an FP32 model has no quantization: \(ops)")
        }
    }

    /// A pruned model extracted to fewer channels (conv1 32 → 20, conv2 64 → 40, fc1 rows in
    /// H, W, C order of the kept channels) exports and runs like any model.
    func testExtractedModelMatchesTheEngine() throws {
        guard try PythonRunner.require("numpy, onnx, onnxruntime, safetensors.numpy") else { return }
        let dense = try XCTUnwrap(ModelZoo.make("fmnist-cnn", seed: 2))
        let groups = ChannelGroups.build(model: dense)
        var keep: [String: [Bool]] = [:]
        for g in groups where g.prunable { keep[g.id] = (0..<g.channels).map { $0 % 3 != 1 } }
        let small = ModelSurgery.shrink(model: dense, groups: groups, keep: keep)
        XCTAssertLessThan(small.parameterCount, dense.parameterCount)
        let r = try roundTrip(small, input: images(16))
        XCTAssertLessThanOrEqual(r.onnx.maxAbsDifference(r.engine), 1e-4 * max(1, r.engine.scalars.map(abs).max()!))
    }

    func quantized(_ name: String, _ configure: (inout QuantizerConfig) -> Void) throws -> (Model, LSQQuantizer) {
        let model = try XCTUnwrap(ModelZoo.make(name, seed: 9))
        randomizeBatchNorms(model)
        var config = QuantizerConfig()
        configure(&config)
        let q = try LSQQuantizer(config: config, calibration: images(64, seed: 21), learningRate: 0.01)
        try q.prepare(model: model, communicator: SingleProcessCommunicator())
        return (model, q)
    }

    /// QDQ models compute the engine's fake quantization: the same logits up to the rare
    /// activation that sits on a rounding boundary (ONNX Runtime sums in another order).
    func testQDQModelsMatchTheFakeQuantizedEngine() throws {
        guard try PythonRunner.require("numpy, onnx, onnxruntime, safetensors.numpy") else { return }
        let cases: [(String, String, (inout QuantizerConfig) -> Void)] = [
            ("fmnist-cnn", "W8A8 per tensor, unsigned", { $0.signed = false }),
            ("fmnist-cnn", "W4A4 per channel, signed, post_quant", { $0.bits = 4; $0.wbits = 4; $0.perChannel = true; $0.postQuant = true }),
            ("lenet5", "W2A3 per channel, fc3 in FP32", { $0.bits = 3; $0.wbits = 2; $0.perChannel = true; $0.fp32Layers = ["fc3"] }),
            ("resnet-mini", "W8A8 per channel, signed", { $0.perChannel = true }),
            ("mlp", "W1A8 (binary weights), unsigned", { $0.wbits = 1; $0.signed = false }),
        ]
        for (name, label, configure) in cases {
            let (model, q) = try quantized(name, configure)
            let r = try roundTrip(model, quantization: try ONNXQuantization(q), input: images(64))
            let agree = zip(r.onnx.argmaxRows(), r.engine.argmaxRows()).filter { $0 == $1 }.count
            XCTAssertGreaterThanOrEqual(agree, 63, "\(name) \(label): predictions agree on \(agree)/64")
            let diffs = zip(r.onnx.scalars, r.engine.scalars).map { abs($0 - $1) }
            let close = diffs.filter { $0 <= 1e-4 * max(1, r.engine.scalars.map(abs).max()!) }.count
            XCTAssertGreaterThanOrEqual(Double(close) / Double(diffs.count), 0.9, "\(name) \(label): logits equal to 1e-4")
            let ops = Set(try XCTUnwrap(r.info["ops"] as? [String]))
            XCTAssertTrue(ops.isSuperset(of: ["QuantizeLinear", "DequantizeLinear"]), "\(name) \(label): \(ops)")
        }
    }

    /// The file's structure: int8 weight initializers with their DequantizeLinear (axis for
    /// per-channel), activation zero points by signedness, Clip only below 8 bits.
    func testQDQGraphStoresInt8WeightsAndNarrowRanges() throws {
        let (model, q) = try quantized("fmnist-cnn") { $0.bits = 4; $0.wbits = 4; $0.perChannel = true }
        let proto = try Onnx_ModelProto(serializedBytes: try ONNXExporter.export(model, quantization: try ONNXQuantization(q)).data)
        let inits = Dictionary(uniqueKeysWithValues: proto.graph.initializer.map { ($0.name, $0) })
        let conv2 = try XCTUnwrap(inits["conv2/weight_int8"])
        XCTAssertEqual(conv2.dataType, Int32(Onnx_TensorProto.DataType.int8.rawValue))
        XCTAssertEqual(conv2.dims, [64, 32, 3, 3], "OIHW")
        let codes = conv2.rawData.map { Int8(bitPattern: $0) }
        XCTAssertTrue(codes.allSatisfy { (-8...7).contains($0) }, "4-bit codes stay in −8…7 inside int8 storage")
        // Code [o, i, h, w] in ONNX is the engine's code at [h, w, i, o].
        let w = model.parameter(named: "conv2/weight")!.value, s = q.steps["weight:conv2"]!.scalars
        let expected = Int8Layer.quantizeWeights(w, scale: s, range: QuantRange(bits: 4, signed: true))
        let (o, i, h, x) = (5, 7, 2, 1)
        let onnxIndex: Int = ((o * 32 + i) * 3 + h) * 3 + x, engineIndex: Int = ((h * 3 + x) * 32 + i) * 64 + o
        XCTAssertEqual(codes[onnxIndex], expected[engineIndex])
        XCTAssertEqual(inits["conv2/weight_scale"]?.dims, [64])
        let dq = try XCTUnwrap(proto.graph.node.first { $0.name == "conv2/weight/DequantizeLinear" })
        XCTAssertEqual(dq.attribute.first { $0.name == "axis" }?.i, 0)
        let fc1 = try XCTUnwrap(proto.graph.node.first { $0.name == "fc1/weight/DequantizeLinear" })
        XCTAssertEqual(fc1.attribute.first { $0.name == "axis" }?.i, 1, "Gemm's B is [in, out]: channels on axis 1")
        XCTAssertEqual(inits["conv1/input/zero_point"]?.dataType, Int32(Onnx_TensorProto.DataType.uint8.rawValue), "image input unsigned")
        XCTAssertEqual(inits["conv2/input/zero_point"]?.dataType, Int32(Onnx_TensorProto.DataType.int8.rawValue), "signed: true")
        XCTAssertEqual(inits["conv2/input/clip_max"]?.rawData,
                       withUnsafeBytes(of: (7 * q.steps["input:conv2"]!.scalarValue).bitPattern.littleEndian) { Data($0) })
        XCTAssertEqual(proto.opsetImport.first?.version, 13)

        let (model8, q8) = try quantized("fmnist-cnn") { _ in }
        let proto8 = try Onnx_ModelProto(serializedBytes: try ONNXExporter.export(model8, quantization: try ONNXQuantization(q8)).data)
        XCTAssertFalse(proto8.graph.node.contains { $0.opType == "Clip" }, "8-bit grids are the storage type's own range")
        XCTAssertTrue(proto8.graph.node.first { $0.name == "conv2/weight/DequantizeLinear" }!.attribute.isEmpty, "per tensor: no axis")
    }

    func testRefusesWhatONNXCannotExpress() throws {
        let (model, q) = try quantized("fmnist-cnn") { $0.bits = 1; $0.signed = true }
        XCTAssertThrowsError(try ONNXExporter.export(model, quantization: try ONNXQuantization(q))) { error in
            XCTAssertTrue("\(error)".contains("layer 'conv2': signed 1-bit (binary) input activations"), "\(error)")
        }

        final class Swish: Module {
            let name = "act", opType = "Swish"
            func forward(_ x: Variable, _ ctx: ForwardContext) -> Variable { x }
            func outputShape(for input: [Int]) -> [Int] { input }
        }
        var rng = RNG(seed: 1)
        let odd = Model(name: "odd", graph: try Graph.chain([Flatten(name: "flatten"), Swish(),
                                                             Dense(name: "fc", inputs: 784, outputs: 10, rng: &rng)],
                                                            inputShape: [28, 28, 1]))
        XCTAssertThrowsError(try ONNXExporter.export(odd)) { error in
            XCTAssertEqual(error as? ONNXExportError, .unsupportedModule(model: "odd", module: "act", opType: "Swish"))
            XCTAssertTrue("\(error)".contains("'act' (Swish), which has no ONNX export"), "\(error)")
        }

        let (plain, q8) = try quantized("mlp") { _ in }
        var steps = q8.steps
        steps["input:fc2"] = nil
        XCTAssertThrowsError(try ONNXExporter.export(plain, quantization: ONNXQuantization(plan: q8.plan!, steps: steps))) { error in
            XCTAssertEqual(error as? ONNXExportError, .missingScale(layer: "fc2", key: "input:fc2"))
        }
    }

    func testPermuteReordersAxes() {
        // [2, 3] → [3, 2]
        XCTAssertEqual(permute([1, 2, 3, 4, 5, 6], shape: [2, 3], [1, 0]), [1, 4, 2, 5, 3, 6])
        // HWIO [1, 2, 2, 3] → OIHW [3, 2, 1, 2]: element [h, w, i, o] = h·12 + w·6 + i·3 + o.
        let hwio = Array(0..<12)
        let oihw = permute(hwio, shape: [1, 2, 2, 3], [3, 2, 0, 1])
        for o in 0..<3 { for i in 0..<2 { for w in 0..<2 {
            XCTAssertEqual(oihw[(o * 2 + i) * 2 + w], w * 6 + i * 3 + o)
        } } }
    }
}
