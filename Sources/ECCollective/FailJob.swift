import Foundation

/// Reports a fatal error of this rank and stops the whole job.
///
/// Prints `[rank r/N] error: <description>` to stderr, then calls `comm.abort(code: 1)`:
/// `MPI_Abort` on a multi-rank world, so the other ranks are killed instead of hanging in
/// their next collective, or `exit(1)` on a world of size 1. The description is the error's
/// `LocalizedError.errorDescription` if it has one, else `String(describing:)` (which uses
/// `CustomStringConvertible`, as `CollectiveError` and the other module errors do).
///
/// Only the CLI and test programs call this; library code throws.
public func failJob(_ error: Error, comm: Communicator) -> Never {
    let description = (error as? LocalizedError)?.errorDescription ?? String(describing: error)
    fputs("[rank \(comm.rank)/\(comm.size)] error: \(description)\n", stderr)
    fflush(stderr)
    comm.abort(code: 1)
}
