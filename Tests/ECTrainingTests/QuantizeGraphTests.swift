import ECTestSupport
import EasyCompression
import Foundation
import XCTest

/// `quantizeGraph(_:mode:modelDir:config:)`, the seed's `quantize_graph`: `train` loads the
/// pretrained model and writes the plan an `LSQQuantizer(modelDir:)` follows; `eval` and
/// `export` load a QAT run back as fake-quant and as true int8 models.
final class QuantizeGraphTests: XCTestCase {
    var work: URL!
    override func setUpWithError() throws { work = try TestPaths.temporaryDirectory(name) }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: work) }

    func fmnistCNN() throws -> Model { try XCTUnwrap(ModelZoo.make("fmnist-cnn", seed: 7)) }

    /// The seed's hook-style example: quantize_graph(train) → LSQQuantizer(model_dir) →
    /// CompressionHook in a MonitoredSession; then eval and export read the run back.
    func testTrainThenEvalThenExportThroughTheSeedsFlow() throws {
        let modelDir = work.appendingPathComponent("output").path
        var config = QuantizerConfig(bits: 8, wbits: 8, pretrainedModel: TestPaths.goldenWeights.path)
        config.stepInterval = 2
        config.numTrials = 2
        config.signed = false
        config.fp32Layers = ["fc2"]

        let model = try fmnistCNN()
        let graph = try quantizeGraph(model, mode: .train, modelDir: modelDir, config: config)
        XCTAssertEqual(graph.plan.quantized.map(\.layer), ["conv1", "conv2", "fc1"])
        XCTAssertEqual(graph.plan.fp32.map(\.layer), ["fc2"])
        XCTAssertEqual(try QuantizationPlan.read(from: URL(fileURLWithPath: modelDir)), graph.plan, "plan written to model_dir")
        let golden = try WeightLoader.readTensors(from: TestPaths.goldenWeights.path)
        XCTAssertEqual(model.parameter(named: "fc2/bias")?.value.scalars, try XCTUnwrap(golden["fc2.bias"]).scalars,
                       "pretrained_model loaded (Keras names mapped)")

        let train = try Dataset.load(.train, limit: 256), test = try Dataset.load(.test, limit: 500)
        let quantizer = try LSQQuantizer(modelDir: modelDir, config: config, calibration: train.images, learningRate: 0.01)
        var run = RunConfig(saveDir: modelDir, log: Logger(quiet: true))
        run.checkpointEvery = 4
        let estimator = Estimator(modelFn: { model }, optimizerFn: { _ in try SGD(learningRate: 0.01, momentum: 0.9) }, config: run)
        _ = try trainAndEvaluate(estimator: estimator, trainSpec: TrainSpec(data: train, batchSize: 64, seed: 1, maxSteps: 4),
                                 evalSpec: EvalSpec(data: test), compressors: [quantizer])
        XCTAssertEqual(quantizer.updatesDone, 2)
        let trained = try Evaluator.evaluate(model, on: test).accuracy

        let evalModel = try fmnistCNN()
        let eval = try quantizeGraph(evalModel, mode: .eval, modelDir: modelDir, config: config)
        XCTAssertEqual(eval.quantizer?.steps, quantizer.steps, "trained step sizes loaded")
        XCTAssertNil(eval.int8)
        XCTAssertEqual(try Evaluator.evaluate(evalModel, on: test).accuracy, trained, "eval mode = the trained fake-quant model")

        var other = config
        other.bits = 4
        XCTAssertThrowsError(try quantizeGraph(try fmnistCNN(), mode: .eval, modelDir: modelDir, config: other)) {
            XCTAssertTrue("\($0)".contains("quantization_plan.json") && "\($0)".contains("W8 A8 unsigned"), "\($0)")
        }
        let export = try quantizeGraph(try fmnistCNN(), mode: .export, modelDir: modelDir, config: config)
        let int8 = try XCTUnwrap(export.int8)
        XCTAssertEqual(int8.accuracy(on: test), trained, accuracy: 0.002, "true int8 path ≈ fake quant")
    }

    func testAPlanForAnotherConfigOrModelIsRefused() throws {
        let modelDir = work.appendingPathComponent("plan").path
        let config = QuantizerConfig(bits: 8, wbits: 8)
        try quantizeGraph(try fmnistCNN(), mode: .train, modelDir: modelDir, config: config)

        var four = config
        four.wbits = 4
        let quantizer = try LSQQuantizer(modelDir: modelDir, config: four, calibration: nil, learningRate: 0.01)
        XCTAssertThrowsError(try quantizer.prepare(model: try fmnistCNN(), communicator: SingleProcessCommunicator())) {
            XCTAssertTrue("\($0)".contains("layer 'conv1' is planned as W8 A8 unsigned, this model and config give W4 A8 unsigned"), "\($0)")
        }
        let other = try LSQQuantizer(modelDir: modelDir, config: config, calibration: nil, learningRate: 0.01)
        XCTAssertThrowsError(try other.prepare(model: try XCTUnwrap(ModelZoo.make("mlp", seed: 1)), communicator: SingleProcessCommunicator())) {
            XCTAssertTrue("\($0)".contains("written for model 'fmnist-cnn', this model is 'mlp'"), "\($0)")
        }
        XCTAssertThrowsError(try LSQQuantizer(modelDir: work.appendingPathComponent("none").path, config: config,
                                              calibration: nil, learningRate: 0.01)) {
            XCTAssertTrue("\($0)".contains("quantization_plan.json") && "\($0)".contains("no such file"), "\($0)")
        }
    }

    func testEvalOfARunWithoutQuantizerStateIsAClearError() throws {
        let dir = work.appendingPathComponent("fp32")
        let estimator = Estimator(modelFn: { try self.fmnistCNN() }, optimizerFn: { _ in try SGD(learningRate: 0.01) },
                                  config: RunConfig(saveDir: dir.path, log: Logger(quiet: true)))
        _ = try trainAndEvaluate(estimator: estimator,
                                 trainSpec: TrainSpec(data: try Dataset.load(.train, limit: 64), batchSize: 32, seed: 1, maxSteps: 2),
                                 evalSpec: EvalSpec(data: try Dataset.load(.test, limit: 50)))
        for mode in [QuantizeMode.eval, .export] {
            XCTAssertThrowsError(try quantizeGraph(try fmnistCNN(), mode: mode, modelDir: dir.path, config: QuantizerConfig())) {
                XCTAssertTrue("\($0)".contains("no quantizer state: not a QAT run"), "\($0)")
            }
        }
        XCTAssertThrowsError(try quantizeGraph(try fmnistCNN(), mode: .eval, modelDir: work.appendingPathComponent("empty").path,
                                               config: QuantizerConfig())) {
            XCTAssertTrue("\($0)".contains("no checkpoint"), "\($0)")
        }
    }
}
