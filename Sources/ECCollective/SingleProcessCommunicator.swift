import Foundation

/// The world of a process started without a launcher: size 1, rank 0, the chief.
///
/// Every collective is the identity (a sum, average, max or min over one rank is the value
/// itself; a broadcast or gather from rank 0 to rank 0 keeps it), so training code runs
/// unchanged in single-node debug mode (mlx's `EmptyGroup`, llm.c's
/// `if (num_processes == 1) return`). Roots other than 0 are rejected as on any world.
public final class SingleProcessCommunicator: Communicator {
    public let rank = 0
    public let size = 1

    public init() {}

    public func allreduce(_ buffer: UnsafeMutableBufferPointer<Float>, op: ReduceOp) throws {}
    public func allreduce(_ buffer: UnsafeMutableBufferPointer<Double>, op: ReduceOp) throws {}

    public func reduce(_ buffer: UnsafeMutableBufferPointer<Float>, toRoot root: Int) throws {
        try validate(root: root)
    }

    public func reduce(_ buffer: UnsafeMutableBufferPointer<Double>, toRoot root: Int) throws {
        try validate(root: root)
    }

    public func broadcast(_ buffer: UnsafeMutableRawBufferPointer, root: Int) throws {
        try validate(root: root)
    }

    public func gather(_ blob: [UInt8], toRoot root: Int) throws -> [[UInt8]] {
        try validate(root: root)
        return [blob]
    }

    public func barrier() throws {}

    /// Exits the process with status `code` (stdout and stderr are flushed first).
    public func abort(code: Int32) -> Never {
        fflush(stdout)
        fflush(stderr)
        exit(code)
    }
}
