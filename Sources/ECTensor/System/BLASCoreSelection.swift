import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Makes OpenBLAS use the kernels this CPU deserves.
///
/// OpenBLAS (a `DYNAMIC_ARCH` build, as Debian ships) picks its kernels ("core") when the
/// library loads, from a table of the CPUs it knows. Debian's 0.3.21 predates newer Xeons
/// (family 6 model 207): it falls back to its generic `Prescott` kernels — SSE3, a third of the
/// speed. The only way to choose another core is `OPENBLAS_CORETYPE` in the environment
/// *before the library loads*, so `ensureSuitableCore()` — called first thing by the programs,
/// before MPI starts — compares the core the library chose with the CPU's flags and, when it
/// chose a generic core (one without AVX2 kernels) on an AVX2 or AVX-512 CPU, re-executes the
/// process (same executable, same arguments, same environment plus `OPENBLAS_CORETYPE`). Under
/// `mpirun` every rank is its own process and does this for itself before `MPI_Init`; `exec`
/// keeps the process id and the `OMPI_*`/PMIx variables, so the rank joins its job as usual.
///
/// Left alone: a core the library knows for this CPU (`Zen`, `Haswell`, `SkylakeX`, …),
/// `OPENBLAS_CORETYPE` set by the user (an explicit choice, even a generic one), and
/// `EC_BLAS_CORE_AUTO=0` (no check at all). `EC_TEST_FAKE_BLAS_CORE=<core>` makes the check
/// believe the library chose `<core>` (tests: a generic core on any machine).
public enum BLASCoreSelection {
    /// OpenBLAS's x86-64 cores without AVX2 kernels (lower-cased), from its `dynamic.c` table.
    public static let genericCores: Set<String> = [
        "unknown", "katmai", "coppermine", "northwood", "prescott", "banias", "atom", "core2", "penryn", "dunnington",
        "nehalem", "athlon", "opteron", "opteron_sse3", "barcelona", "nano", "sandybridge", "bobcat", "bulldozer",
        "piledriver", "steamroller",
    ]

    /// The environment variable the re-executed process carries: `<library's core>><chosen core>`.
    public static let markerVariable = "EC_BLAS_CORE_SELECTED"
    public static let fakeVariable = "EC_TEST_FAKE_BLAS_CORE"
    public static let switchVariable = "EC_BLAS_CORE_AUTO"

    /// The core for this CPU's instruction sets: `SkylakeX` with AVX-512, `Haswell` with AVX2 +
    /// FMA, nil below (the library's choice is then as good as any).
    public static func recommendedCore(for cpu: CPUInfo) -> String? {
        cpu.hasAVX512 ? "SkylakeX" : cpu.hasAVX2 ? "Haswell" : nil
    }

    /// What to do about the core the library chose.
    public enum Decision: Equatable, Sendable {
        /// Nothing; `note` says why when it is worth a line in the log (a user's generic choice).
        case keep(note: String?)
        /// Re-execute with `OPENBLAS_CORETYPE=core`.
        case select(core: String, replacing: String)
    }

    /// The decision for a library that chose `libraryCore` on `cpu`, given the environment.
    public static func decide(libraryCore: String, cpu: CPUInfo, environment: [String: String]) -> Decision {
        if environment[switchVariable] == "0" || environment[markerVariable] != nil { return .keep(note: nil) }
        let level = cpu.hasAVX512 ? "AVX-512" : "AVX2"
        if let chosen = environment["OPENBLAS_CORETYPE"], !chosen.isEmpty {
            // The user's choice stands; a generic one is worth a line.
            guard genericCores.contains(chosen.lowercased()), let better = recommendedCore(for: cpu) else { return .keep(note: nil) }
            return .keep(note: "BLAS: OPENBLAS_CORETYPE=\(chosen) (set in the environment) keeps OpenBLAS's generic "
                         + "kernels on this \(level) CPU; \(better) would be faster")
        }
        let reported = environment[fakeVariable].flatMap { $0.isEmpty ? nil : $0 } ?? libraryCore
        guard genericCores.contains(reported.lowercased()), let better = recommendedCore(for: cpu) else { return .keep(note: nil) }
        return .select(core: better, replacing: reported)
    }

    /// What the check did, for the chief to log once (nil when there is nothing to say).
    public nonisolated(unsafe) private(set) static var note: String?

    /// Checks the core and, when the library chose a generic one on an AVX2/AVX-512 CPU,
    /// re-executes this process with the right `OPENBLAS_CORETYPE` (does not return then). Call
    /// it before anything else, MPI above all. In the re-executed process it only records the
    /// `note` (and whether the library took the choice).
    public static func ensureSuitableCore() {
        let environment = ProcessInfo.processInfo.environment
        if let marker = environment[markerVariable] {
            let parts = marker.split(separator: ">", maxSplits: 1).map(String.init)
            let chosen = parts.count == 2 ? parts[1] : marker
            let now = BLAS.coreName
            note = "BLAS: OpenBLAS chose its generic \(parts.first ?? "?") kernels for this CPU (\(CPUInfo.current.modelName)); "
                + (now.lowercased() == chosen.lowercased()
                    ? "restarted with OPENBLAS_CORETYPE=\(chosen): using \(now)"
                    : "restarted with OPENBLAS_CORETYPE=\(chosen), but the library still uses \(now) (not a DYNAMIC_ARCH build?)")
            return
        }
        switch decide(libraryCore: BLAS.coreName, cpu: CPUInfo.current, environment: environment) {
        case let .keep(message):
            note = message
        case let .select(core, replacing):
            #if os(Linux)
            setenv("OPENBLAS_CORETYPE", core, 1)
            setenv(markerVariable, "\(replacing)>\(core)", 1)
            execv("/proc/self/exe", CommandLine.unsafeArgv)
            // Only reached when exec failed: carry on with the generic kernels, and say so.
            let failure = String(cString: strerror(errno))
            unsetenv("OPENBLAS_CORETYPE")
            unsetenv(markerVariable)
            note = "BLAS: OpenBLAS uses its generic \(replacing) kernels on this CPU and restarting with "
                + "OPENBLAS_CORETYPE=\(core) failed (\(failure)); set OPENBLAS_CORETYPE=\(core) yourself for full speed"
            #else
            note = "BLAS: OpenBLAS uses its generic \(replacing) kernels on this CPU; set OPENBLAS_CORETYPE=\(core) for full speed"
            #endif
        }
    }
}
