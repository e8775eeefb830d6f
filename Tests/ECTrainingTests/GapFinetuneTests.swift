import ECTestSupport
import EasyCompression
import Foundation
import XCTest

/// GapFinetune reads a pruned save_dir (checkpoint + pruner keep flags) and builds the smaller
/// model whose outputs equal the masked large model's.
final class GapFinetuneTests: XCTestCase {
    /// A save_dir as a pruning job leaves it: fmnist-cnn weights and keep flags for conv1
    /// (every other channel) and fc1 (the first 40 units).
    func writePrunedSaveDir(_ dir: URL) throws -> Model {
        let model = try XCTUnwrap(ModelZoo.make("fmnist-cnn", seed: 11))
        var tensors = model.stateDict()
        tensors["pruner/keep/conv1"] = Tensor(shape: [32], scalars: (0..<32).map { $0 % 2 == 0 ? 1 : 0 })
        tensors["pruner/keep/fc1"] = Tensor(shape: [128], scalars: (0..<128).map { $0 < 40 ? 1 : 0 })
        let state = JobState(formatVersion: JobState.formatVersion, step: 10, position: BatchPosition(epoch: 0, stepInEpoch: 10),
                             seed: 11, worldSize: 1, model: "fmnist-cnn", batchSize: 64)
        try CheckpointStore(directory: dir.appendingPathComponent("checkpoints"))
            .save(step: 10, tensors: tensors, state: JSONEncoder().encode(state), keepLast: 1)
        return model
    }

    func testExtractedModelEqualsMaskedModel() throws {
        let dir = try TestPaths.temporaryDirectory(name)
        defer { try? FileManager.default.removeItem(at: dir) }
        _ = try writePrunedSaveDir(dir)
        let ft = try GapFinetune(modelDir: dir.path)
        XCTAssertEqual(ft.model.parameter(named: "conv1/weight")?.shape, [3, 3, 1, 16])
        XCTAssertEqual(ft.model.parameter(named: "conv2/weight")?.shape, [3, 3, 16, 64])
        XCTAssertEqual(ft.model.parameter(named: "fc1/weight")?.shape, [3136, 40])
        XCTAssertEqual(ft.model.parameter(named: "fc2/weight")?.shape, [40, 10])
        XCTAssertLessThan(ft.model.parameterCount, ft.original.parameterCount)
        XCTAssertLessThan(ft.model.flops, ft.original.flops)
        let (x, _) = try Dataset.load(.test, limit: 64).gather(0..<64)
        let small = ft.model(Variable(x), .inference()).value, masked = ft.original(Variable(x), .inference()).value
        XCTAssertLessThan(small.maxAbsDifference(masked), 1e-4)
    }

    func testNotAPrunedSaveDirIsAClearError() throws {
        let dir = try TestPaths.temporaryDirectory(name)
        defer { try? FileManager.default.removeItem(at: dir) }
        XCTAssertThrowsError(try GapFinetune(modelDir: dir.path)) { XCTAssertTrue("\($0)".contains("no checkpoint"), "\($0)") }
        let model = try XCTUnwrap(ModelZoo.make("fmnist-cnn", seed: 1))
        let state = JobState(formatVersion: 1, step: 1, position: BatchPosition(), seed: 1, worldSize: 1,
                             model: "fmnist-cnn", batchSize: 64)
        try CheckpointStore(directory: dir.appendingPathComponent("checkpoints"))
            .save(step: 1, tensors: model.stateDict(), state: JSONEncoder().encode(state), keepLast: 1)
        XCTAssertThrowsError(try GapFinetune(modelDir: dir.path)) {
            XCTAssertTrue("\($0)".contains("no pruner keep flags"), "\($0)")
        }
    }

    /// The before column is what it is — the pruning run's masked model, not "the original" —
    /// and the accuracy change says it includes the fine-tuning (issue #13, item 12).
    func testTheTableLabelsThePrunedMaskedModelAndTheTraining() throws {
        let report = FinetuneReport(
            from: "runs/p", paramsBefore: 421_642, paramsAfter: 208_871, flopsBefore: 8_482_304, flopsAfter: 5_431_194,
            accuracyPruned: 0.9097, accuracyExtractedBeforeFinetune: 0.9097, accuracyAfterFinetune: 0.9207,
            inferenceBefore: InferenceSpeed(batch256SamplesPerSecond: 8480, batch1Microseconds: 155.1),
            inferenceAfter: InferenceSpeed(batch256SamplesPerSecond: 10395, batch1Microseconds: 110.1),
            channels: ["conv1": [32, 16]], finetuneEpochs: 1)
        let table = report.table
        XCTAssertFalse(table.contains("original"), table)
        XCTAssertTrue(table.contains("pruned (masked)"), table)
        XCTAssertTrue(table.contains("+1.10 pt after 1 epoch of fine-tuning"), table)
        XCTAssertTrue(table.contains("a dense model trained as long gains too"), table)
        let json = try JSONSerialization.jsonObject(with: JSONEncoder().encode(report)) as? [String: Any]
        XCTAssertEqual(json?["finetune_epochs"] as? Double, 1)
    }
}
