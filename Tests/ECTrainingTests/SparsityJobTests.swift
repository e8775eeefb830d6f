import ECTestSupport
import EasyCompression
import Foundation
import XCTest

/// The Sparsifier inside real training jobs: targets in summary.json, scopes, masks identical
/// on every MPI rank and equal to one process, resume, and the engine's block-sparse inference.
final class SparsityJobTests: XCTestCase {
    var work: URL!
    override func setUpWithError() throws { work = try TestPaths.temporaryDirectory(name) }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: work) }

    func job(_ name: String, steps: Int = 6, extra: String = "", sparsifier: String) throws -> (String, String) {
        let saveDir = work.appendingPathComponent(name).path
        let config = work.appendingPathComponent("\(name).yaml").path
        try """
            model: fmnist-cnn
            dataset: {limit_train: 640, limit_test: 300}
            steps: \(steps)
            batch_size: 64
            seed: 3
            log_every: 100
            save_dir: \(saveDir)
            \(extra)
            compression:
              sparsifier: {\(sparsifier)}
            """.write(toFile: config, atomically: true, encoding: .utf8)
        return (config, saveDir)
    }

    func section(_ saveDir: String) throws -> [String: Any] {
        let summary = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: saveDir + "/summary.json")))
        return try XCTUnwrap((summary as? [String: Any])?["sparsifier"] as? [String: Any])
    }

    func run(_ config: String, ranks: Int = 1, args: [String] = []) throws -> ProcessResult {
        let r = try TrainCommand.run(config, ranks: ranks, args: args)
        XCTAssertEqual(r.status, 0, r.stderr)
        return r
    }

    func testTargetsInTheSummaryLocalAndGlobal() throws {
        for range in ["local", "global"] {
            let (config, dir) = try job(range, sparsifier: "target_sparse_ratio: 0.8, sparse_block_shape: [1, 16], "
                                        + "step_interval: 2, num_trials: 3, sort_range: \(range)")
            _ = try run(config)
            let s = try section(dir)
            let layers = try XCTUnwrap(s["layers"] as? [[String: Any]])
            let elements = layers.map { ($0["shape"] as! [Int]).reduce(1, *) }
            let achieved = try XCTUnwrap(s["achieved_sparsity"] as? Double)
            XCTAssertEqual(s["sort_range"] as? String, range)
            if range == "local" {
                for (layer, n) in zip(layers, elements) {
                    let sparsity = layer["sparsity"] as! Double
                    XCTAssertLessThanOrEqual(sparsity, 0.8 + 1e-9, "\(layer["name"]!)")
                    XCTAssertGreaterThan(sparsity, 0.8 - 16 / Double(n), "\(layer["name"]!) within one block")
                }
            } else {
                XCTAssertLessThanOrEqual(achieved, 0.8 + 1e-9)
                XCTAssertGreaterThan(achieved, 0.8 - 16 / Double(elements.reduce(0, +)), "within one block overall")
            }
            // The saved weights are zero where the summary says.
            let tensors = try WeightLoader.readTensors(from: dir)
            for layer in layers {
                let w = try XCTUnwrap(tensors[layer["name"] as! String])
                let zero = Double(w.scalars.filter { $0 == 0 }.count) / Double(w.count)
                XCTAssertGreaterThanOrEqual(zero + 1e-12, layer["sparsity"] as! Double, "\(layer["name"]!)")
            }
        }
    }

    func testPatternAndExcludedScopes() throws {
        let (config, dir) = try job("pattern", steps: 4, sparsifier: "pattern: \"2:4\", step_interval: 2, num_trials: 2, exclude_scopes: [conv1]")
        _ = try run(config)
        let s = try section(dir)
        XCTAssertEqual(s["pattern"] as? String, "2:4")
        let names = (s["layers"] as! [[String: Any]]).map { $0["name"] as! String }
        XCTAssertEqual(names, ["conv2/weight", "fc1/weight", "fc2/weight"])
        let tensors = try WeightLoader.readTensors(from: dir)
        XCTAssertEqual(try XCTUnwrap(tensors["conv1/weight"]).scalars.filter { $0 == 0 }.count, 0, "conv1 untouched")
        let fc1 = try XCTUnwrap(tensors["fc1/weight"]).scalars
        for c in 0..<128 {
            for start in stride(from: 0, to: 3136, by: 4) {
                XCTAssertLessThanOrEqual((start..<(start + 4)).filter { fc1[$0 * 128 + c] != 0 }.count, 2)
            }
        }
    }

    /// 2 ranks decide one process's masks and train exactly as one process of 2 thread
    /// replicas (same shards and kernels, sums in rank order as in replica order): compared
    /// bit for bit, on any CPU.
    func testMasksAreIdenticalOnEveryRankAndTheRunMatchesOneProcess() throws {
        let sparsifier = "target_sparse_ratio: 0.6, sparse_block_shape: [1, 16], step_interval: 2, num_trials: 3"
        let (single, singleDir) = try job("one", sparsifier: sparsifier)
        _ = try run(single)
        let onePass = try WeightLoader.readTensors(from: singleDir)
        let (replicated, replicatedDir) = try job("replicas", extra: "threads: 1\nthread_replicas: 2", sparsifier: sparsifier)
        _ = try run(replicated)
        // --debug with a check every step: parameters and masks compared across ranks.
        let (config, dir) = try job("two", extra: "debug_check_every: 1", sparsifier: sparsifier)
        _ = try run(config, ranks: 2, args: ["--debug"])
        let tensors = try WeightLoader.readTensors(from: dir)
        XCTAssertFalse(onePass.names.filter { $0.hasPrefix("sparsifier/mask/") }.isEmpty)
        for name in onePass.names where name.hasPrefix("sparsifier/mask/") {
            XCTAssertEqual(tensors[name], onePass[name], "2 ranks: \(name) as on one process")
        }
        assertBitIdentical(tensors, try WeightLoader.readTensors(from: replicatedDir), "2 ranks vs 2 thread replicas")
    }

    func testResumedSparsityJobEqualsUninterrupted() throws {
        var config = JobConfig()
        config.dataset.limitTrain = 320
        config.dataset.limitTest = 100
        config.batchSize = 32
        config.steps = 9
        config.checkpointEvery = 4
        config.sparsifier = SparsifierConfig(targetSparseRatio: 0.7, sparseBlockShape: [1, 16], stepInterval: 3, numTrials: 3)
        try assertResumeEqualsUninterrupted(config, interruptAt: 4, in: work, prefixes: ["sparsifier/"])
    }

    /// The engine runs sparse kernels block-sparse in inference, with the dense path's logits.
    func testSparseInferenceEqualsTheDenseMaskedModel() throws {
        var config = JobConfig()
        config.dataset.limitTrain = 320
        config.dataset.limitTest = 100
        config.steps = 4
        config.saveDir = work.appendingPathComponent("infer").path
        config.sparsifier = SparsifierConfig(targetSparseRatio: 0.8, sparseBlockShape: [1, 16], stepInterval: 2, numTrials: 2)
        let outcome = try TrainJob.run(config, communicator: SingleProcessCommunicator(), log: Logger(quiet: true))
        let model = outcome.model
        for p in model.parameters where p.name.hasSuffix("weight") && p.shape.count >= 2 {
            XCTAssertTrue(SparseInference.runsBlockSparse(p.value), p.name)
        }
        for batch in [1, 64] {
            let (x, _) = try Dataset.load(.test, limit: batch).gather(0..<batch)
            // The block-sparse path ran: its layers call no sgemm. (Its sums may equal the dense
            // GEMM's bit for bit: both are one chain of FMAs over the inputs, zero blocks adding
            // exact zeros.)
            var gemms = 0
            BLAS.recorder = { _ in gemms += 1 }
            defer { BLAS.recorder = nil }
            let sparse = model(Variable(x), .inference()).value
            let sparseGEMMs = gemms
            gemms = 0
            let dense = model(Variable(x), .inference(.dense)).value
            XCTAssertLessThanOrEqual(sparse.maxAbsDifference(dense), 1e-4, "batch \(batch)")
            XCTAssertLessThan(sparseGEMMs, gemms, "batch \(batch): the block-sparse path ran")
        }
        // Exported in BSR form and read back: the same weights, the same accuracy on both paths.
        let out = work.appendingPathComponent("bsr.safetensors").path
        let exported = try ExportJob.runBlockSparse(config, from: config.saveDir, output: out, log: Logger(quiet: true))
        XCTAssertEqual(exported.blockSparseAccuracy, exported.denseAccuracy, accuracy: 0.011)
        let file = try SafeTensors.read(from: URL(fileURLWithPath: out))
        XCTAssertEqual(file["fc1/weight/bsr_row_indices"]?.dtype, .i32)
        XCTAssertNil(file["fc1/weight"], "fc1 is stored block-sparse only")
        let loaded = try XCTUnwrap(ModelZoo.make("fmnist-cnn", seed: 99))
        try BlockSparseExport.load(from: URL(fileURLWithPath: out), into: loaded)
        XCTAssertEqual(loaded.stateDict(), model.stateDict())
    }

    func testBadSparsifierConfigsAreClearErrors() throws {
        let cases = [
            ("target_sparse_ratio: 1.5", "compression.sparsifier.target_sparse_ratio must be in [0, 1], got 1.5"),
            ("sparse_block_shape: [0, 16]", "compression.sparsifier.sparse_block_shape must be > 0 in both dimensions, got [0, 16]"),
            ("sparse_block_shape: [16]", "compression.sparsifier.sparse_block_shape must be two integers [rows, columns]"),
            ("sort_range: galactic", "compression.sparsifier.sort_range must be one of \"local\", \"global\", got \"galactic\""),
            ("step_interval: 0", "compression.sparsifier.step_interval must be ≥ 1, got 0"),
            ("pattern: \"4:2\"", "compression.sparsifier.pattern must be \"N:M\" with integers 0 < N < M ≤ 64 (e.g. \"2:4\"), got \"4:2\""),
            ("pattern: \"2:4\", target_sparse_ratio: 0.6", "compression.sparsifier.target_sparse_ratio: not used with pattern \"2:4\""),
            ("sort_rnage: local", "unknown config key 'compression.sparsifier.sort_rnage' (did you mean 'compression.sparsifier.sort_range'?)"),
        ]
        for (body, text) in cases {
            XCTAssertThrowsError(try JobConfig.parse(ConfigNode.parse("compression: {sparsifier: {\(body)}}", file: "job.yaml"))) {
                XCTAssertTrue("\($0)".contains(text), "«\(text)» not in: \($0)")
            }
        }
        let (config, _) = try job("scopes", sparsifier: "include_scopes: [conv9]")
        let r = try TrainCommand.run(config)
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("sparsifier.include_scopes: 'conv9' matches no Conv2D/MatMul kernel of fmnist-cnn"), r.stderr)
    }
}
