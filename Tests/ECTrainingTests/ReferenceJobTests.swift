import ECTestSupport
import EasyCompression
import Foundation
import XCTest

/// The reference job (examples/fmnist-cnn.yaml) — fmnist-cnn, SGD 0.05 momentum 0.9, batch 64, 3 epochs, one
/// process, seed 42 — trained for real on all of Fashion-MNIST (about a minute).
///
/// TensorFlow/Keras reached 0.9006 and PyTorch 0.8976 on this setup (docs/benchmarks.md, one run each).
/// Ours: this test (one process on 2 cores, seed 42) gives 0.9029 — the process trains as 2
/// thread replicas, which compute bit for bit what 2 ranks compute (2 ranks: 0.9029 too); with
/// one pass per step (`thread_replicas: 1`) it gave 0.8966. Other seeds (two ranks) 0.8862,
/// 0.8964, 0.8953, 0.8907, and on one process with an earlier build 0.8914, 0.8919, 0.8965,
/// 0.8781 — mean 0.893, standard deviation 0.007: seed 42 sits above our mean, as
/// TensorFlow's single run sits about one deviation above it. Rounding differences
/// (another CPU's BLAS kernels, another rank count) change the trajectory, hence a margin
/// below the seed-42 result: a regression in the engine, the data pipeline or the optimizer
/// shows as several points lost.
final class ReferenceJobTests: XCTestCase {
    func testReferenceJobTrainsToTensorFlowLevelAccuracy() throws {
        let dir = try TestPaths.temporaryDirectory(name)
        defer { try? FileManager.default.removeItem(at: dir) }
        var config = try JobConfig.load(file: TestPaths.repository.appendingPathComponent("examples/fmnist-cnn.yaml").path)
        config.saveDir = dir.path
        config.logEvery = 1000
        let outcome = try TrainJob.run(config, communicator: SingleProcessCommunicator(), log: Logger(quiet: true))
        XCTAssertEqual(outcome.summary.steps, 2814, "3 epochs of ⌈60000/64⌉ steps")
        XCTAssertEqual(outcome.summary.evaluations.count, 3, "an evaluation after each epoch")
        XCTAssertGreaterThanOrEqual(outcome.summary.testAccuracy, 0.885,
                                    "test accuracy \(outcome.summary.testAccuracy) (TensorFlow: 0.9006)")
        print("reference job: test accuracy \(outcome.summary.testAccuracy), loss \(outcome.summary.testLoss)")
    }
}
