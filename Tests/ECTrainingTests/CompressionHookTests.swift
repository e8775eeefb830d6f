import ECTestSupport
import EasyCompression
import Foundation
import XCTest

/// The compression plumbing with a minimal compressor: it is prepared once, called after every
/// update on every rank, its masks stay applied to weights and optimizer state, its summary
/// lands in summary.json and its state in checkpoints (restored on resume).
final class CompressionHookTests: XCTestCase {
    /// Zeroes the first `zeroed` elements of `fc1/weight`; `zeroed` grows by one per step.
    final class PrefixZeroer: Compressor {
        let kind = "zeroer"
        var zeroed = 0
        var prepared = 0, steps: [Int] = []
        func prepare(model: Model, communicator: Communicator) throws { prepared += 1 }
        /// Decides at every step; reports a decision event at even steps only.
        func afterStep(_ step: Int, model: Model, channel: PayloadChannel) throws -> CompressionEvent? {
            steps.append(step)
            let payload = try channel.broadcast(kind: .state, step: step, entries: ["n": .floats(Tensor(scalar: Float(step)))])
            zeroed = Int(payload.floats(named: "n")!.scalarValue)
            return step % 2 == 0 ? CompressionEvent(kind: kind, step: step, trial: step / 2, values: ["zeroed": Double(zeroed)]) : nil
        }
        func applyMasks(to tensor: inout Tensor, parameter: String) {
            guard parameter == "fc1/weight" else { return }
            tensor.withUnsafeMutableBufferPointer { for i in 0..<min(zeroed, $0.count) { $0[i] = 0 } }
        }
        func summarySection(model: Model) throws -> Data { Data(#"{"zeroed": \#(zeroed)}"#.utf8) }
        func summaryRows(model: Model) -> [[String]] { [["zeroed"], ["\(zeroed)"]] }
        var decisionTensors: NamedTensors { checkpointTensors() }
        func checkpointTensors() -> NamedTensors { NamedTensors([("zeroer/count", Tensor(scalar: Float(zeroed)))]) }
        func checkpointState() throws -> Data { Data(#"{"zeroed": \#(zeroed)}"#.utf8) }
        func restore(tensors: NamedTensors, state: Data) throws {
            zeroed = Int(try XCTUnwrap(tensors["zeroer/count"]).scalarValue)
        }
    }

    func estimator(_ dir: URL, resume: Bool = false) -> Estimator {
        var run = RunConfig(saveDir: dir.path, log: Logger(quiet: true))
        run.checkpointEvery = 3
        run.resume = resume
        return Estimator(modelFn: { ModelZoo.make("mlp", seed: 3)! },
                         optimizerFn: { _ in try SGD(learningRate: 0.05, momentum: 0.9) }, config: run)
    }

    func testTrainAndEvaluateDrivesTheCompressorThroughItsHook() throws {
        let dir = try TestPaths.temporaryDirectory(name)
        defer { try? FileManager.default.removeItem(at: dir) }
        let data = try Dataset.load(.train, limit: 256), test = try Dataset.load(.test, limit: 100)
        let zeroer = PrefixZeroer()
        let outcome = try trainAndEvaluate(estimator: estimator(dir), trainSpec: TrainSpec(data: data, batchSize: 32, seed: 1, maxSteps: 5),
                                           evalSpec: EvalSpec(data: test), compressors: [zeroer])
        XCTAssertEqual(zeroer.prepared, 1)
        XCTAssertEqual(zeroer.steps, [1, 2, 3, 4, 5])
        let w = try XCTUnwrap(outcome.model.parameter(named: "fc1/weight")).value
        XCTAssertEqual(Array(w.scalars.prefix(5)), [0, 0, 0, 0, 0], "masks applied after the last update")
        XCTAssertNotEqual(w.scalars[5], 0)

        let summary = try XCTUnwrap(JSONSerialization.jsonObject(
            with: Data(contentsOf: dir.appendingPathComponent("summary.json"))) as? [String: Any])
        XCTAssertEqual((summary["zeroer"] as? [String: Any])?["zeroed"] as? Int, 5)
        let saved = try WeightLoader.readTensors(from: dir.path)
        XCTAssertEqual(saved["zeroer/count"]?.scalarValue, 5)
        XCTAssertEqual(Array(try XCTUnwrap(saved["optimizer/fc1/weight/momentum"]).scalars.prefix(5)), [0, 0, 0, 0, 0],
                       "masks applied to the optimizer state too")
        let events = try String(contentsOf: dir.appendingPathComponent("metrics.jsonl"), encoding: .utf8)
            .split(separator: "\n").compactMap { try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
            .filter { $0["event"] as? String == "compression" }
        XCTAssertEqual(events.map { $0["step"] as? Int }, [2, 4], "one metrics line per decision event")
        XCTAssertEqual(events.map { $0["compressor"] as? String }, ["zeroer", "zeroer"])
        XCTAssertEqual(events.map { $0["zeroed"] as? Double }, [2, 4])
        XCTAssertEqual(events.map { $0["trial"] as? Int }, [1, 2])

        // Resume from the step-3 checkpoint restores the compressor's state.
        try FileManager.default.removeItem(at: dir.appendingPathComponent("checkpoints/step-00000005"))
        let resumed = PrefixZeroer()
        _ = try trainAndEvaluate(estimator: estimator(dir, resume: true),
                                 trainSpec: TrainSpec(data: data, batchSize: 32, seed: 1, maxSteps: 5),
                                 evalSpec: EvalSpec(data: test), compressors: [resumed])
        XCTAssertEqual(resumed.steps, [4, 5])
        XCTAssertEqual(resumed.zeroed, 5)
    }
}
