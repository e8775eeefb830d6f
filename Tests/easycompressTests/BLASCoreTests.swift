import ECTensor
import ECTestSupport
import Foundation
import XCTest

/// Issue #13, item 11, through the built binary: when OpenBLAS chose a generic core on an
/// AVX2/AVX-512 CPU, `easycompress` re-executes itself with the right `OPENBLAS_CORETYPE`
/// before MPI starts — alone and on every rank under `mpirun` — and the re-executed process
/// reports the corrected core. `EC_TEST_FAKE_BLAS_CORE=Prescott` makes the check believe the
/// library chose Prescott (an explicit `OPENBLAS_CORETYPE=Prescott` would be the user's choice,
/// which is kept). The environment's own `OPENBLAS_CORETYPE`, if any, is removed (`env -u`).
final class BLASCoreTests: XCTestCase {
    private var expected: String!

    override func setUpWithError() throws {
        guard let core = BLASCoreSelection.recommendedCore(for: CPUInfo.current) else {
            throw XCTSkip("this CPU has no AVX2: no core would be chosen over a generic one")
        }
        expected = core
    }

    private func run(_ command: [String], _ variables: [String: String] = [:], timeout: Double = 120) throws -> ProcessResult {
        let assignments = variables.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
        return try ProcessRunner.run(["env", "-u", "OPENBLAS_CORETYPE", "OPENBLAS_NUM_THREADS=1"] + assignments + command,
                                     timeoutSeconds: timeout)
    }

    func testAFakeGenericCoreIsReplacedAndReported() throws {
        let easycompress = try TestPaths.executable("easycompress")
        let fake = try run([easycompress, "--version"], ["EC_TEST_FAKE_BLAS_CORE": "Prescott"])
        XCTAssertEqual(fake.status, 0, fake.stderr)
        XCTAssertTrue(fake.stdout.contains("core in use: \(expected!)"), fake.stdout)
        XCTAssertTrue(fake.stdout.contains("OpenBLAS chose its generic Prescott kernels for this CPU"), fake.stdout)
        XCTAssertTrue(fake.stdout.contains("restarted with OPENBLAS_CORETYPE=\(expected!): using \(expected!)"), fake.stdout)
        for line in ["CPU: ", "engine kernels:", "  int8 GEMM: ", "  block-sparse matmul: ", "  FP32 GEMM (conv, dense): ", "  FP32 convolution: "] {
            XCTAssertTrue(fake.stdout.contains(line), "«\(line)» in \(fake.stdout)")
        }

        // The user's explicit choice stays, with a note; the switch turns the check off.
        let chosen = try run([easycompress, "--version"], ["OPENBLAS_CORETYPE": "Prescott", "EC_TEST_FAKE_BLAS_CORE": "Prescott"])
        XCTAssertTrue(chosen.stdout.contains("core in use: Prescott"), chosen.stdout)
        XCTAssertTrue(chosen.stdout.contains("OPENBLAS_CORETYPE=Prescott (set in the environment) keeps"), chosen.stdout)
        let off = try run([easycompress, "--version"], ["EC_TEST_FAKE_BLAS_CORE": "Prescott", "EC_BLAS_CORE_AUTO": "0"])
        XCTAssertFalse(off.stdout.contains("restarted"), off.stdout)
    }

    /// Under mpirun each rank is its own process: each re-executes before MPI_Init, keeps its
    /// arguments and Open MPI's variables, and joins the job; the chief logs the choice once.
    func testEveryRankReExecutesBeforeMPIStarts() throws {
        let easycompress = try TestPaths.executable("easycompress")
        let fake = ["EC_TEST_FAKE_BLAS_CORE": "Prescott"]
        let versions = try run(MPIRun.arguments(ranks: 2, [easycompress, "--version"]), fake)
        XCTAssertEqual(versions.status, 0, versions.stderr)
        XCTAssertEqual(versions.stdout.components(separatedBy: "restarted with OPENBLAS_CORETYPE=\(expected!): using \(expected!)").count - 1,
                       2, "both ranks: \(versions.stdout)")

        let work = try TestPaths.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: work) }
        let config = work.appendingPathComponent("job.yaml")
        try """
        model: fmnist-cnn
        dataset: {limit_train: 256, limit_test: 128}
        steps: 3
        batch_size: 64
        save_dir: \(work.appendingPathComponent("run").path)
        """.write(to: config, atomically: true, encoding: .utf8)
        let train = try run(MPIRun.arguments(ranks: 2, [easycompress, "train", "--config", config.path, "--debug"]), fake,
                            timeout: 180)
        XCTAssertEqual(train.status, 0, train.stderr)
        XCTAssertTrue(train.stderr.contains("on 2 rank(s)"), train.stderr)
        XCTAssertEqual(train.stderr.components(separatedBy: "restarted with OPENBLAS_CORETYPE=\(expected!)").count - 1, 1,
                       "logged once, by the chief: \(train.stderr)")
    }
}
