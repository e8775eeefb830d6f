/// Failures of a collective operation (tier 2: environment errors, each carrying the offending
/// value, what was expected and a hint).
///
/// MPI return codes reach this type through one funnel, `mpiCall`, because every
/// `MPICommunicator` sets `MPI_ERRORS_RETURN` on its communicator.
public enum CollectiveError: Error, Equatable, CustomStringConvertible {
    /// An MPI call returned `code`; `message` is `MPI_Error_string`'s text for it.
    case mpi(call: String, code: Int32, message: String)
    /// A root rank outside `0..<size`.
    case invalidRoot(root: Int, size: Int)
    /// The MPI library cannot give the thread support we need (`MPI_THREAD_SERIALIZED`).
    case insufficientThreadSupport(required: Int32, provided: Int32)
    /// An operation was attempted after `MPICommunicator.finalize()` (MPI cannot restart).
    case finalized(operation: String)
    /// A rank received a length it cannot represent (e.g. a broadcast header > `Int.max`).
    case invalidLength(what: String, length: UInt64)

    public var description: String {
        switch self {
        case let .mpi(call, code, message):
            return "\(call) failed with MPI error \(code): \(message)"
        case let .invalidRoot(root, size):
            return "root rank must be in 0..<\(size), got \(root)"
        case let .insufficientThreadSupport(required, provided):
            return "MPI provides thread level \(provided), need at least \(required) (MPI_THREAD_SERIALIZED); "
                + "hint: use an Open MPI build with thread support"
        case let .finalized(operation):
            return "\(operation) called after MPI was finalized; hint: call finalize() once, after the last collective"
        case let .invalidLength(what, length):
            return "\(what): received length \(length), which does not fit in memory on this rank"
        }
    }
}
