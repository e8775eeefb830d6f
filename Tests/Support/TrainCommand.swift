import Foundation

/// Runs `easycompress train --config <job> [args]` from the build folder: as one process
/// (one BLAS thread), or under `mpirun` on `ranks` ranks — with a deadline either way.
public enum TrainCommand {
    public static func run(_ config: String, ranks: Int = 1, args: [String] = [], environment: [String: String] = [:],
                           timeoutSeconds: Double = 180) throws -> ProcessResult {
        let program = [try TestPaths.executable("easycompress"), "train", "--config", config] + args
        if ranks > 1 { return try MPIRun.run(ranks: ranks, program, environment: environment, timeoutSeconds: timeoutSeconds) }
        return try ProcessRunner.run(program, environment: environment.merging(["OPENBLAS_NUM_THREADS": "1"]) { a, _ in a },
                                     timeoutSeconds: timeoutSeconds)
    }
}
