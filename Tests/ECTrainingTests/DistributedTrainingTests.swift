import ECTestSupport
import EasyCompression
import Foundation
import XCTest

/// Data-parallel training under a real `mpirun`: k steps on N ranks with global batch B give
/// the parameters of k steps on one process with batch B.
///
/// Two comparisons, neither depending on which order a CPU's GEMM kernels sum in.
///
/// Many steps: bit for bit against a one-process reference that computes each step's gradient
/// shard by shard exactly as the ranks do (the same single-threaded kernels on the same
/// shards) and adds the shards in rank order, as the ranks' allreduce does (`Communicator`).
/// That checks the sharding (uneven and empty shards, the partial last batch, the epoch
/// boundary), the gradient normalisation by the global batch, the allreduce and the parameter
/// broadcast.
///
/// One step against one process with the whole batch, whose GEMMs sum the batch in other
/// orders: after one SGD step from zero momentum the slot holds the gradient g and the weights
/// w − lr·g. Per tensor, ‖g_N − g₁‖₂ ≤ 2·γₙ·‖g₁‖₂, the worst-case relative difference of two
/// summation orders of the step's longest sum (n = B × 28·28 terms for conv1; γₙ = n·u/(1 − n·u),
/// u = 2⁻²⁴, bounding Σ|terms| by the gradient's norm), and the weights within lr times that
/// plus the update's own rounding (2u·(‖w‖₂ + lr·‖g‖₂)). Training further amplifies rounding
/// through ReLU and max-pool decisions, so many steps are compared only with the reference.
final class DistributedTrainingTests: XCTestCase {
    var work: URL!

