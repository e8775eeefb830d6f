import ECTestSupport
import EasyCompression
import Foundation
import XCTest

/// The reference job of SPEC §3 — fmnist-cnn, SGD 0.05 momentum 0.9, batch 64, 3 epochs, one
/// process, seed 42 — trained for real on all of Fashion-MNIST (about a minute).
///
/// TensorFlow/Keras reached 0.9006 and PyTorch 0.8976 on this setup (PEERS.md, one run each).
/// Ours, measured over seeds: one process 0.8914 (seed 42), 0.8919, 0.8965, 0.8781; two ranks
/// 0.9029 (seed 42), 0.8862, 0.8964, 0.8953, 0.8907 — mean 0.892, standard deviation 0.0075,
/// so TensorFlow's single run sits about one deviation above our mean. The bound below is the
/// seed-42 result less a margin for other CPUs' BLAS kernels (rounding differences change the
/// trajectory): a regression in the engine, the data pipeline or the optimizer shows as
/// several points lost.
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
