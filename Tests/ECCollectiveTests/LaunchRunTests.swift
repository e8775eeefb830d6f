import ECTestSupport
import Foundation
import XCTest

/// `launch/run`: argument checking, the flags it adds, and a real 2-rank run.
final class LaunchRunTests: XCTestCase {
    private var script: String { TestPaths.repository.appendingPathComponent("launch/run").path }

    private func launch(_ arguments: [String], environment: [String: String] = [:]) throws -> ProcessResult {
        try ProcessRunner.run([script] + arguments, environment: environment, timeoutSeconds: 60)
    }

    func testBadArgumentsAreUsageErrors() throws {
        let cases: [([String], String)] = [
            ([], "missing -n N"), (["-n", "0", "prog"], "positive integer, got '0'"),
            (["-n", "two", "prog"], "positive integer, got 'two'"), (["-n", "2"], "missing the program"),
            (["-n", "2", "-x", "p"], "unknown option '-x'"),
            (["-n", "2", "no-such-config.yaml"], "config file not found"),
        ]
        for (arguments, message) in cases {
            let result = try launch(arguments)
            XCTAssertEqual(result.status, 2, "\(arguments)")
            XCTAssertTrue(result.stderr.contains(message), "\(arguments): \(result.stderr)")
            XCTAssertTrue(result.stderr.contains("usage: launch/run -n N"), "\(arguments): \(result.stderr)")
        }
    }

    func testAddsRootOversubscribeThreadsAndPassThroughArguments() throws {
        let cores = ProcessInfo.processInfo.activeProcessorCount
        let ranks = cores + 1
        let result = try launch(["-n", "\(ranks)", "--", "prog", "--flag"],
                                environment: ["LAUNCH_DRY_RUN": "1", "OPENBLAS_NUM_THREADS": "",
                                              "MPIRUN_ARGS": "--mca btl self,vader"])
        XCTAssertEqual(result.status, 0, result.stderr)
        var expected = "OPENBLAS_NUM_THREADS=1 mpirun -np \(ranks)"
        if getuid() == 0 { expected += " --allow-run-as-root" }
        expected += " --oversubscribe -x OPENBLAS_NUM_THREADS -x OPENBLAS_THREAD_TIMEOUT --mca btl self,vader prog --flag\n"
        XCTAssertEqual(result.stdout, expected)

        let one = try launch(["-n", "1", "prog"], environment: ["LAUNCH_DRY_RUN": "1", "OPENBLAS_NUM_THREADS": ""])
        XCTAssertTrue(one.stdout.hasPrefix("OPENBLAS_NUM_THREADS=\(cores) mpirun -np 1"), one.stdout)
        XCTAssertFalse(one.stdout.contains("--oversubscribe"), one.stdout)
    }

    /// A lone .yaml/.yml/.json argument runs the CLI's `train` on it.
    func testConfigFileRunsEasycompressTrain() throws {
        let config = FileManager.default.temporaryDirectory
            .appendingPathComponent("launch-run-\(UUID().uuidString).yaml")
        try "model: mlp\n".write(to: config, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: config) }
        let result = try launch(["-n", "2", config.path], environment: ["LAUNCH_DRY_RUN": "1"])
        XCTAssertEqual(result.status, 0, result.stderr)
        let binary = TestPaths.repository.appendingPathComponent(".build/release/easycompress").path
        XCTAssertTrue(result.stdout.hasSuffix(" -x OPENBLAS_NUM_THREADS -x OPENBLAS_THREAD_TIMEOUT \(binary) train --config \(config.path)\n"),
                      result.stdout)
    }

    func testRunsAProgramOnTwoRanks() throws {
        let result = try launch(["-n", "2", try MPIRun.checkProgram(), "world"])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertTrue(result.stdout.contains("OK world rank 0/2\n"), result.stdout)
        XCTAssertTrue(result.stdout.contains("OK world rank 1/2\n"), result.stdout)
    }
}
