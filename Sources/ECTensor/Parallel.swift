import Dispatch
import Foundation

/// Splits loops that are not GEMMs (im2col, pooling, element-wise passes) across the cores
/// this process may use; small loops stay on the calling thread.
public enum Parallel {
    /// Worker count for element-wise loops (≥ 1). Defaults to the OpenBLAS thread count chosen
    /// for this rank (`OPENBLAS_NUM_THREADS`, else the number of active processors).
    public nonisolated(unsafe) static var workers: Int = {
        if let s = ProcessInfo.processInfo.environment["OPENBLAS_NUM_THREADS"], let n = Int(s), n > 0 { return n }
        return max(1, ProcessInfo.processInfo.activeProcessorCount)
    }()

    /// Runs `body(range)` over a partition of `0..<count` into contiguous chunks, in parallel
    /// when `count × costPerItem` is large enough to repay the thread hand-off (~10 µs).
    @inline(__always)
    public static func forEach(_ count: Int, costPerItem: Int = 1, _ body: (Range<Int>) -> Void) {
        let n = min(workers, count)
        if n <= 1 || count * costPerItem < 1 << 15 {
            body(0..<count)
            return
        }
        DispatchQueue.concurrentPerform(iterations: n) { i in
            let lo = count * i / n, hi = count * (i + 1) / n
            if lo < hi { body(lo..<hi) }
        }
    }
}

extension Parallel {
    /// Runs `body(i)` for `i` in `0..<n` on `n` threads at once, each with single-threaded BLAS
    /// and element-wise loops (the slices the callers give them are independent: a batch cut
    /// in `n`); the thread settings are restored afterwards. Thread replicas in training,
    /// `Model.predict` and the int8 path's batches run through it. The thread settings are
    /// process-wide: call it from one thread at a time (the trainer and the engine do).
    public static func replicas(_ n: Int, _ body: (Int) -> Void) {
        let blasThreads = BLAS.threads, saved = workers
        BLAS.setThreads(1)
        workers = 1
        DispatchQueue.concurrentPerform(iterations: n, execute: body)
        BLAS.setThreads(blasThreads)
        workers = saved
    }

    /// `replicas`, with every replica on a thread of its own at the same time, also when there
    /// are more replicas than cores — for replicas that wait for each other (synchronised batch
    /// norm), which `replicas` might run one after another. Replica 0 runs on the caller's
    /// thread; returns when all have returned.
    public static func replicasTogether(_ n: Int, _ body: @escaping (Int) -> Void) {
        let blasThreads = BLAS.threads, saved = workers
        BLAS.setThreads(1)
        workers = 1
        let done = DispatchGroup()
        for i in 1..<max(n, 1) {
            done.enter()
            let thread = Thread {
                body(i)
                done.leave()
            }
            thread.stackSize = 8 << 20
            thread.start()
        }
        if n > 0 { body(0) }
        done.wait()
        BLAS.setThreads(blasThreads)
        workers = saved
    }

    /// `transform` of each of `n` contiguous slices of `batch`'s first axis, run as replicas
    /// and joined back along the first axis in order.
    public static func mapBatchSlices(_ batch: Tensor, _ n: Int, _ transform: (Tensor) -> Tensor) -> Tensor {
        let count = batch.shape.first ?? 0
        var parts = [Tensor?](repeating: nil, count: n)
        parts.withUnsafeMutableBufferPointer { out in
            replicas(n) { s in out[s] = transform(batch.rows((count * s / n)..<(count * (s + 1) / n))) }
        }
        return Tensor(concatenatingRows: parts.map { $0! })
    }
}

extension Tensor {
    /// Rows `range` of the first axis (a copy): a slice of a batch.
    public func rows(_ range: Range<Int>) -> Tensor {
        let rowLength = shape.first.map { $0 == 0 ? 0 : count / $0 } ?? 0
        return withUnsafeBufferPointer {
            Tensor(shape: [range.count] + Array(shape.dropFirst()),
                   scalars: Array($0[(range.lowerBound * rowLength)..<(range.upperBound * rowLength)]))
        }
    }

    /// The tensors joined along the first axis (their other dimensions must agree).
    public init(concatenatingRows parts: [Tensor]) {
        precondition(!parts.isEmpty, "concatenatingRows: nothing to join")
        let tail = Array(parts[0].shape.dropFirst())
        precondition(parts.allSatisfy { Array($0.shape.dropFirst()) == tail }, "concatenatingRows: shapes \(parts.map(\.shape)) differ")
        self.init(uninitializedShape: [parts.reduce(0) { $0 + ($1.shape.first ?? 0) }] + tail)
        withUnsafeMutableBufferPointer { dst in
            var offset = 0
            for part in parts {
                part.withUnsafeBufferPointer { src in
                    for i in src.indices { dst[offset + i] = src[i] }
                    offset += src.count
                }
            }
        }
    }
}
