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
        let result = try ProcessRunner.run([try MPIRun.checkProgram(), "payload"], timeoutSeconds: 60)
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
        let result = try MPIRun.check(ranks: ranks, ["payload"], timeoutSeconds: 60)
        XCTAssertFalse(result.timedOut, "mpirun -np \(ranks) timed out", file: file, line: line)
        XCTAssertEqual(result.status, 0, "mpirun -np \(ranks) failed:\n\(result.stderr)", file: file, line: line)
        for rank in 0..<ranks {
            XCTAssertTrue(result.stdout.contains("OK payload rank \(rank)/\(ranks)\n"),
                          "missing OK payload on rank \(rank)/\(ranks):\n\(result.stdout)\n\(result.stderr)",
                          file: file, line: line)
        }
    }

    private func assertCorruptionAborts(ranks: Int, file: StaticString = #filePath, line: UInt = #line) throws {
        let result = try MPIRun.check(ranks: ranks, ["payload-corrupt"],
                                      environment: [PayloadChannel.corruptPayloadVariable: "1"], timeoutSeconds: 10)
        XCTAssertFalse(result.timedOut, "the job hung instead of aborting: \(result.stderr)", file: file, line: line)
        XCTAssertNotEqual(result.status, 0, file: file, line: line)
        XCTAssertLessThan(result.seconds, 10, file: file, line: line)
        XCTAssertTrue(result.stderr.contains("[rank 1/\(ranks)] error: payload-corrupt: the pruner's masks payload of step 120 "
                                             + "was rejected on rank 1: payload checksum mismatch: header says 0x"),
                      result.stderr, file: file, line: line)
        XCTAssertFalse(result.stdout.contains("OK payload-corrupt"), result.stdout, file: file, line: line)
    }
}
