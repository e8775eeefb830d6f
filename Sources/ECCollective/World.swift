import Foundation

/// Picks the process's world: MPI when started by a launcher, a world of size 1 otherwise.
///
/// ```swift
/// let comm = try World.current()      // MPICommunicator under mpirun, else single-process
/// defer { try? (comm as? MPICommunicator)?.finalize() }
/// ```
public enum World {
    /// Environment variables that an MPI launcher sets in every rank it starts: Open MPI's
    /// `mpirun` (`OMPI_COMM_WORLD_*`), PMIx-based launchers such as `srun --mpi=pmix` or
    /// `prterun` (`PMIX_RANK`), and Hydra / PMI-1/2 (`PMI_RANK`, `PMI_SIZE`).
    public static let launcherVariables = [
        "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK", "PMI_SIZE",
    ]

    /// Whether `environment` shows that this process was started by an MPI launcher.
    public static func isLaunchedByMPI(environment: [String: String] = ProcessInfo.processInfo.environment) -> Bool {
        launcherVariables.contains { environment[$0] != nil }
    }

    /// The world of this process: an `MPICommunicator` when it was started by an MPI launcher
    /// (see `launcherVariables`), else a `SingleProcessCommunicator` — the single-node debug
    /// mode (docs/distributed.md), where the same binary run without `mpirun` is a world of size 1.
    ///
    /// - Throws: `CollectiveError` if MPI fails to start.
    public static func current(environment: [String: String] = ProcessInfo.processInfo.environment) throws
        -> any Communicator
    {
        if isLaunchedByMPI(environment: environment) { return try MPICommunicator() }
        return SingleProcessCommunicator()
    }
}
