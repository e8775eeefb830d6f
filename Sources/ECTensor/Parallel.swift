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
