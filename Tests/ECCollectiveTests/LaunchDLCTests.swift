import ECTestSupport
import Foundation
import XCTest

/// `launch/dlc` as a user meets it first (issue #13, item 9): `--help` is not an error, and a
/// single-node job needs nothing but `MASTER_ADDR` (what a DLC-style platform sets for one
/// node: `MASTER_ADDR=127.0.0.1`). The multi-node behaviour is in `MultiHostTests`.
final class LaunchDLCTests: XCTestCase {
    private var script: String { TestPaths.repository.appendingPathComponent("launch/dlc").path }

    /// Every platform variable empty (unset, for the script), then `variables`.
    private func launch(_ arguments: [String], _ variables: [String: String]) throws -> ProcessResult {
        let platform = ["RANK", "MASTER_ADDR", "MASTER_PORT", "WORLD_SIZE", "NPROC_PER_NODE", "JOB_NAME", "EC_HOSTS",
                        "EC_HOSTFILE", "EC_WORKER_PATTERN", "LAUNCH_DRY_RUN", "OPENBLAS_NUM_THREADS"]
        let environment = Dictionary(uniqueKeysWithValues: platform.map { ($0, "") }).merging(variables) { $1 }
        return try ProcessRunner.run([script] + arguments, environment: environment, timeoutSeconds: 60)
    }

    func testHelpIsNotAnError() throws {
        for flag in ["--help", "-h"] {
            let result = try launch([flag], [:])
            XCTAssertEqual(result.status, 0, result.stderr)
            XCTAssertTrue(result.stdout.hasPrefix("usage: launch/dlc <config.yaml|.yml|.json>"), result.stdout)
        }
        let bad = try launch(["--frob"], [:])
        XCTAssertEqual(bad.status, 2)
        XCTAssertTrue(bad.stderr.contains("unknown option '--frob'") && bad.stderr.contains("usage: launch/dlc"), bad.stderr)
    }

    func testASingleNodeNeedsOnlyMasterAddr() throws {
        if FileManager.default.fileExists(atPath: "/etc/mpi/hostfile") { throw XCTSkip("/etc/mpi/hostfile would be the host list") }
        let dry = try launch(["prog"], ["MASTER_ADDR": "127.0.0.1", "LAUNCH_DRY_RUN": "1"])
        XCTAssertEqual(dry.status, 0, dry.stderr)
        XCTAssertTrue(dry.stdout.hasPrefix("# node 0: 1 node, 1 rank(s), hosts from MASTER_ADDR\n127.0.0.1 slots=1\nmpirun -np 1 "),
                      dry.stdout)

        let one = try launch(["--", try MPIRun.checkProgram(), "world"], ["MASTER_ADDR": "127.0.0.1"])
        XCTAssertEqual(one.status, 0, one.stderr)
        XCTAssertTrue(one.stdout.contains("OK world rank 0/1\n"), one.stdout)
        let two = try launch(["--", try MPIRun.checkProgram(), "world"], ["MASTER_ADDR": "127.0.0.1", "NPROC_PER_NODE": "2"])
        XCTAssertEqual(two.status, 0, two.stderr)
        XCTAssertTrue(two.stdout.contains("OK world rank 1/2\n"), two.stdout)
        XCTAssertTrue(two.stderr.contains("launch/dlc: a single node, 2 rank(s)"), two.stderr)

        // Several nodes still need RANK and MASTER_PORT.
        let many = try launch(["prog"], ["MASTER_ADDR": "m", "WORLD_SIZE": "2", "LAUNCH_DRY_RUN": "1"])
        XCTAssertEqual(many.status, 2)
        XCTAssertTrue(many.stderr.contains("RANK is not set"), many.stderr)
        let port = try launch(["prog"], ["RANK": "0", "MASTER_ADDR": "m", "WORLD_SIZE": "2", "JOB_NAME": "j", "LAUNCH_DRY_RUN": "1"])
        XCTAssertEqual(port.status, 2)
        XCTAssertTrue(port.stderr.contains("MASTER_PORT is not set (node 0's port for the job-state service of a 2-node job)"),
                      port.stderr)
    }
}
