import ECTestSupport
import EasyCompression
import ECCheckpoint
@testable import ECExport
import Foundation
import XCTest

/// Models nobody on this project wrote — trained by PyTorch and Keras, exported by
/// `torch.onnx.export` and tf2onnx (`Tools/make_onnx_fixtures.py`, Tests/Fixtures/onnx) — imported:
/// the engine gives ONNX Runtime's outputs and accuracy, `eval` scores the file's own weights,
/// and an export of the imported model (trained or not) runs in ONNX Runtime with the engine's
/// outputs, under the file's own input/output names and layout.
final class ONNXImportTests: XCTestCase {
    static let fixtures = ["torch_resnet", "torch_mobilenetv2", "keras_concat", "torch_opmix"]

    var work: URL!
    override func setUpWithError() throws { work = try TestPaths.temporaryDirectory(name) }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: work) }

    struct Expected: Decodable {
        let input_name: String
        let input_layout: String
        let output_name: String
        let output_is_softmax: Bool
        let onnxruntime_test_accuracy: Double
        let first_outputs: [[Float]]
        let first_labels: [Int32]
    }

    func fixture(_ name: String) -> URL { TestPaths.fixtures.appendingPathComponent("onnx/\(name).onnx") }

    func expected(_ name: String) throws -> Expected {
        try JSONDecoder().decode(Expected.self, from: Data(contentsOf: TestPaths.fixtures.appendingPathComponent("onnx/\(name).expected.json")))
    }

    /// The model's outputs as the file defines them (softmax applied when the file ends in one).
    func outputs(_ model: Model, _ x: Tensor) -> Tensor {
        let logits = model.predict(x)
        return model.interface.outputSoftmax ? Variable(logits).softmax(axis: 1).value : logits
    }

    func testFixturesGiveONNXRuntimesOutputsAndAccuracy() throws {
        let test = try Dataset.load(.test)
        for name in Self.fixtures {
            let e = try expected(name)
            let model = try Model(onnx: fixture(name))
            XCTAssertEqual(model.interface.inputName, e.input_name, name)
            XCTAssertEqual(model.interface.outputName, e.output_name, name)
            XCTAssertEqual(model.interface.inputLayout.rawValue, e.input_layout, name)
            XCTAssertEqual(model.interface.outputSoftmax, e.output_is_softmax, name)
            XCTAssertEqual(model.inputShape, [28, 28, 1], name)
            let (x, labels) = test.gather(0..<e.first_outputs.count)
            XCTAssertEqual(labels, e.first_labels)
            let y = outputs(model, x)
            let reference = Tensor(shape: y.shape, scalars: e.first_outputs.flatMap { $0 })
            assertClose(y, reference, absolute: 1e-4, relative: 1e-4, "\(name): engine vs ONNX Runtime")
            let accuracy = try Evaluator.evaluate(model, on: test).accuracy
            XCTAssertEqual(accuracy, e.onnxruntime_test_accuracy, accuracy: 0.001, "\(name): accuracy on all 10,000 test images")
        }
    }

    func testEvalScoresTheFilesOwnWeights() throws {
        let name = "torch_resnet"
        let config = work.appendingPathComponent("eval.yaml").path
        try "model: {onnx: \(fixture(name).path)}\nsave_dir: \(work.appendingPathComponent("none").path)\n"
            .write(toFile: config, atomically: true, encoding: .utf8)
        let r = try ProcessRunner.run([try TestPaths.executable("easycompress"), "eval", "--config", config, "--json"],
                                      environment: ["OPENBLAS_NUM_THREADS": "2"], timeoutSeconds: 300)
        XCTAssertEqual(r.status, 0, r.stderr)
        let result = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]
        XCTAssertEqual(try XCTUnwrap(result?["accuracy"] as? Double), try expected(name).onnxruntime_test_accuracy, accuracy: 0.001)
        XCTAssertFalse(FileManager.default.fileExists(atPath: work.appendingPathComponent("none").path), "eval writes nothing")
    }

    /// Export of an imported model: ONNX Runtime runs it on input in the file's own layout, under
    /// its own names, and gives the engine's outputs.
    func testExportOfAnImportedModelRoundTrips() throws {
        guard try PythonRunner.require("numpy, onnx, onnxruntime, safetensors") else { return }
        let (x, labels) = try Dataset.load(.test, limit: 64).gather(0..<64)
        for name in Self.fixtures {
            let model = try Model(onnx: fixture(name))
            let file = work.appendingPathComponent("\(name).onnx").path
            try ONNXExporter.export(model).data.write(to: URL(fileURLWithPath: file))
            // The user's serving code feeds its own layout.
            let input = model.interface.inputLayout == .nchw ? Variable(x).transpose([0, 3, 1, 2]).value : x
            let inputs = work.appendingPathComponent("in.safetensors"), results = work.appendingPathComponent("out.safetensors")
            try SafeTensors(tensors: NamedTensors([("input", input), ("labels", Tensor(shape: [64], scalars: labels.map(Float.init)))]))
                .write(to: inputs)
            let info = try PythonRunner.runONNX(model: file, inputs: inputs.path, outputs: results.path)
            let inputInfo = try XCTUnwrap(info["input"] as? [String: Any])
            XCTAssertEqual(inputInfo["name"] as? String, try expected(name).input_name, name)
            XCTAssertEqual(info["output"] as? String, try expected(name).output_name, name)
            let onnx = try XCTUnwrap(SafeTensors.read(from: results)["logits"]?.tensor)
            assertClose(onnx, outputs(model, x), absolute: 1e-4, relative: 1e-4, "\(name): ONNX Runtime on our export vs the engine")
        }
    }

    /// An epoch of fine-tuning (of a 6,400-image training set) on 2 ranks with the replica
    /// check every 10 steps, then `export --format onnx`: ONNX Runtime gives the engine's outputs.
    func testFineTuningOnTwoRanksThenExportingRoundTrips() throws {
        guard try PythonRunner.require("numpy, onnx, onnxruntime, safetensors") else { return }
        for name in ["keras_concat", "torch_resnet"] {
            let saveDir = work.appendingPathComponent("\(name)-tuned").path, config = work.appendingPathComponent("\(name).yaml").path
            try """
                model: {onnx: \(fixture(name).path)}
                dataset: {limit_train: 6400, limit_test: 500}
                epochs: 1
                batch_size: 64
                optimizer: {name: sgd, lr: 0.01, momentum: 0.9}
                debug_check_every: 10
                log_every: 50
                save_dir: \(saveDir)
                """.write(toFile: config, atomically: true, encoding: .utf8)
            let r = try TrainCommand.run(config, ranks: 2, timeoutSeconds: 600)
            XCTAssertEqual(r.status, 0, r.stderr)
            let file = work.appendingPathComponent("\(name)-tuned.onnx").path
            let e = try ProcessRunner.run([try TestPaths.executable("easycompress"), "export", "--format", "onnx", "--from", saveDir,
                                           "--config", config, "--out", file], timeoutSeconds: 300)
            XCTAssertEqual(e.status, 0, e.stderr)
            let tuned = try Model(onnx: fixture(name))
            try WeightLoader.load(into: tuned, from: saveDir)
            let (x, _) = try Dataset.load(.test, limit: 64).gather(0..<64)
            let input = tuned.interface.inputLayout == .nchw ? Variable(x).transpose([0, 3, 1, 2]).value : x
            let inputs = work.appendingPathComponent("in.safetensors"), results = work.appendingPathComponent("out.safetensors")
            try SafeTensors(tensors: NamedTensors([("input", input)])).write(to: inputs)
            let info = try PythonRunner.runONNX(model: file, inputs: inputs.path, outputs: results.path)
            XCTAssertEqual((info["input"] as? [String: Any])?["name"] as? String, try expected(name).input_name)
            let onnx = try XCTUnwrap(SafeTensors.read(from: results)["logits"]?.tensor)
            assertClose(onnx, outputs(tuned, x), absolute: 1e-4, relative: 1e-4, "\(name): the fine-tuned export in ONNX Runtime vs the engine")
            XCTAssertNotEqual(outputs(tuned, x), outputs(try Model(onnx: fixture(name)), x), "the weights did change")
        }
    }

    /// Pruning an imported MobileNetV2-style model (depthwise convolutions, inverted residuals,
    /// ReLU6, batch norm) on 2 ranks, to widths of 8 or multiples of 16 channels ranked per FLOP (the
    /// speed recipe of docs/pruning.md), with the replica check every step: the chief's masks are
    /// bit for bit those of one process running the same 2 shards as thread replicas (batch norm
    /// synchronised, every sum in rank order), and GapFinetune extracts a model that computes what the masked one does.
    func testPruningAnImportedModelOnTwoRanksMatchesTwoReplicas() throws {
        let name = "torch_mobilenetv2"
        func job(_ tag: String, extra: String = "") throws -> (String, String) {
            let saveDir = work.appendingPathComponent(tag).path, config = work.appendingPathComponent("\(tag).yaml").path
            try """
                model: {onnx: \(fixture(name).path)}
                dataset: {limit_train: 1280, limit_test: 200}
                steps: 12
                batch_size: 64
                optimizer: {name: sgd, lr: 0.005, momentum: 0.9}
                debug_check_every: 1
                save_dir: \(saveDir)
                compression: {pruner: {compression_ratio: 0.5, step_interval: 4, num_trials: 3, channel_multiple: 16,
                                       narrow_channel_multiple: 8, sort_cost: flops}}
                threads: 1
                sync_batch_norm: true
                \(extra)
                """.write(toFile: config, atomically: true, encoding: .utf8)
            return (config, saveDir)
        }
        let one = try job("one", extra: "thread_replicas: 2"), two = try job("two")
        XCTAssertEqual(try TrainCommand.run(one.0).status, 0)
        let r = try TrainCommand.run(two.0, ranks: 2, timeoutSeconds: 300)
        XCTAssertEqual(r.status, 0, r.stderr)
        func masks(_ dir: String) throws -> NamedTensors {
            let t = try WeightLoader.readTensors(from: dir)
            return NamedTensors(t.sorted.filter { $0.name.hasPrefix("pruner/keep/") }.map { ($0.name, $0.tensor) })
        }
        let m1 = try masks(one.1), m2 = try masks(two.1)
        XCTAssertFalse(m1.names.isEmpty)
        XCTAssertTrue(m1.names.contains { $0.contains("features.1/block/block.0/block.0.0/Conv") }, "the expand conv of a block is a group: \(m1.names)")
        XCTAssertEqual(m1.names, m2.names)
        XCTAssertTrue(m1.names.contains { Int(m1[$0]!.scalars.reduce(0, +)) < m1[$0]!.count }, "something is pruned")
        for n in m1.names {
            XCTAssertEqual(m1[n], m2[n], "\(n): 2 ranks prune what 2 thread replicas prune")
            let kept = Int(m1[n]!.scalars.reduce(0, +))
            XCTAssertTrue(kept % 16 == 0 || kept == 8 || kept == m1[n]!.count, "\(n): widths 8, 16, 32, …, kept \(kept)")
        }
        assertBitIdentical(try WeightLoader.readTensors(from: two.1), try WeightLoader.readTensors(from: one.1), "2 ranks vs 2 thread replicas")
        let ft = try GapFinetune(modelDir: two.1)
        XCTAssertLessThan(ft.model.parameterCount, ft.original.parameterCount)
        let x = try Dataset.load(.test, limit: 16).images
        assertClose(ft.model.predict(x), ft.original.predict(x), absolute: 1e-4, relative: 1e-4, "extracted vs masked")
    }

    /// The integer path on imported graphs: quantized convolutions and dense layers on the int8
    /// kernels (explicit pads, strides), batch norms, adds, concats and the rest in Float as the
    /// fake-quantized model runs them — logits equal the fake-quant model's; a quantized
    /// depthwise convolution is a clear error naming the node, and runs once kept in FP32.
    func testInt8PathOnImportedModels() throws {
        let x = try Dataset.load(.test, limit: 32).gather(0..<32).images
        for name in ["torch_resnet", "keras_concat", "torch_opmix", "torch_mobilenetv2"] {
            let model = try Model(onnx: fixture(name))
            var config = QuantizerConfig()
            config.wbits = 8
            // Signed and unsigned inputs side by side: the MobileNetV2-style fixture's layers after
            // ReLU6 read unsigned codes, its layers after a linear bottleneck signed ones.
            config.unsignedAfterReLU = true
            if name == "torch_mobilenetv2" {
                let q = try LSQQuantizer(config: config, calibration: x, learningRate: 0.01)
                try q.prepare(model: model, communicator: SingleProcessCommunicator())
                XCTAssertThrowsError(try Int8Model(model: model, quantizer: q), name) {
                    XCTAssertTrue("\($0)".contains("a grouped or depthwise convolution") && "\($0)".contains("quantizer.fp32_layers"), "\($0)")
                }
                model.transform = nil
                config.fp32Layers = model.graph.children.compactMap { ($0 as? Conv2D).flatMap { $0.groups > 1 ? $0.name : nil } }
            }
            let q = try LSQQuantizer(config: config, calibration: x, learningRate: 0.01)
            try q.prepare(model: model, communicator: SingleProcessCommunicator())
            let fake = outputs(model, x)
            var int8 = try Int8Model(model: model, quantizer: q)(x)
            if model.interface.outputSoftmax { int8 = Variable(int8).softmax(axis: 1).value }
            // The integer sums are exact where the fake-quantized model sums in Float; deep nets
            // see a few inputs round to the neighbouring code (seen: ≤ 3% of the largest logit on
            // the MobileNetV2-style fixture, ≤ 1e-4 on the others), not a different model.
            let scale = max(1, fake.scalars.map(abs).max() ?? 1)
            XCTAssertLessThan(int8.maxAbsDifference(fake), 0.05 * scale, name)
            let agree = zip(int8.argmaxRows(), fake.argmaxRows()).filter { $0 == $1 }.count
            XCTAssertGreaterThanOrEqual(agree, 31, "\(name): top-1 of 32 images")
        }
    }

    /// Quantization-aware training of an imported model on 2 ranks — the MobileNetV2-style
    /// fixture: depthwise convolutions, weights per channel, signed inputs after the linear
    /// bottlenecks and unsigned ones after ReLU6 side by side — exported as QDQ: ONNX Runtime
    /// runs the file and scores what the engine's fake-quantized model scores.
    func testQATOnAnImportedModelExportsAsQDQThatONNXRuntimeRuns() throws {
        guard try PythonRunner.require("numpy, onnx, onnxruntime, safetensors") else { return }
        let name = "torch_mobilenetv2", images = 1000
        let saveDir = work.appendingPathComponent("qat").path, config = work.appendingPathComponent("qat.yaml").path
        try """
            model: {onnx: \(fixture(name).path)}
            dataset: {limit_train: 1280, limit_test: \(images)}
            steps: 20
            batch_size: 64
            optimizer: {name: sgd, lr: 0.002, momentum: 0.9}
            log_every: 100
            save_dir: \(saveDir)
            compression:
              quantizer: {bits: 8, wbits: 8, per_channel: true, unsigned_after_relu: true, step_interval: 5, num_trials: 3}
            """.write(toFile: config, atomically: true, encoding: .utf8)
        let r = try TrainCommand.run(config, ranks: 2, timeoutSeconds: 600)
        XCTAssertEqual(r.status, 0, r.stderr)
        let plan = try String(contentsOfFile: saveDir + "/quantization_plan.json", encoding: .utf8)
        XCTAssertTrue(plan.contains("\"signed\":true") || plan.contains("\"signed\" : true"), "signed inputs after the linear bottlenecks")
        XCTAssertTrue(plan.contains("\"signed\":false") || plan.contains("\"signed\" : false"), "unsigned inputs after ReLU6")

        let file = work.appendingPathComponent("qat.onnx").path
        let e = try ProcessRunner.run([try TestPaths.executable("easycompress"), "export", "--format", "onnx", "--from", saveDir,
                                       "--config", config, "--out", file], timeoutSeconds: 300)
        XCTAssertEqual(e.status, 0, e.stderr)
        let log = try XCTUnwrap(e.stderr.split(separator: "\n").first { $0.contains("wrote") }, e.stderr)
        XCTAssertTrue(log.contains("LSQ-quantized") && log.contains("QuantizeLinear"), String(log))
        let engineAccuracy = try XCTUnwrap(log.split(separator: " ").last.flatMap { Double($0) }, String(log))

        let (x, labels) = try Dataset.load(.test, limit: images).gather(0..<images)
        let inputs = work.appendingPathComponent("in.safetensors"), results = work.appendingPathComponent("out.safetensors")
        try SafeTensors(tensors: NamedTensors([("input", Variable(x).transpose([0, 3, 1, 2]).value),
                                               ("labels", Tensor(shape: [images], scalars: labels.map(Float.init)))]))
            .write(to: inputs)
        let info = try PythonRunner.runONNX(model: file, inputs: inputs.path, outputs: results.path)
        let accuracy = try XCTUnwrap(info["accuracy"] as? Double)
        XCTAssertEqual(accuracy, engineAccuracy, accuracy: 0.002, "ONNX Runtime vs the engine's fake-quantized model")
        XCTAssertGreaterThan(accuracy, 0.75)
    }

    func testUnsupportedOpsAndBadFilesAreClearErrors() throws {
        // Garbage, a truncated file, a missing file.
        let garbage = work.appendingPathComponent("garbage.onnx")
        try Data((0..<200).map { UInt8(($0 * 37) % 251) }).write(to: garbage)
        XCTAssertThrowsError(try Model(onnx: garbage)) { XCTAssertTrue("\($0)".contains("garbage.onnx: not a readable ONNX model"), "\($0)") }
        let good = try Data(contentsOf: fixture("torch_resnet"))
        let cut = work.appendingPathComponent("cut.onnx")
        try good.prefix(good.count / 2).write(to: cut)
        XCTAssertThrowsError(try Model(onnx: cut)) { XCTAssertTrue("\($0)".contains("cut.onnx"), "\($0)") }
        XCTAssertThrowsError(try Model(onnx: work.appendingPathComponent("nope.onnx"))) {
            XCTAssertTrue("\($0)".contains("nope.onnx: not a readable ONNX model"), "\($0)")
        }
        // A graph with an op the importer does not know, named with its node.
        XCTAssertThrowsError(try ONNXImporter.model(from: try tinyModel(op: "Erf"), file: "erf.onnx", name: "erf")) {
            XCTAssertEqual($0 as? ONNXImportError, .unsupportedOp(file: "erf.onnx", node: "the_node", op: "Erf"))
            XCTAssertTrue("\($0)".contains("supported operators: Add,"), "\($0)")
        }
        // A supported op used in a way the engine cannot run.
        XCTAssertThrowsError(try ONNXImporter.model(from: try tinyModel(op: "Flatten", attributes: [("axis", 2)]), file: "f.onnx", name: "f")) {
            XCTAssertTrue("\($0)".contains("node 'the_node' (Flatten): axis 2"), "\($0)")
        }
        // An operator set the importer was not written for.
        XCTAssertThrowsError(try ONNXImporter.model(from: try tinyModel(op: "Relu", opset: 5), file: "old.onnx", name: "old")) {
            XCTAssertEqual($0 as? ONNXImportError, .unsupportedOpset(file: "old.onnx", domain: "", version: 5))
        }
        // The job file names the file; the CLI exits non-zero with the importer's message.
        let config = work.appendingPathComponent("job.yaml").path
        try "model: {onnx: \(garbage.path)}\nsteps: 1\nsave_dir: \(work.appendingPathComponent("run").path)\n"
            .write(toFile: config, atomically: true, encoding: .utf8)
        let r = try TrainCommand.run(config)
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("garbage.onnx: not a readable ONNX model"), r.stderr)
    }

    /// A model saved with external data (as `torch.onnx.export` writes models over 2 GB: the
    /// weights in `NAME.onnx.data` beside the file, saved here by onnx's own `save_as_external_data`)
    /// imports with the same weights; a missing or truncated data file, or a location outside the
    /// model's folder, is an error naming the tensor.
    func testExternalDataIsReadFromBesideTheModel() throws {
        guard try PythonRunner.require("onnx") else { return }
        let folder = work.appendingPathComponent("ext"), file = folder.appendingPathComponent("model.onnx")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let save = """
            import onnx, sys
            m = onnx.load(sys.argv[1])
            onnx.save_model(m, sys.argv[2], save_as_external_data=True, all_tensors_to_one_file=True,
                            location=sys.argv[3], size_threshold=0)
            if sys.argv[4] != "-":  # rewrite the first tensor's location, leaving the data alone
                m = onnx.load(sys.argv[2], load_external_data=False)
                for entry in m.graph.initializer[0].external_data:
                    if entry.key == "location":
                        entry.value = sys.argv[4]
                onnx.save_model(m, sys.argv[2])
            """
        let r = try PythonRunner.run(save, [fixture("keras_concat").path, file.path, "model.onnx.data", "-"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let data = folder.appendingPathComponent("model.onnx.data")
        XCTAssertGreaterThan(try FileManager.default.attributesOfItem(atPath: file.path)[.size] as! Int, 0)
        XCTAssertLessThan(try Data(contentsOf: file).count, 20_000, "the weights are outside the model file")
        let x = try Dataset.load(.test, limit: 8).images
        let original = try Model(onnx: fixture("keras_concat")), external = try Model(onnx: file)
        XCTAssertEqual(outputs(external, x), outputs(original, x))
        // From memory there is no folder to look in.
        XCTAssertThrowsError(try ONNXImporter.model(from: Data(contentsOf: file), file: "m.onnx", name: "m")) {
            XCTAssertTrue("\($0)".contains("keeps its data in an external file, and the model was read from memory"), "\($0)")
        }
        // Truncated, then missing.
        let bytes = try Data(contentsOf: data)
        try bytes.prefix(bytes.count / 2).write(to: data)
        XCTAssertThrowsError(try Model(onnx: file)) {
            XCTAssertTrue("\($0)".contains("model.onnx: ") && "\($0)".contains("are outside the file"), "\($0)")
        }
        try FileManager.default.removeItem(at: data)
        XCTAssertThrowsError(try Model(onnx: file)) {
            XCTAssertTrue("\($0)".contains("model.onnx.data', which cannot be read"), "\($0)")
        }
        // A location that leaves the model's folder.
        let escape = folder.appendingPathComponent("escape.onnx")
        let e = try PythonRunner.run(save, [fixture("keras_concat").path, escape.path, "w.data", "../w.data"])
        XCTAssertEqual(e.status, 0, e.stderr)
        XCTAssertThrowsError(try Model(onnx: escape)) {
            XCTAssertTrue("\($0)".contains("must be a path inside the model's folder"), "\($0)")
        }
    }

    /// `input [N, 4]` → `op` → `output`: one node named `the_node` (serialized ModelProto).
    func tinyModel(op: String, attributes: [(String, Int)] = [], opset: Int = 13) throws -> Data {
        var model = Onnx_ModelProto()
        model.irVersion = 7
        var set = Onnx_OperatorSetIdProto()
        set.version = Int64(opset)
        model.opsetImport = [set]
        var node = Onnx_NodeProto()
        node.opType = op
        node.name = "the_node"
        node.input = ["input"]
        node.output = ["output"]
        node.attribute = attributes.map { key, value in
            var a = Onnx_AttributeProto()
            a.name = key
            a.type = .int
            a.i = Int64(value)
            return a
        }
        model.graph.node = [node]
        model.graph.input = [.floatTensor("input", dims: [nil, 4])]
        model.graph.output = [.floatTensor("output", dims: [nil, 4])]
        return try model.serializedBytes()
    }
}
