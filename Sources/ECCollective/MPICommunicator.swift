import CMPI
import Foundation

/// The world of an MPI job (`MPI_COMM_WORLD`), one instance per process in practice.
///
/// `init` starts MPI once per process (`MPI_Init_thread`, level `MPI_THREAD_SERIALIZED`: any
/// thread may call a collective, one at a time) and sets `MPI_ERRORS_RETURN` on the
/// communicator, so every MPI failure comes back as a `CollectiveError.mpi` instead of killing
/// the process. Buffers longer than `maxCountPerCall` elements (`Int32.max`, MPI's `int`
/// count) are sent in several calls.
///
/// Life cycle: the `easycompress` CLI creates the world with `World.current()`, trains, and
/// calls `finalize()` once before exiting normally; on a fatal error it calls
/// `failJob(_:comm:)`, which aborts every rank instead. A process that never calls `finalize()`
/// makes `mpirun` report an abnormal exit.
public final class MPICommunicator: Communicator {
    public let rank: Int
    public let size: Int

    /// The largest element count handed to one MPI call; longer buffers are split. Defaults to
    /// `Int32.max`; tests lower it to exercise the chunked path on small buffers.
    public var maxCountPerCall = Int(Int32.max) {
        didSet { precondition(maxCountPerCall > 0, "maxCountPerCall must be > 0, got \(maxCountPerCall)") }
    }

    let comm: MPI_Comm

    /// Joins the MPI world, initializing MPI if this process has not yet done so.
    ///
    /// - Throws: `CollectiveError.finalized` after `finalize()`,
    ///   `CollectiveError.insufficientThreadSupport`, or `CollectiveError.mpi`.
    public init() throws {
        try MPIRuntime.shared.initializeIfNeeded()
        let world: MPI_Comm = cmpi_comm_world()
        try mpiCall("MPI_Comm_set_errhandler") { MPI_Comm_set_errhandler(world, cmpi_errors_return()) }
        var rank: Int32 = 0
        var size: Int32 = 0
        try mpiCall("MPI_Comm_rank") { MPI_Comm_rank(world, &rank) }
        try mpiCall("MPI_Comm_size") { MPI_Comm_size(world, &size) }
        self.comm = world
        self.rank = Int(rank)
        self.size = Int(size)
    }

    /// Shuts MPI down for this process (`MPI_Finalize`, collective: every rank calls it).
    ///
    /// Call it once, after the last collective; the CLI does so at the end of every command.
    /// Repeated calls are no-ops; any collective afterwards throws `CollectiveError.finalized`.
    public func finalize() throws {
        try MPIRuntime.shared.finalize()
    }

    public func barrier() throws {
        try ensureActive("barrier")
        try mpiCall("MPI_Barrier") { MPI_Barrier(comm) }
    }

    /// Aborts every rank of the job (`MPI_Abort`); `mpirun` exits non-zero. Falls back to
    /// `exit(code)` when MPI is no longer running.
    public func abort(code: Int32) -> Never {
        fflush(stdout)
        fflush(stderr)
        if !MPIRuntime.shared.isFinalized {
            _ = MPI_Abort(comm, code)
        }
        exit(code)
    }

    /// Throws `CollectiveError.finalized` once MPI is shut down (calling MPI then is fatal).
    func ensureActive(_ operation: String) throws {
        if MPIRuntime.shared.isFinalized { throw CollectiveError.finalized(operation: operation) }
    }

    /// Calls `body(offset, count)` for consecutive chunks of `0..<count` of at most
    /// `maxCountPerCall` elements (no call for an empty range).
    func forEachChunk(of count: Int, _ body: (_ offset: Int, _ count: Int32) throws -> Void) rethrows {
        var offset = 0
        while offset < count {
            let n = Swift.min(count - offset, maxCountPerCall)
            try body(offset, Int32(n))
            offset += n
        }
    }
}
