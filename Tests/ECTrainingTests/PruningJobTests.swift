import ECTestSupport
import EasyCompression
import Foundation
import XCTest

/// The Pruner inside real training jobs: the ratio is reached as defined, residual groups and
/// scopes are honoured, decisions are identical on every MPI rank, and the extracted model is
/// smaller and computes the masked model's function.
final class PruningJobTests: XCTestCase {
    var work: URL!
    override func setUpWithError() throws { work = try TestPaths.temporaryDirectory(name) }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: work) }

    func job(_ name: String, model: String = "fmnist-cnn", batch: Int = 64, steps: Int = 8, pruner: String,
             extra: String = "") throws -> (String, String) {
        let saveDir = work.appendingPathComponent(name).path
        let config = work.appendingPathComponent("\(name).yaml").path
        try """
            model: \(model)
            dataset: {limit_train: 640, limit_test: 300}
            steps: \(steps)
            batch_size: \(batch)
            seed: 3
            log_every: 100
            save_dir: \(saveDir)
            \(extra)
            compression:
              pruner: {\(pruner)}
            """.write(toFile: config, atomically: true, encoding: .utf8)
        return (config, saveDir)
    }

    func prunerSection(_ saveDir: String) throws -> [String: Any] {
        let summary = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: saveDir + "/summary.json")))
        return try XCTUnwrap((summary as? [String: Any])?["pruner"] as? [String: Any])
    }

    func channels(_ section: [String: Any]) -> [String: [Int]] {
        Dictionary(uniqueKeysWithValues: (section["groups"] as! [[String: Any]]).map {
            ($0["id"] as! String, [$0["channels_before"] as! Int, $0["channels_after"] as! Int])
        })
    }

    func run(_ config: String, ranks: Int = 1, args: [String] = []) throws -> ProcessResult {
        let r = try TrainCommand.run(config, ranks: ranks, args: args)
        XCTAssertEqual(r.status, 0, r.stderr)
        return r
    }

    func testRatioIsReachedGlobalAndLocalOnFmnistCNNAndResnetMini() throws {
        for model in ["fmnist-cnn", "resnet-mini"] {
            for range in ["global", "local"] {
                let (config, dir) = try job("\(model)-\(range)", model: model, steps: 6,
                                            pruner: "compression_ratio: 0.5, step_interval: 2, num_trials: 3, prune_sort_range: \(range)")
                _ = try run(config)
                let section = try prunerSection(dir)
                let achieved = try XCTUnwrap(section["achieved_ratio"] as? Double)
                let prunable = try XCTUnwrap(section["prunable_params"] as? Int)
                // Within one channel of granularity: global sorts all channels together, so one
                // channel of the costliest group; local prunes each group's own fraction, so
                // one channel per group.
                let costs = ChannelGroups.build(model: try XCTUnwrap(ModelZoo.make(model, seed: 3)))
                    .filter(\.prunable).map(\.parametersPerChannel)
                let granularity = range == "global" ? costs.max()! : costs.reduce(0, +)
                XCTAssertGreaterThanOrEqual(achieved, 0.5, "\(model) \(range)")
                XCTAssertLessThanOrEqual(achieved, 0.5 + Double(granularity) / Double(prunable), "\(model) \(range)")
                XCTAssertLessThan(try XCTUnwrap(section["params_after"] as? Int), try XCTUnwrap(section["params_before"] as? Int))
                for (id, c) in channels(section) { XCTAssertGreaterThanOrEqual(c[1], 1, "\(model) \(id) keeps a channel") }
            }
        }
    }

    /// `sort_cost: flops` reaches the same parameter target by removing more computation.
    func testFlopsCostRemovesMoreComputeForTheSameParameters() throws {
        var flopsAfter: [String: Int] = [:]
        for cost in ["params", "flops"] {
            let (config, dir) = try job("cost-\(cost)", model: "resnet-mini", steps: 6,
                                        pruner: "compression_ratio: 0.5, step_interval: 2, num_trials: 3, sort_cost: \(cost)")
            _ = try run(config)
            let section = try prunerSection(dir)
            XCTAssertGreaterThanOrEqual(try XCTUnwrap(section["achieved_ratio"] as? Double), 0.5, cost)
            flopsAfter[cost] = try XCTUnwrap(section["flops_after"] as? Int)
        }
        XCTAssertLessThan(flopsAfter["flops"]!, flopsAfter["params"]!, "FLOPs left: \(flopsAfter)")
    }

    func testExcludedScopesAndTheClassifierAreUntouched() throws {
        let (config, dir) = try job("exclude", steps: 4, pruner: "compression_ratio: 0.4, step_interval: 2, num_trials: 2, exclude_scopes: [conv1]")
        _ = try run(config)
        let c = channels(try prunerSection(dir))
        XCTAssertEqual(c["conv1"], [32, 32])
        XCTAssertEqual(c["fc2"], [10, 10], "the classes are never pruned")
        XCTAssertLessThan(c["fc1"]![1], 128)
    }

    /// N ranks decide the masks one process decides, and train exactly as one process of N
    /// thread replicas does: the same shards, the same single-threaded kernels and every sum
    /// over ranks in rank order, as the replicas' in replica order — so weights, optimizer
    /// state and masks are compared bit for bit, on any CPU. (A one-pass run sums the batch in
    /// one GEMM instead: its weights differ in rounding, which training amplifies; its masks do
    /// not.)
    func testDecisionsAreIdenticalOnEveryRankAndMatchOneProcess() throws {
        let pruner = "compression_ratio: 0.5, step_interval: 2, num_trials: 3"
        let (single, singleDir) = try job("one", steps: 6, pruner: pruner)
        _ = try run(single)
        let onePass = try WeightLoader.readTensors(from: singleDir)
        for ranks in [2, 3] {
            let (replicated, replicatedDir) = try job("replicas\(ranks)", steps: 6, pruner: pruner,
                                                      extra: "threads: 1\nthread_replicas: \(ranks)")
            _ = try run(replicated)
            // --debug with a check every step: parameters and keep flags compared across ranks.
            let (config, dir) = try job("ranks\(ranks)", steps: 6, pruner: pruner, extra: "debug_check_every: 1")
            _ = try run(config, ranks: ranks, args: ["--debug"])
            let tensors = try WeightLoader.readTensors(from: dir)
            for name in onePass.names where name.hasPrefix("pruner/keep/") {
                XCTAssertEqual(tensors[name], onePass[name], "\(ranks) ranks: \(name) as on one process")
            }
            assertBitIdentical(tensors, try WeightLoader.readTensors(from: replicatedDir), "\(ranks) ranks vs \(ranks) replicas")
        }
    }

    func testGapFinetuneOfAPrunedResnetMatchesTheMaskedModel() throws {
        let (config, dir) = try job("resnet", model: "resnet-mini", steps: 4, pruner: "compression_ratio: 0.5, step_interval: 2, num_trials: 2")
        _ = try run(config)
        let ft = try GapFinetune(modelDir: dir)
        XCTAssertLessThan(ft.model.parameterCount, ft.original.parameterCount)
        XCTAssertLessThan(ft.model.flops, ft.original.flops)
        let (x, _) = try Dataset.load(.test, limit: 32).gather(0..<32)
        XCTAssertLessThan(ft.model(Variable(x), .inference()).value.maxAbsDifference(ft.original(Variable(x), .inference()).value), 1e-4)
    }
}

extension PruningJobTests {
    func testResumedPruningJobEqualsUninterrupted() throws {
        var config = JobConfig()
        config.dataset.limitTrain = 320
        config.dataset.limitTest = 100
        config.batchSize = 32
        config.steps = 9
        config.checkpointEvery = 4
        var p = PrunerConfig()
        p.compressionRatio = 0.5
        p.stepInterval = 3
        p.numTrials = 3
        config.pruner = p
        try assertResumeEqualsUninterrupted(config, interruptAt: 4, in: work, prefixes: ["pruner/"])
    }
}
