import Foundation

/// Recycles large tensor buffers by exact size.
///
/// A training step allocates the same activation and gradient shapes every time; returning
/// them to the C allocator unmaps them (glibc serves blocks ≥ 128 KiB with mmap), and
/// re-faulting fresh pages costs more than the arithmetic of the element-wise ops that fill
/// them. Buffers of at least `minimumBytes` are kept on a free list per size, up to
/// `capacityBytes` in total; smaller ones go straight to malloc.
enum BufferPool {
    static let minimumBytes = 64 << 10
    static let capacityBytes = 512 << 20
    private nonisolated(unsafe) static var free: [Int: [UnsafeMutableRawPointer]] = [:]
    private nonisolated(unsafe) static var cachedBytes = 0
    private static let lock = NSLock()
    /// Tests turn recycling off to check that it never changes a result.
    nonisolated(unsafe) static var isEnabled = true

    static func allocate(byteCount: Int) -> UnsafeMutableRawPointer {
        if isEnabled, byteCount >= minimumBytes {
            lock.lock()
            if let p = free[byteCount]?.popLast() {
                cachedBytes -= byteCount
                lock.unlock()
                return p
            }
            lock.unlock()
        }
        return UnsafeMutableRawPointer.allocate(byteCount: byteCount, alignment: 64)
    }

    static func release(_ pointer: UnsafeMutableRawPointer, byteCount: Int) {
        if isEnabled, byteCount >= minimumBytes {
            lock.lock()
            if cachedBytes + byteCount <= capacityBytes {
                free[byteCount, default: []].append(pointer)
                cachedBytes += byteCount
                lock.unlock()
                return
            }
            lock.unlock()
        }
        pointer.deallocate()
    }

    /// Returns every cached buffer to the system (e.g. after a large one-off inference).
    static func drain() {
        lock.lock()
        for (_, list) in free { for p in list { p.deallocate() } }
        free = [:]
        cachedBytes = 0
        lock.unlock()
    }
}
