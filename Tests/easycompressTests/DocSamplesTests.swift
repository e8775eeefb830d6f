import EasyCompression
import ECTestSupport
import Foundation
import XCTest

/// The Swift samples of README-linked docs (docs/getting-started.md, docs/migration.md,
/// docs/pruning.md), compiled and run here; `DocSamples` checks that every ```swift block of
/// those docs is one of them (lines marked `// docs:` show the full-size value in the doc),
/// and every ```yaml block is a job file the CLI accepts.
final class DocSamplesTests: XCTestCase {
    static let docs = ["docs/getting-started.md", "docs/migration.md", "docs/pruning.md"]
    var work: URL!
    override func setUpWithError() throws { work = try TestPaths.temporaryDirectory(name) }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: work) }

    func testEverySwiftBlockOfTheDocsIsASampleAndEverySampleIsShown() throws {
        var used: Set<String> = []
        for doc in Self.docs { used.formUnion(try DocSamples.assertSwiftBlocksAreSamples(in: doc)) }
        let all = Set(try DocSamples.samples(inSource: "Tests/easycompressTests/DocSamplesTests.swift").keys)
        XCTAssertEqual(all.count, 5, "the samples: \(all.sorted())")
        XCTAssertEqual(used, all, "samples no doc shows: \(all.subtracting(used).sorted())")
    }

    /// Every job file in the docs parses and validates as `easycompress train` would.
    func testEveryYAMLBlockOfTheDocsIsAValidJob() throws {
        var count = 0
        for doc in Self.docs + ["docs/quantization.md", "docs/training.md"] {
            for block in try DocSamples.blocks("yaml", inDoc: doc) {
                count += 1
                do {
                    _ = try JobConfig.parse(ConfigNode.parse(block, file: doc))
                } catch {
                    XCTFail("\(doc): \(error)\n\(block)")
                }
            }
        }
        XCTAssertGreaterThanOrEqual(count, 9)
    }

    /// A trained FP32 model for the samples that start from one (TensorFlow's golden weights).
    func fp32Weights() throws -> String { TestPaths.goldenWeights.path }

    func testPrunerHookStyle() throws {
        let fp32 = try fp32Weights(), output = work.path
        // sample: pruner-hook
        let world = try World.current()                                  // MPI ranks, or a world of one
        let model = ModelZoo.make("fmnist-cnn", seed: 42)!
        try WeightLoader.load(into: model, from: fp32)  // docs: try WeightLoader.load(into: model, from: "runs/fmnist-cnn")   // trained FP32
        let pruner = try Pruner(config: PrunerConfig(compressionRatio: 0.5, stepInterval: 2, numTrials: 2))  // docs: let pruner = try Pruner(config: PrunerConfig(compressionRatio: 0.5, stepInterval: 1000, numTrials: 10))
        let hook = CompressionHook(pruner, saveDir: output)  // docs: let hook = CompressionHook(pruner, saveDir: "output")
        let session = try MonitoredSession(model: model, optimizer: try SGD(learningRate: 0.05, momentum: 0.9),
                                           communicator: world, hooks: [hook, StopAtStepHook(lastStep: 4)])  // docs: communicator: world, hooks: [hook, StopAtStepHook(lastStep: 10_000)])
        let train = try Dataset.load(.train, limit: 640)  // docs: let train = try Dataset.load(.train)     // /usr/share/datasets/fashion-mnist
        var batches = try BatchSchedule(dataset: train, batchSize: 64, seed: 42)
            .makeIterator(startingAt: .init(epoch: 0, stepInEpoch: 0), rank: world.rank, worldSize: world.size)
        while !session.shouldStop {                                      // seed: until OutOfRangeError
            let b = batches.next()
            try session.run(images: b.images, labels: b.labels, globalBatchSize: b.globalCount)
        }
        try session.close()                                              // writes output/pruner.json, pruner.safetensors, model.json
        let small = try GapFinetune(modelDir: output).model  // docs: let small = try GapFinetune(modelDir: "output").model            // seed: GapFinetune(save_dir), from what the hook saved
        // end sample
        XCTAssertGreaterThanOrEqual(pruner.achievedRatio, 0.5)
        XCTAssertTrue(FileManager.default.fileExists(atPath: work.appendingPathComponent("pruner.json").path))
        XCTAssertFalse(FileManager.default.fileExists(atPath: work.appendingPathComponent("checkpoints").path), "the hook alone")
        XCTAssertLessThan(small.parameterCount, model.parameterCount * 6 / 10)
        let x = try Dataset.load(.test, limit: 8).images
        XCTAssertLessThanOrEqual(small.predict(x).maxAbsDifference(model.predict(x)), 1e-4 * max(1, model.predict(x).scalars.map(abs).max()!),
                                 "the extracted model computes what the masked model computes")
    }

    func testSparsifierHookStyle() throws {
        let fp32 = try fp32Weights(), output = work.path
        // sample: sparsifier-hook
        let world = try World.current()
        let model = ModelZoo.make("fmnist-cnn", seed: 42)!
        try WeightLoader.load(into: model, from: fp32)  // docs: try WeightLoader.load(into: model, from: "runs/fmnist-cnn")
        let config = SparsifierConfig(targetSparseRatio: 0.6, sparseBlockShape: [1, 16], stepInterval: 2, numTrials: 2)  // docs: let config = SparsifierConfig(targetSparseRatio: 0.6, sparseBlockShape: [1, 16], stepInterval: 1000, numTrials: 10)
        let sparsifier = try Sparsifier(config: config)
        let hook = CompressionHook(sparsifier, saveDir: output)  // docs: let hook = CompressionHook(sparsifier, saveDir: "output")
        let session = try MonitoredSession(model: model, optimizer: try SGD(learningRate: 0.01, momentum: 0.9),
                                           communicator: world, hooks: [hook, StopAtStepHook(lastStep: 4)])  // docs: communicator: world, hooks: [hook, StopAtStepHook(lastStep: 10_000)])
        let train = try Dataset.load(.train, limit: 640)  // docs: let train = try Dataset.load(.train)
        var batches = try BatchSchedule(dataset: train, batchSize: 64, seed: 42)
            .makeIterator(startingAt: .init(epoch: 0, stepInEpoch: 0), rank: world.rank, worldSize: world.size)
        while !session.shouldStop {
            let b = batches.next()
            try session.run(images: b.images, labels: b.labels, globalBatchSize: b.globalCount)
        }
        try session.close()                                              // writes output/sparsifier.json
        // end sample
        XCTAssertEqual(sparsifier.achievedSparsity, 0.6, accuracy: 0.01)
        XCTAssertTrue(FileManager.default.fileExists(atPath: work.appendingPathComponent("sparsifier.json").path))
    }

    func testGapFinetune() throws {
        // A pruned save_dir, made by the CLI.
        let saveDir = work.appendingPathComponent("pruned").path, config = work.appendingPathComponent("prune.yaml").path
        try """
            dataset: {limit_train: 640, limit_test: 200}
            steps: 4
            save_dir: \(saveDir)
            report: false
            compression: {pruner: {compression_ratio: 0.5, step_interval: 2, num_trials: 2}}
            """.write(toFile: config, atomically: true, encoding: .utf8)
        let r = try TrainCommand.run(config)
        XCTAssertEqual(r.status, 0, r.stderr)
        // sample: gap-finetune
        let ft = try GapFinetune(modelDir: saveDir)  // docs: let ft = try GapFinetune(modelDir: "runs/fmnist-cnn-pruned")   // seed: GapFinetune(model_dir)
        let small = ft.model                                             // fewer channels, weights loaded
        print(ft.original.parameterCount, "→", small.parameterCount)     // fine-tune `small` like any model
        // end sample
        XCTAssertLessThan(small.parameterCount, ft.original.parameterCount)
    }

    func testQuantizerHookStyle() throws {
        let fp32 = try fp32Weights(), output = work.path
        // sample: quantizer-hook
        let world = try World.current()
        let model = ModelZoo.make("fmnist-cnn", seed: 42)!
        let config = QuantizerConfig(bits: 8, wbits: 8, signed: false, pretrainedModel: fp32, stepInterval: 2, numTrials: 2)  // docs: let config = QuantizerConfig(bits: 8, wbits: 8, signed: false, pretrainedModel: "runs/fmnist-cnn", stepInterval: 1000, numTrials: 1)
        try quantizeGraph(model, mode: .train, modelDir: output, config: config)  // docs: try quantizeGraph(model, mode: .train, modelDir: "output", config: config)   // seed: quantize_graph(mode='train', …)
        let train = try Dataset.load(.train, limit: 640)  // docs: let train = try Dataset.load(.train)
        let quantizer = try LSQQuantizer(modelDir: output, config: config, calibration: train.gather(0..<256).images, learningRate: 0.01)  // docs: let quantizer = try LSQQuantizer(modelDir: "output", config: config, calibration: train.gather(0..<256).images, learningRate: 0.01)
        let hook = CompressionHook(quantizer, saveDir: output)  // docs: let hook = CompressionHook(quantizer, saveDir: "output")
        let checkpoints = CheckpointHook(every: 4, saveDir: URL(fileURLWithPath: output), keepLast: 1, seed: 42, batchSize: 64, compressors: [quantizer], log: Logger(quiet: true))  // docs: let checkpoints = CheckpointHook(every: 1000, saveDir: URL(fileURLWithPath: "output"), keepLast: 1, seed: 42, batchSize: 64, compressors: [quantizer], log: Logger())
        let session = try MonitoredSession(model: model, optimizer: try SGD(learningRate: 0.01, momentum: 0.9),
                                           communicator: world, hooks: [hook, StopAtStepHook(lastStep: 4), checkpoints])  // docs: communicator: world, hooks: [hook, StopAtStepHook(lastStep: 1000), checkpoints])
        var batches = try BatchSchedule(dataset: train, batchSize: 64, seed: 42)
            .makeIterator(startingAt: .init(epoch: 0, stepInEpoch: 0), rank: world.rank, worldSize: world.size)
        while !session.shouldStop {
            let b = batches.next()
            try session.run(images: b.images, labels: b.labels, globalBatchSize: b.globalCount)
        }
        try session.close()                                              // writes output/quantizer.json
        // Later: the trained model as fake quant (eval) or with real int8 weights (export).
        let evalModel = ModelZoo.make("fmnist-cnn", seed: 42)!
        try quantizeGraph(evalModel, mode: .eval, modelDir: output, config: config)  // docs: try quantizeGraph(evalModel, mode: .eval, modelDir: "output", config: config)
        let int8 = try quantizeGraph(ModelZoo.make("fmnist-cnn", seed: 42)!, mode: .export, modelDir: output, config: config).int8!  // docs: let int8 = try quantizeGraph(ModelZoo.make("fmnist-cnn", seed: 42)!, mode: .export, modelDir: "output", config: config).int8!
        try Int8Export.write(int8, to: work.appendingPathComponent("model-int8.safetensors"))  // docs: try Int8Export.write(int8, to: URL(fileURLWithPath: "model-int8.safetensors"))
        // end sample
        XCTAssertEqual(quantizer.updatesDone, 2)
        XCTAssertEqual(int8.layers.count, 4)
        XCTAssertTrue(FileManager.default.fileExists(atPath: work.appendingPathComponent(QuantizationPlan.fileName).path))
        XCTAssertTrue(FileManager.default.fileExists(atPath: work.appendingPathComponent("quantizer.json").path))
    }

    func testTrainAndEvaluate() throws {
        let output = work.appendingPathComponent("output").path
        // sample: train-and-evaluate
        let world = try World.current()
        let estimator = Estimator(
            modelFn: { ModelZoo.make("fmnist-cnn", seed: 42)! },
            optimizerFn: { _ in try SGD(learningRate: 0.05, momentum: 0.9) },
            config: RunConfig(saveDir: output, communicator: world))  // docs: config: RunConfig(saveDir: "output", communicator: world))
        let pruner = try Pruner(config: PrunerConfig(compressionRatio: 0.5, stepInterval: 2, numTrials: 2))  // docs: let pruner = try Pruner(config: PrunerConfig(compressionRatio: 0.5, stepInterval: 200, numTrials: 5))
        let outcome = try trainAndEvaluate(
            estimator: estimator,
            trainSpec: TrainSpec(data: try Dataset.load(.train, limit: 640), batchSize: 64, seed: 42, maxSteps: 4),  // docs: trainSpec: TrainSpec(data: try Dataset.load(.train), batchSize: 64, seed: 42, epochs: 2),
            evalSpec: EvalSpec(data: try Dataset.load(.test, limit: 200)),  // docs: evalSpec: EvalSpec(data: try Dataset.load(.test)),
            compressors: [pruner])
        print(outcome.summary.table)                                     // output/summary.json, metrics.jsonl, checkpoints/
        RunReport.write(saveDir: outcome.saveDir, log: Logger())     // output/report.html
        // end sample
        XCTAssertEqual(outcome.summary.steps, 4)
        XCTAssertTrue(FileManager.default.fileExists(atPath: output + "/report.html"))
    }
}
