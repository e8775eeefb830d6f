/// The reduction applied element-wise by `allreduce`.
public enum ReduceOp: String, Sendable, CaseIterable {
    /// Σ over ranks.
    case sum
    /// (Σ over ranks) / size — the data-parallel gradient average.
    case average
    /// Element-wise maximum over ranks.
    case max
    /// Element-wise minimum over ranks.
    case min
}

/// A group of processes (ranks `0..<size`) that run the same program and exchange data.
///
/// Rank 0 is the *chief* (docs/distributed.md): it alone computes compression decisions and broadcasts
/// them. Training code talks to a `Communicator` only, and a world of size 1
/// (`SingleProcessCommunicator`) makes every collective an identity, so there are no
/// `if distributed` branches anywhere. Get the process's world from `World.current()`.
///
/// Every operation is *collective*: all ranks must call it, in the same order, with
/// matching arguments (the same element count for buffers, the same root). Buffers are
/// reduced in place.
///
/// Sums (`allreduce` with `.sum`/`.average`, `reduce`) are taken in rank order,
/// `((x₀ + x₁) + x₂) + …`, and every rank gets the same bits: on two ranks any MPI sum is that
/// (float addition commutes), on three or more `MPICommunicator` adds the ranks' values itself
/// in that order instead of leaving the association to MPI's algorithm of the moment (which
/// changes with the message size and the transport). So N ranks sum exactly as N thread
/// replicas summed in replica order do, and the same job gives the same bits on any network. Failures throw `CollectiveError`; a rank that cannot continue should call
/// `failJob(_:comm:)` so that the whole job stops instead of the other ranks hanging.
public protocol Communicator: AnyObject {
    /// This process's rank, in `0..<size`.
    var rank: Int { get }
    /// The number of ranks in the world.
    var size: Int { get }

    /// Reduces `buffer` element-wise over all ranks with `op`; every rank gets the result.
    func allreduce(_ buffer: UnsafeMutableBufferPointer<Float>, op: ReduceOp) throws
    /// Reduces `buffer` element-wise over all ranks with `op`; every rank gets the result.
    func allreduce(_ buffer: UnsafeMutableBufferPointer<Double>, op: ReduceOp) throws

    /// Sums `buffer` element-wise over all ranks into `root`'s buffer; other ranks' buffers are
    /// left unchanged. Used to accumulate per-rank statistics on the chief.
    func reduce(_ buffer: UnsafeMutableBufferPointer<Float>, toRoot root: Int) throws
    /// Sums `buffer` element-wise over all ranks into `root`'s buffer (others unchanged).
    func reduce(_ buffer: UnsafeMutableBufferPointer<Double>, toRoot root: Int) throws

    /// Copies `root`'s bytes into every rank's `buffer`; all ranks pass the same byte count.
    /// The typed and variable-length forms (`[UInt8]`, `Data`, `[Float]`, Float buffers,
    /// `Tensor`) are built on this one.
    func broadcast(_ buffer: UnsafeMutableRawBufferPointer, root: Int) throws

    /// Collects one byte blob per rank (lengths may differ) on `root`.
    ///
    /// - Returns: on `root`, `size` blobs in rank order; on the other ranks, `[]`.
    func gather(_ blob: [UInt8], toRoot root: Int) throws -> [[UInt8]]

    /// Returns once every rank has entered the barrier.
    func barrier() throws

    /// Sums that run while the caller computes (`NonBlockingAllreduce`); collective: every rank
    /// calls it at the same point. The default runs each sum at once with `allreduce`.
    func makeNonBlockingAllreduce() throws -> any NonBlockingAllreduce

    /// Stops the whole job with exit status `code` (MPI_Abort on every rank). Never returns.
    func abort(code: Int32) -> Never
}

extension Communicator {
    /// Whether this rank is the chief (rank 0), the one that decides and writes.
    public var isChief: Bool { rank == 0 }

    /// Throws `CollectiveError.invalidRoot` unless `root` is in `0..<size`.
    func validate(root: Int) throws {
        guard (0..<size).contains(root) else { throw CollectiveError.invalidRoot(root: root, size: size) }
    }
}
