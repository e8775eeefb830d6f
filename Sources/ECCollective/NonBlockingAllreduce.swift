import Foundation

/// In-place sums over ranks that are started now and finished later, so that the network
/// works while the caller computes — the gradient buckets a training step starts during its
/// backward pass, as Horovod and PyTorch DDP do (`DistributedOptimizer`, docs/distributed.md,
/// "Gradients overlapped with backward").
///
/// Get one from `Communicator.makeNonBlockingAllreduce()` (collective: every rank at the same
/// point), then per step: `start` each buffer as soon as it is final, in the same order on every
/// rank, and `waitAll` before reading any of them. A buffer must not be touched between its
/// `start` and the `waitAll` that follows.
///
/// Sums are taken in rank order, `((x₀ + x₁) + x₂) + …`, exactly as `Communicator.allreduce`
/// with `.sum` takes them: a buffer summed here has the bits the blocking call gives it, however
/// the buffers are cut. `start` may be called from any thread, but the calls must come in one
/// order that is the same on every rank (the caller serialises them).
public protocol NonBlockingAllreduce: AnyObject {
    /// Starts summing `buffer` in place over all ranks (an empty buffer is no sum).
    func start(_ buffer: UnsafeMutableBufferPointer<Float>) throws
    /// Returns once every sum started so far has finished; the buffers then hold the sums.
    func waitAll() throws
    /// Counters for benchmarks, accumulated until `resetMetrics()`.
    var metrics: NonBlockingAllreduceMetrics { get }
    func resetMetrics()
    /// Ends the stream (stops a helper thread; later `start`s throw). Call it after the last
    /// `waitAll`; `MPICommunicator.finalize()` closes every stream still open.
    func close()
}

/// What a `NonBlockingAllreduce` did, for benchmarks (docs/benchmarks.md, docs/scaling.md).
public struct NonBlockingAllreduceMetrics: Equatable, Sendable {
    /// Buffers started and their bytes.
    public var sums = 0
    public var bytes = 0
    /// Calls of `waitAll`.
    public var waits = 0
    /// Seconds spent inside `waitAll`: the communication the caller did not hide.
    public var waitSeconds = 0.0
    /// Seconds from a `start` on an idle stream to the completion of its last sum (as seen by
    /// the polls): how long the network was busy, hidden or not.
    public var busySeconds = 0.0

    public init() {}
}

extension Communicator {
    /// The sums run at once, inside `start`, with the blocking `allreduce`: what a world that
    /// has no non-blocking collectives (a world of one, the test doubles) provides.
    public func makeNonBlockingAllreduce() throws -> any NonBlockingAllreduce { ImmediateAllreduce(self) }
}

/// A `NonBlockingAllreduce` whose `start` is the blocking `allreduce` (`.sum`).
public final class ImmediateAllreduce: NonBlockingAllreduce {
    public let communicator: Communicator
    public private(set) var metrics = NonBlockingAllreduceMetrics()
    private let lock = NSLock()

    public init(_ communicator: Communicator) { self.communicator = communicator }

    public func start(_ buffer: UnsafeMutableBufferPointer<Float>) throws {
        guard buffer.count > 0 else { return }
        let began = DispatchTime.now()
        try communicator.allreduce(buffer, op: .sum)
        lock.withLock {
            metrics.sums += 1
            metrics.bytes += buffer.count * MemoryLayout<Float>.stride
            metrics.busySeconds += seconds(since: began)
        }
    }

    public func waitAll() throws { lock.withLock { metrics.waits += 1 } }

    public func resetMetrics() { lock.withLock { metrics = NonBlockingAllreduceMetrics() } }

    public func close() {}
}

/// Seconds elapsed since `start` (monotonic clock).
func seconds(since start: DispatchTime) -> Double {
    Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
}
