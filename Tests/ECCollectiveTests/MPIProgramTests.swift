import ECTestSupport
import Foundation
import XCTest

/// Runs `ec-mpi-check` (Tests/Programs/ec-mpi-check) under `mpirun`: the distributed tests.
/// Needs `swift build --product ec-mpi-check` before `swift test`.
final class MPIProgramTests: XCTestCase {
    /// Every standard scenario, in order; `ec-mpi-check all` runs these.
    static let scenarios = ["world", "allreduce", "broadcast", "reduce", "ordered", "gather", "bucket", "nonblocking",
                            "chunked", "barrier", "finalize"]

    func testScenariosOnTwoRanks() throws {
        try assertScenariosPass(ranks: 2)
    }

    func testScenariosOnThreeRanks() throws {
        try assertScenariosPass(ranks: 3)
    }

    /// Sums in rank order on 4 ranks too (values where every other association rounds
    /// differently; plain and chunked calls).
    func testSumsAreTakenInRankOrderOnFourRanks() throws {
        let result = try MPIRun.check(ranks: 4, ["ordered", "nonblocking", "chunked"], timeoutSeconds: 120)
        XCTAssertFalse(result.timedOut, "mpirun -np 4 timed out")
        XCTAssertEqual(result.status, 0, result.stderr)
        for rank in 0..<4 {
            XCTAssertTrue(result.stdout.contains("OK ordered rank \(rank)/4\n"), result.stdout)
            XCTAssertTrue(result.stdout.contains("OK nonblocking rank \(rank)/4\n"), result.stdout)
        }
    }

    /// Without a launcher the same program is a world of size 1 and every scenario still holds.
    func testScenariosWithoutLauncher() throws {
        let result = try ProcessRunner.run([try MPIRun.checkProgram(), "all"], timeoutSeconds: 60)
        XCTAssertEqual(result.status, 0, result.stderr)
        for scenario in Self.scenarios {
            XCTAssertTrue(result.stdout.contains("OK \(scenario) rank 0/1\n"), "\(scenario): \(result.stdout)")
        }
    }

    /// Rank 1 fails while rank 0 waits in an allreduce: `failJob` must abort the whole job
    /// quickly (non-zero exit, the rank's error on stderr) instead of leaving rank 0 hanging.
    func testFaultOnOneRankAbortsTheJob() throws {
        let result = try MPIRun.check(ranks: 2, ["fault"], timeoutSeconds: 10)
        XCTAssertFalse(result.timedOut, "the job hung instead of aborting: \(result.stderr)")
        XCTAssertNotEqual(result.status, 0)
        XCTAssertLessThan(result.seconds, 10)
        XCTAssertTrue(result.stderr.contains("[rank 1/2] error: fault: injected fault on rank 1"), result.stderr)
        XCTAssertFalse(result.stdout.contains("OK fault"), result.stdout)
    }

    /// In a world of size 1, `failJob` prints the rank prefix and exits with status 1.
    func testFailJobWithoutLauncherExitsOne() throws {
        let result = try ProcessRunner.run([try MPIRun.checkProgram(), "fault"], timeoutSeconds: 30)
        XCTAssertEqual(result.status, 1)
        XCTAssertTrue(result.stderr.contains("[rank 0/1] error: fault: fault needs at least 2 ranks, got 1"),
                      result.stderr)
    }

    func testUnknownScenarioFailsTheJob() throws {
        let result = try MPIRun.check(ranks: 2, ["no-such-scenario"], timeoutSeconds: 30)
        XCTAssertNotEqual(result.status, 0)
        XCTAssertTrue(result.stderr.contains("error: unknown scenario 'no-such-scenario'"), result.stderr)
    }

    /// The harness itself: a job that never finishes is killed at the deadline, ranks included.
    func testHangingJobIsKilledAtTheDeadline() throws {
        let result = try MPIRun.check(ranks: 2, ["hang"], timeoutSeconds: 3)
        XCTAssertTrue(result.timedOut)
        XCTAssertLessThan(result.seconds, 3 + 3 + 2)
        let pids = result.stdout.split(separator: "\n").compactMap { line -> pid_t? in
            let words = line.split(separator: " ")
            return words.first == "PID" && words.count > 1 ? pid_t(words[1]) : nil
        }
        XCTAssertEqual(pids.count, 2, result.stdout)
        for pid in pids {
            XCTAssertTrue(kill(pid, 0) != 0 && errno == ESRCH || isZombie(pid), "rank process \(pid) survived")
        }
    }

    private func assertScenariosPass(ranks: Int, file: StaticString = #filePath, line: UInt = #line) throws {
        let result = try MPIRun.check(ranks: ranks, ["all"], timeoutSeconds: 60)
        XCTAssertFalse(result.timedOut, "mpirun -np \(ranks) timed out", file: file, line: line)
        XCTAssertEqual(result.status, 0, "mpirun -np \(ranks) failed:\n\(result.stderr)", file: file, line: line)
        for scenario in Self.scenarios {
            for rank in 0..<ranks {
                XCTAssertTrue(result.stdout.contains("OK \(scenario) rank \(rank)/\(ranks)\n"),
                              "missing OK \(scenario) on rank \(rank)/\(ranks):\n\(result.stdout)\n\(result.stderr)",
                              file: file, line: line)
            }
        }
    }

    private func isZombie(_ pid: pid_t) -> Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return false }
        return stat[stat.index(after: close)...].split(separator: " ").first == "Z"
    }
}
