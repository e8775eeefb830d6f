import ECTensor

/// Fused allreduce of many small tensors (horovod's tensor fusion, PyTorch DDP's buckets).
///
/// One allreduce per gradient tensor costs one MPI latency each; the bucketer instead packs
/// consecutive tensors (in the order given — pass the canonical, name-sorted order so every rank
/// packs identically) into a contiguous buffer of at most `bucketBytes`, reduces the buffer in
/// one call, and copies the results back. A tensor larger than a bucket is reduced in place on
/// its own, after the pending bucket. The result equals one allreduce per tensor.
///
/// The bucket buffer is allocated on first use (at most `bucketBytes`, only as large as the
/// biggest bucket actually filled) and reused by every later call: a training step allocates
/// nothing. Not thread-safe: use one bucketer per training loop.
public final class GradientBucketer {
    /// Counters for benchmarks (docs/benchmarks.md), accumulated over calls until `resetMetrics()`.
    public struct Metrics: Equatable, Sendable {
        /// Bytes handed to `Communicator.allreduce` (payload, not wire traffic).
        public var bytesReduced = 0
        /// `Communicator.allreduce` calls issued (filled buckets plus oversized tensors).
        public var calls = 0
        /// Tensors reduced.
        public var tensors = 0
        /// `allreduce(...)` invocations of the bucketer (training steps).
        public var steps = 0
        /// Wall-clock seconds spent in the bucketer, packing and unpacking included.
        public var seconds = 0.0

        public init() {}
    }

    /// The bucket size limit in bytes; 0 disables fusion (every tensor is reduced on its own).
    public let bucketBytes: Int
    /// The metrics accumulated so far.
    public private(set) var metrics = Metrics()

    private let capacity: Int
    private var buffer = UnsafeMutableBufferPointer<Float>(start: nil, count: 0)
    private let clock = ContinuousClock()

    /// - Parameter bucketBytes: the largest bucket, in bytes (≥ 0; 25 MiB is horovod's and
    ///   DDP's default order of magnitude; a value smaller than the largest gradient is fine).
    public init(bucketBytes: Int) {
        precondition(bucketBytes >= 0, "bucketBytes must be >= 0, got \(bucketBytes)")
        self.bucketBytes = bucketBytes
        capacity = bucketBytes / MemoryLayout<Float>.stride
    }

    deinit { buffer.deallocate() }

    /// Zeroes the metrics.
    public func resetMetrics() { metrics = Metrics() }

    /// Reduces `tensors` in place over all ranks with `op` (usually `.average` for gradients).
    ///
    /// All ranks pass the same number of tensors with the same element counts, in the same
    /// (canonical) order.
    public func allreduce(_ tensors: inout [Tensor], op: ReduceOp, comm: Communicator) throws {
        try allreduce(tensorCount: tensors.count, op: op, comm: comm) { index, body in
            try tensors[index].withUnsafeMutableBufferPointer(body)
        }
    }

    /// Reduces `tensorCount` tensors reached through `access` in place over all ranks.
    ///
    /// The allocation-free form for tensors held in reference boxes (parameters' gradients):
    /// `access(i, body)` must call `body` with tensor `i`'s mutable elements, e.g.
    /// `{ i, body in try params[i].grad.withUnsafeMutableBufferPointer(body) }`. It is called
    /// once or more per tensor, never nested.
    public func allreduce(
        tensorCount: Int, op: ReduceOp, comm: Communicator,
        access: (_ index: Int, _ body: (UnsafeMutableBufferPointer<Float>) throws -> Void) throws -> Void
    ) throws {
        let start = clock.now
        defer {
            metrics.steps += 1
            metrics.tensors += tensorCount
            metrics.seconds += seconds(clock.now - start)
        }
        var first = 0  // the bucket holds tensors first..<index
        var fill = 0  // elements in the bucket

        func flush(upTo end: Int) throws {
            defer { first = end; fill = 0 }
            guard fill > 0 else { return }
            try comm.allreduce(UnsafeMutableBufferPointer(rebasing: buffer[0..<fill]), op: op)
            record(elements: fill)
            var offset = 0
            for j in first..<end {
                try access(j) { tensor in
                    guard tensor.count > 0 else { return }
                    tensor.baseAddress!.update(from: buffer.baseAddress! + offset, count: tensor.count)
                    offset += tensor.count
                }
            }
        }

        for index in 0..<tensorCount {
            var count = 0
            try access(index) { count = $0.count }
            if count > capacity {
                try flush(upTo: index)
                try access(index) { try comm.allreduce($0, op: op) }
                record(elements: count)
                first = index + 1
                continue
            }
            if fill + count > capacity { try flush(upTo: index) }
            reserve(fill + count, keeping: fill)
            if count > 0 {
                try access(index) { tensor in
                    (buffer.baseAddress! + fill).update(from: tensor.baseAddress!, count: tensor.count)
                }
            }
            fill += count
        }
        try flush(upTo: tensorCount)
    }

    private func record(elements: Int) {
        metrics.calls += 1
        metrics.bytesReduced += elements * MemoryLayout<Float>.stride
    }

    /// Grows the bucket buffer to hold `elements` (≤ capacity), keeping its first `kept`.
    private func reserve(_ elements: Int, keeping kept: Int) {
        guard elements > buffer.count else { return }
        let grown = Swift.min(capacity, Swift.max(elements, 2 * buffer.count))
        let fresh = UnsafeMutableBufferPointer<Float>.allocate(capacity: grown)
        if kept > 0 { fresh.baseAddress!.update(from: buffer.baseAddress!, count: kept) }
        buffer.deallocate()
        buffer = fresh
    }

    private func seconds(_ duration: Duration) -> Double {
        let parts = duration.components
        return Double(parts.seconds) + Double(parts.attoseconds) * 1e-18
    }
}