    override func setUpWithError() throws { work = try TestPaths.temporaryDirectory(name) }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: work) }

    func writeJob(_ name: String, batch: Int, steps: Int, samples: Int = 352,
                  extra: String = "") throws -> (config: String, saveDir: String) {
        let saveDir = work.appendingPathComponent(name).path
        let config = work.appendingPathComponent("\(name).yaml").path
        try """
            model: fmnist-cnn
            dataset: {limit_train: \(samples), limit_test: 200}
            steps: \(steps)
            batch_size: \(batch)
            seed: 5
            log_every: 1
            save_dir: \(saveDir)
            \(extra)
            """.write(toFile: config, atomically: true, encoding: .utf8)
        return (config, saveDir)
    }

    func finalWeights(_ saveDir: String, step: Int) throws -> NamedTensors {
        try WeightLoader.readTensors(from: saveDir + "/checkpoints/" + CheckpointStore.directoryName(step: step))
    }

    func train(ranks: Int, _ job: (config: String, saveDir: String), environment: [String: String] = [:],
               extraArgs: [String] = []) throws -> ProcessResult {
        let result = try TrainCommand.run(job.config, ranks: ranks, args: extraArgs, environment: environment, timeoutSeconds: 120)
        XCTAssertFalse(result.timedOut, "\(ranks)-rank run timed out")
        return result
    }

    /// One process, the ranks' arithmetic: each step's gradient is the sum of the shards'
    /// gradients (each shard's loss divided by the global batch), then one SGD update.
    func shardedReference(ranks: Int, batch: Int, steps: Int, samples: Int = 352) throws -> NamedTensors {
        // The ranks run one BLAS thread each; OpenBLAS's threaded GEMM may sum in another order,
        // so the reference uses one thread too (results are reproducible for a given world size
        // and thread count).
        TrainJob.configureThreads(1)
        defer { TrainJob.configureThreads(nil) }
        let data = try Dataset.load(.train, limit: samples)
        let model = try XCTUnwrap(ModelZoo.make("fmnist-cnn", seed: 5))
        let optimizer = try SGD(learningRate: 0.05, momentum: 0.9)
        let schedule = try BatchSchedule(dataset: data, batchSize: batch, seed: 5)
        var position = BatchPosition(epoch: 0, stepInEpoch: 0)
        for _ in 0..<steps {
            model.graph.zeroGrad()
            let global = schedule.globalBatchCount(step: position.stepInEpoch)
            for rank in 0..<ranks {
                let (x, y) = schedule.shardBatch(epoch: position.epoch, step: position.stepInEpoch, rank: rank, worldSize: ranks)
                guard !y.isEmpty else { continue }
                let ctx = ForwardContext.training()
                ctx.tape!.backward(from: model(Variable(x), ctx).softmaxCrossEntropy(labels: y, normalizer: global))
            }
            optimizer.step(model.parameters)
            position = schedule.position(after: position)
        }
        var state = model.stateDict()
        for (name, t) in optimizer.exportState().sorted { state[name] = t }
        return state
    }

    func testNRanksEqualOneRank() throws {
        // 352 samples: batch 64 gives 5 full batches and a partial one of 32 (16 + 16 on 2 ranks);
        // batch 50 on 3 ranks gives uneven shards (17, 17, 16) and a last batch of 2 samples
        // (1, 1 and an empty shard). Both runs cross into the second epoch.
        for (ranks, batch, steps) in [(2, 64, 7), (3, 50, 9)] {
            // One step: N ranks = one process with the whole batch.
            let single = try writeJob("single-\(batch)", batch: batch, steps: 1)
            let multiOne = try writeJob("ranks\(ranks)-\(batch)-1", batch: batch, steps: 1)
            XCTAssertEqual(try train(ranks: 1, single).status, 0)
            XCTAssertEqual(try train(ranks: ranks, multiOne).status, 0)
            assertOneStepClose(try finalWeights(multiOne.saveDir, step: 1), try finalWeights(single.saveDir, step: 1),
                               batch: batch, learningRate: 0.05, "\(ranks) ranks, one step")

            // Many steps: N ranks = the shard-by-shard reference, bit for bit.
            let multi = try writeJob("ranks\(ranks)-\(batch)", batch: batch, steps: steps)
            let n = try train(ranks: ranks, multi)
            XCTAssertEqual(n.status, 0, n.stderr)
            assertBitIdentical(try finalWeights(multi.saveDir, step: steps),
                               try shardedReference(ranks: ranks, batch: batch, steps: steps),
                               "\(ranks) ranks, \(steps) steps vs shard-by-shard reference")

            let s1 = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: single.saveDir + "/summary.json"))) as! [String: Any]
            let sn = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: multiOne.saveDir + "/summary.json"))) as! [String: Any]
            XCTAssertEqual(sn["world_size"] as? Int, ranks)
            XCTAssertEqual(s1["test_accuracy"] as! Double, sn["test_accuracy"] as! Double,
                           "evaluation sharded over ranks and allreduced: the same 200 predictions")
            // Only the chief logs: one progress line per step, not one per rank.
            XCTAssertEqual(n.stderr.components(separatedBy: "step 3/\(steps) ").count - 1, 1, n.stderr)
        }
    }

    /// The one-step bound of the type's documentation: momentum slots (the gradients) and
    /// weights of `actual` against `expected`, one SGD step (momentum from zero) at `learningRate`.
    func assertOneStepClose(_ actual: NamedTensors, _ expected: NamedTensors, batch: Int, learningRate: Double,
                            _ message: String, file: StaticString = #filePath, line: UInt = #line) {
        let u = pow(2.0, -24.0), n = Double(batch * 28 * 28)
        let relative = 2 * n * u / (1 - n * u)
        func norm(_ t: Tensor) -> Double { t.scalars.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot() }
        func distance(_ a: Tensor, _ b: Tensor) -> Double {
            zip(a.scalars, b.scalars).reduce(0.0) { $0 + Double($1.0 - $1.1) * Double($1.0 - $1.1) }.squareRoot()
        }
        XCTAssertEqual(actual.names, expected.names, message, file: file, line: line)
        XCTAssertEqual(actual["optimizer/step"], expected["optimizer/step"], message, file: file, line: line)
        for name in expected.names where !name.hasPrefix("optimizer/") {
            guard let w = actual[name], let w1 = expected[name], let g = actual["optimizer/\(name)/momentum"],
                  let g1 = expected["optimizer/\(name)/momentum"] else {
                XCTFail("\(name) or its momentum missing \(message)", file: file, line: line)
                continue
            }
            XCTAssertLessThanOrEqual(distance(g, g1), relative * norm(g1), "gradient of \(name) \(message)", file: file, line: line)
            XCTAssertLessThanOrEqual(distance(w, w1), learningRate * relative * norm(g1) + 2 * u * (norm(w1) + learningRate * norm(g1)),
                                     "\(name) \(message)", file: file, line: line)
        }
    }

    func testDebugModeChecksReplicasAndPasses() throws {
        let job = try writeJob("debug", batch: 64, steps: 4, extra: "debug_check_every: 2")
        let r = try train(ranks: 2, job, extraArgs: ["--debug"])
        XCTAssertEqual(r.status, 0, r.stderr)
    }

    func testDebugModeNamesTheFirstDivergingTensor() throws {
        let job = try writeJob("diverge", batch: 64, steps: 8, extra: "debug_check_every: 4")
        let r = try train(ranks: 2, job, environment: ["EC_FAULT_DIVERGE": "1:3"])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("replicas diverged at step 4: 'conv1/bias' differs between ranks"), r.stderr)
    }

    /// The chief's initial parameters are verified on every rank like every payload: a copy
    /// corrupted in transit (`EC_FAULT_CORRUPT_BROADCAST=1`: rank 1 flips a bit of what it
    /// received) ends the job before the first step, naming the tensor and both checksums.
    func testACorruptedInitialBroadcastEndsTheJob() throws {
        let job = try writeJob("corrupt-broadcast", batch: 64, steps: 4)
        let r = try train(ranks: 2, job, environment: ["EC_FAULT_CORRUPT_BROADCAST": "1"])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("[rank 1/2] error: initial parameter broadcast (chief → every rank, before step 1) "
                                        + "arrived corrupted on rank 1: 'conv1/bias' hashes to 0x"), r.stderr)
        XCTAssertFalse(r.stderr.contains("step 1/4"), "no step ran: \(r.stderr)")
        XCTAssertFalse(FileManager.default.fileExists(atPath: job.saveDir + "/checkpoints"), "nothing was saved")
    }

    /// A compression payload that fails verification names itself: kind, step, compressor, rank.
    func testACorruptedPayloadIsNamed() throws {
        let job = try writeJob("corrupt-payload", batch: 64, steps: 4,
                               extra: "compression:\n  pruner: {compression_ratio: 0.3, step_interval: 2, num_trials: 2}")
        let r = try train(ranks: 2, job, environment: ["EC_FAULT_CORRUPT_PAYLOAD": "1"])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("[rank 1/2] error: the pruner's masks payload of step 2 was rejected on rank 1: "
                                        + "payload checksum mismatch: header says 0x"), r.stderr)
    }

    func testFailureOnOneRankEndsTheJob() throws {
        let job = try writeJob("fault", batch: 64, steps: 50)
        let r = try train(ranks: 2, job, environment: ["EC_FAULT_INJECT": "1:2"])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertLessThan(r.seconds, 10, "the job ends promptly (seconds include start-up and data loading)")
        XCTAssertTrue(r.stderr.contains("[rank 1/2] error: injected fault on rank 1 at step 2"), r.stderr)
    }
}
