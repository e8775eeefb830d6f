import ECCompression
import ECTestSupport
import Foundation
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// Runs the payload scenarios of `ec-mpi-check` (Tests/Programs/ec-mpi-check/PayloadScenarios.swift)
/// under `mpirun`. Needs `swift build --product ec-mpi-check` before `swift test`.
final class PayloadMPITests: XCTestCase {
    func testChiefBroadcastIsBitIdenticalOnTwoRanks() throws {
        try assertPayloadScenarioPasses(ranks: 2)
    }

    func testChiefBroadcastIsBitIdenticalOnThreeRanks() throws {
        try assertPayloadScenarioPasses(ranks: 3)
    }

    func testChiefBroadcastWithoutLauncher() throws {
        let result = try ProcessRunner.run([try Self.programPath(), "payload"], timeoutSeconds: 60)
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertTrue(result.stdout.contains("OK payload rank 0/1\n"), result.stdout)
    }

    /// Rank 1 corrupts the payload it receives: the job must abort quickly with rank 1's
    /// payload error, never carry on with diverging masks or hang.
    func testCorruptedBroadcastAbortsTheJobOnTwoRanks() throws {
        try assertCorruptionAborts(ranks: 2)
    }

    func testCorruptedBroadcastAbortsTheJobOnThreeRanks() throws {
        try assertCorruptionAborts(ranks: 3)
    }

    private func assertPayloadScenarioPasses(ranks: Int, file: StaticString = #filePath, line: UInt = #line) throws {
        let result = try Self.mpirun(ranks: ranks, ["payload"], timeoutSeconds: 60)
        XCTAssertFalse(result.timedOut, "mpirun -np \(ranks) timed out", file: file, line: line)
        XCTAssertEqual(result.status, 0, "mpirun -np \(ranks) failed:\n\(result.stderr)", file: file, line: line)
        for rank in 0..<ranks {
            XCTAssertTrue(result.stdout.contains("OK payload rank \(rank)/\(ranks)\n"),
                          "missing OK payload on rank \(rank)/\(ranks):\n\(result.stdout)\n\(result.stderr)",
                          file: file, line: line)
        }
    }

    private func assertCorruptionAborts(ranks: Int, file: StaticString = #filePath, line: UInt = #line) throws {
        let result = try Self.mpirun(ranks: ranks, ["payload-corrupt"], timeoutSeconds: 10,
                                     environment: [PayloadChannel.corruptPayloadVariable: "1"])
        XCTAssertFalse(result.timedOut, "the job hung instead of aborting: \(result.stderr)", file: file, line: line)
        XCTAssertNotEqual(result.status, 0, file: file, line: line)
        XCTAssertLessThan(result.seconds, 10, file: file, line: line)
        XCTAssertTrue(result.stderr.contains("[rank 1/\(ranks)] error: payload-corrupt: payload checksum mismatch: "
                                             + "header says 0x"), result.stderr, file: file, line: line)
        XCTAssertFalse(result.stdout.contains("OK payload-corrupt"), result.stdout, file: file, line: line)
    }

    /// `ec-mpi-check`: `$EC_MPI_CHECK`, beside the test bundle, or in `.build/debug`.
    static func programPath() throws -> String {
        var candidates = [String]()
        if let override = ProcessInfo.processInfo.environment["EC_MPI_CHECK"] { candidates.append(override) }
        if let bundleDirectory = Bundle.main.executableURL?.deletingLastPathComponent() {
            candidates.append(bundleDirectory.appendingPathComponent("ec-mpi-check").path)
        }
        candidates.append(TestPaths.buildProducts.appendingPathComponent("ec-mpi-check").path)
        if let found = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) { return found }
        throw HarnessError(description: "ec-mpi-check not found (looked at \(candidates)); "
                           + "run `swift build --product ec-mpi-check` before `swift test`")
    }

    /// `mpirun -np <ranks> … -x OPENBLAS_NUM_THREADS [-x VAR]… ec-mpi-check <scenarios>`, with
    /// `environment` exported to every rank, killed after `timeoutSeconds`.
    static func mpirun(ranks: Int, _ scenarios: [String], timeoutSeconds: Double,
                       environment: [String: String] = [:]) throws -> ProcessResult {
        var arguments = ["mpirun", "-np", String(ranks)]
        if getuid() == 0 { arguments.append("--allow-run-as-root") }
        if ranks > ProcessInfo.processInfo.activeProcessorCount { arguments.append("--oversubscribe") }
        let exported = environment.merging(["OPENBLAS_NUM_THREADS": "1"]) { $1 }
        arguments += exported.keys.sorted().flatMap { ["-x", $0] } + [try programPath()] + scenarios
        return try ProcessRunner.run(arguments, environment: exported, timeoutSeconds: timeoutSeconds)
    }
}
