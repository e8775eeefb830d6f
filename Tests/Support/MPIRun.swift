import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Builds `mpirun` command lines the way this machine needs them: `--allow-run-as-root` when
/// running as root, `--oversubscribe` when there are more ranks than cores, one BLAS thread per
/// rank (`OPENBLAS_NUM_THREADS=1`, exported to every rank).
public enum MPIRun {
    /// `mpirun -np N [--allow-run-as-root] [--oversubscribe] -x VAR… program…`, exporting
    /// `OPENBLAS_NUM_THREADS` and each of `exported` to every rank.
    public static func arguments(ranks: Int, _ program: [String], exported: [String] = []) -> [String] {
        var arguments = ["mpirun", "-np", String(ranks)]
        if getuid() == 0 { arguments.append("--allow-run-as-root") }
        if ranks > ProcessInfo.processInfo.activeProcessorCount { arguments.append("--oversubscribe") }
        let variables = Set(exported + ["OPENBLAS_NUM_THREADS"]).sorted()
        return arguments + variables.flatMap { ["-x", $0] } + program
    }

    /// Runs `program` on `ranks` ranks with `environment` exported to every rank, and a
    /// deadline (a hang fails the test, never blocks it).
    public static func run(ranks: Int, _ program: [String], environment: [String: String] = [:],
                           timeoutSeconds: Double = 120) throws -> ProcessResult {
        try ProcessRunner.run(arguments(ranks: ranks, program, exported: Array(environment.keys)),
                              environment: environment.merging(["OPENBLAS_NUM_THREADS": "1"]) { a, _ in a },
                              timeoutSeconds: timeoutSeconds)
    }

    /// The `ec-mpi-check` test program: `$EC_MPI_CHECK`, beside the test bundle, or in
    /// `.build/debug` (built by `swift build` before `swift test`).
    public static func checkProgram() throws -> String {
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

    /// `ec-mpi-check <scenarios>` on `ranks` ranks.
    public static func check(ranks: Int, _ scenarios: [String], environment: [String: String] = [:],
                             timeoutSeconds: Double = 60) throws -> ProcessResult {
        try run(ranks: ranks, [try checkProgram()] + scenarios, environment: environment, timeoutSeconds: timeoutSeconds)
    }
}
