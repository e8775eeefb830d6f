import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Builds `mpirun` command lines the way this machine needs them: `--allow-run-as-root` when
/// running as root, `--oversubscribe` when there are more ranks than cores, one BLAS thread per
/// rank (`OPENBLAS_NUM_THREADS=1`, exported to every rank).
public enum MPIRun {
    public static func arguments(ranks: Int, _ program: [String]) -> [String] {
        var arguments = ["mpirun", "-np", String(ranks)]
        if getuid() == 0 { arguments.append("--allow-run-as-root") }
        if ranks > ProcessInfo.processInfo.activeProcessorCount { arguments.append("--oversubscribe") }
        return arguments + ["-x", "OPENBLAS_NUM_THREADS"] + program
    }

    /// Runs `program` on `ranks` ranks with a deadline (a hang fails the test, never blocks it).
    public static func run(ranks: Int, _ program: [String], environment: [String: String] = [:],
                           timeoutSeconds: Double = 120) throws -> ProcessResult {
        try ProcessRunner.run(arguments(ranks: ranks, program),
                              environment: environment.merging(["OPENBLAS_NUM_THREADS": "1"]) { a, _ in a },
                              timeoutSeconds: timeoutSeconds)
    }
}
