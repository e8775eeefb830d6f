import ECTestSupport
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Finds the `ec-mpi-check` test program and runs it under `mpirun`.
enum MPICheck {
    /// The package root (for `launch/run` and the `.build` fallback).
    static let packageRoot = URL(fileURLWithPath: "\(#filePath)").deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()

    /// Where `swift build --product ec-mpi-check` puts the program: beside the test bundle, or
    /// `.build/debug` of this package. `EC_MPI_CHECK` overrides both.
    static func programPath() throws -> String {
        var candidates = [String]()
        if let override = ProcessInfo.processInfo.environment["EC_MPI_CHECK"] { candidates.append(override) }
        if let bundleDirectory = Bundle.main.executableURL?.deletingLastPathComponent() {
            candidates.append(bundleDirectory.appendingPathComponent("ec-mpi-check").path)
        }
        candidates.append(packageRoot.appendingPathComponent(".build/debug/ec-mpi-check").path)
        if let found = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) { return found }
        throw HarnessError(description: "ec-mpi-check not found (looked at \(candidates)); "
                           + "run `swift build --product ec-mpi-check` before `swift test`")
    }

    /// `mpirun -np <ranks> … ec-mpi-check <scenarios>` with one BLAS thread per rank, killed
    /// after `timeoutSeconds`.
    static func run(ranks: Int, _ scenarios: [String], timeoutSeconds: Double = 60) throws -> ProcessResult {
        try MPIRun.run(ranks: ranks, [try programPath()] + scenarios, timeoutSeconds: timeoutSeconds)
    }

}
