import ECTestSupport
import EasyCompression
import ECCheckpoint
import Foundation
import XCTest

/// `easycompress inspect`: per-tensor shapes, dtypes, sparsity, and the compressors' channels,
/// bit widths and step sizes, as a table and as JSON.
final class CheckpointInspectionTests: XCTestCase {
    var work: URL!
    override func setUpWithError() throws { work = try TestPaths.temporaryDirectory(name) }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: work) }

    func cli(_ args: [String]) throws -> ProcessResult {
        let r = try ProcessRunner.run([try TestPaths.executable("easycompress")] + args, timeoutSeconds: 120)
        XCTAssertFalse(r.timedOut)
        return r
    }

    func trainJob(_ name: String, compression: String, extra: String = "") throws -> (String, String) {
        let saveDir = work.appendingPathComponent(name).path, config = work.appendingPathComponent("\(name).yaml").path
        try """
            model: fmnist-cnn
            dataset: {limit_train: 640, limit_test: 200}
            steps: 6
            batch_size: 64
            optimizer: {name: sgd, lr: 0.01, momentum: 0.9}
            seed: 4
            log_every: 100
            save_dir: \(saveDir)
            init_from: \(TestPaths.goldenWeights.path)
            \(extra)
            compression:
              \(compression)
            """.write(toFile: config, atomically: true, encoding: .utf8)
        let r = try TrainCommand.run(config)
        XCTAssertEqual(r.status, 0, r.stderr)
        return (config, saveDir)
    }

    func json(_ path: String) throws -> CheckpointInspection {
        let r = try cli(["inspect", path, "--json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        return try JSONDecoder().decode(CheckpointInspection.self, from: Data(r.stdout.utf8))
    }

    func testPrunedRunShowsChannelsKeptAndSparsity() throws {
        let (_, dir) = try trainJob("pruned", compression: "pruner: {compression_ratio: 0.5, step_interval: 2, num_trials: 2}")
        let table = try cli(["inspect", dir])
        XCTAssertEqual(table.status, 0, table.stderr)
        XCTAssertTrue(table.stdout.contains("conv1/weight"), table.stdout)
        XCTAssertTrue(table.stdout.contains("optimizer/compressor tensors not listed"), table.stdout)

        let inspection = try json(dir)
        XCTAssertEqual(inspection.model, "fmnist-cnn")
        XCTAssertEqual(inspection.step, 6)
        let conv1 = try XCTUnwrap(inspection.rows.first { $0.name == "conv1/weight" })
        XCTAssertEqual(conv1.shape, [3, 3, 1, 32])
        let kept = try XCTUnwrap(conv1.channels)
        XCTAssertEqual(kept[1], 32)
        XCTAssertLessThan(kept[0], 32, "the pruner dropped channels")
        // Pruned channels are zero in the masked weights: sparsity ≥ the dropped fraction.
        XCTAssertGreaterThanOrEqual(conv1.sparsity, Double(32 - kept[0]) / 32 - 1e-9)
        XCTAssertFalse(inspection.rows.contains { $0.name.hasPrefix("optimizer/") || $0.name.hasPrefix("pruner/") })
        XCTAssertEqual(inspection.totalElements, inspection.rows.reduce(0) { $0 + $1.elements })

        // The same checkpoint given by its directory.
        let step = try XCTUnwrap(FileManager.default.contentsOfDirectory(atPath: dir + "/checkpoints").first { $0.hasPrefix("step-") })
        XCTAssertEqual(try json(dir + "/checkpoints/" + step).rows, inspection.rows)
    }

    func testQuantizedRunAndInt8ExportShowBitsAndScales() throws {
        let (config, dir) = try trainJob("qat", compression: "quantizer: {bits: 4, wbits: 4, signed: false, step_interval: 2, num_trials: 2}")
        let fc1 = try XCTUnwrap(try json(dir).rows.first { $0.name == "fc1/weight" })
        XCTAssertEqual(fc1.wbits, 4)
        XCTAssertEqual(fc1.bits, 4)
        XCTAssertEqual(fc1.weightScale?.count, 1)
        XCTAssertGreaterThan(try XCTUnwrap(fc1.activationScale), 0)

        let int8 = work.appendingPathComponent("int8.safetensors").path
        let export = try cli(["export", "--format", "int8", "--from", dir, "--config", config, "--out", int8])
        XCTAssertEqual(export.status, 0, export.stderr)
        let codes = try XCTUnwrap(try json(int8).rows.first { $0.name == "fc1/weight_int8" })
        XCTAssertEqual(codes.dtype, "I8")
        XCTAssertEqual(codes.wbits, 4)
        XCTAssertEqual(codes.weightScale, fc1.weightScale)
        XCTAssertGreaterThan(codes.sparsity, 0, "4-bit codes of small weights are often 0")
    }

    /// An `int8_winograd` layer shows its Winograd-domain kernel step (in the run and in the
    /// int8 export's `winograd_weight_int8` row).
    func testWinogradLayersShowTheirKernelStep() throws {
        let (config, dir) = try trainJob("wino", compression: "quantizer: {bits: 8, wbits: 8, signed: false, int8_winograd: true, step_interval: 2, num_trials: 2}")
        let conv2 = try XCTUnwrap(try json(dir).rows.first { $0.name == "conv2/weight" })
        XCTAssertEqual(conv2.wbits, 8)
        XCTAssertEqual(conv2.weightScale?.count, 1)
        let int8 = work.appendingPathComponent("wino.safetensors").path
        XCTAssertEqual(try cli(["export", "--format", "int8", "--from", dir, "--config", config, "--out", int8]).status, 0)
        let codes = try XCTUnwrap(try json(int8).rows.first { $0.name == "conv2/winograd_weight_int8" })
        XCTAssertEqual(codes.shape, [16, 32, 64])
        XCTAssertEqual(codes.weightScale, conv2.weightScale)
    }

    /// A corrupt newest checkpoint is not silently replaced by an older one: inspect names it
    /// and why; if none is valid, the error says why the newest failed.
    func testCorruptNewestCheckpointIsReported() throws {
        let (_, dir) = try trainJob("corrupt", compression: "pruner: {compression_ratio: 0.5, step_interval: 2, num_trials: 2}",
                                    extra: "checkpoint_every: 3")
        let checkpoints = URL(fileURLWithPath: dir).appendingPathComponent("checkpoints")
        let older = checkpoints.appendingPathComponent("step-00000003")
        let newest = checkpoints.appendingPathComponent("step-00000006")
        var bytes = try Data(contentsOf: newest.appendingPathComponent("tensors.safetensors"))
        bytes[bytes.count - 3] ^= 0x10
        try bytes.write(to: newest.appendingPathComponent("tensors.safetensors"))
        let table = try cli(["inspect", dir])
        XCTAssertTrue(table.stdout.contains("skipped (failed verification) \(newest.path)"), table.stdout + table.stderr)
        let inspection = try json(dir)
        XCTAssertEqual(inspection.skippedCheckpoints.count, 1)
        XCTAssertEqual(inspection.step, 3, "the newest valid one is shown")

        try FileManager.default.removeItem(at: older)
        let none = try cli(["inspect", dir])
        XCTAssertNotEqual(none.status, 0)
        XCTAssertTrue(none.stderr.contains("no valid checkpoint in") && none.stderr.contains("checksum"), none.stderr)
    }

    /// Sparsity counts exact zeros of any dtype (−0.0 included), whoever made them.
    func testSparsityOfAnyFile() throws {
        let url = work.appendingPathComponent("w.safetensors")
        var file = SafeTensors(tensors: NamedTensors([("dense/weight", Tensor(shape: [2, 4], scalars: [0, 1, -0.0, 2, 0, 0, 3, 1e-30]))]))
        file["mask/codes"] = SafeTensorsEntry(shape: [4], values: [Int8(0), 5, 0, -1])
        try file.write(to: url)
        let inspection = try json(url.path)
        XCTAssertEqual(inspection.rows.map(\.zeros), [4, 2])
        XCTAssertEqual(inspection.rows.map(\.sparsity), [0.5, 0.5])
        XCTAssertEqual(inspection.totalZeros, 6)
        XCTAssertNil(inspection.step)
    }

    func testBadPathsAreClearErrors() throws {
        let missing = try cli(["inspect", work.appendingPathComponent("nope").path])
        XCTAssertEqual(missing.status, 1)
        XCTAssertTrue(missing.stderr.contains("no such file or directory"), missing.stderr)

        let plain = try cli(["inspect", work.path])
        XCTAssertEqual(plain.status, 1)
        XCTAssertTrue(plain.stderr.contains("neither a checkpoint directory"), plain.stderr)

        let url = work.appendingPathComponent("cut.safetensors")
        try SafeTensors(tensors: NamedTensors([("w", Tensor(shape: [64], repeating: 1))])).write(to: url)
        let data = try Data(contentsOf: url)
        try data.prefix(data.count - 10).write(to: url)
        let truncated = try cli(["inspect", url.path])
        XCTAssertEqual(truncated.status, 1)
        XCTAssertTrue(truncated.stderr.contains("cut.safetensors"), truncated.stderr)
        XCTAssertFalse(truncated.stderr.contains("Fatal error"), truncated.stderr)
    }
}
