import Foundation
import ECTensor

// Array, Tensor and Data forms of the buffer collectives. They are thin wrappers, defined once
// for every communicator.
extension Communicator {
    /// Reduces `values` in place over all ranks with `op` (see `allreduce(_:op:)` on buffers).
    public func allreduce(_ values: inout [Float], op: ReduceOp) throws {
        try values.withUnsafeMutableBufferPointer { try allreduce($0, op: op) }
    }

    /// Reduces `values` in place over all ranks with `op`.
    public func allreduce(_ values: inout [Double], op: ReduceOp) throws {
        try values.withUnsafeMutableBufferPointer { try allreduce($0, op: op) }
    }

    /// Reduces `tensor`'s elements in place over all ranks with `op`; all ranks pass tensors of
    /// the same element count.
    public func allreduce(_ tensor: inout Tensor, op: ReduceOp) throws {
        try tensor.withUnsafeMutableBufferPointer { try allreduce($0, op: op) }
    }

    /// Sums `values` over all ranks into `root`'s array (others unchanged).
    public func reduce(_ values: inout [Float], toRoot root: Int) throws {
        try values.withUnsafeMutableBufferPointer { try reduce($0, toRoot: root) }
    }

    /// Sums `values` over all ranks into `root`'s array (others unchanged).
    public func reduce(_ values: inout [Double], toRoot root: Int) throws {
        try values.withUnsafeMutableBufferPointer { try reduce($0, toRoot: root) }
    }

    /// Copies `root`'s `buffer` into every rank's `buffer`; all ranks pass the same count.
    public func broadcast(_ buffer: UnsafeMutableBufferPointer<Float>, root: Int) throws {
        try broadcast(UnsafeMutableRawBufferPointer(buffer), root: root)
    }

    /// Replaces every rank's `bytes` with `root`'s. The length travels first, so receivers may
    /// pass an array of any length (usually empty).
    public func broadcast(_ bytes: inout [UInt8], root: Int) throws {
        let count = try broadcastCount(bytes.count, root: root, what: "broadcast of [UInt8]", stride: 1)
        if rank != root { bytes = [UInt8](repeating: 0, count: count) }
        try bytes.withUnsafeMutableBytes { try broadcast($0, root: root) }
    }

    /// Replaces every rank's `data` with `root`'s (length sent first).
    public func broadcast(_ data: inout Data, root: Int) throws {
        var bytes = rank == root ? [UInt8](data) : []
        try broadcast(&bytes, root: root)
        if rank != root { data = Data(bytes) }
    }

    /// Replaces every rank's `values` with `root`'s. The count travels first, so receivers may
    /// pass an array of any length.
    public func broadcast(_ values: inout [Float], root: Int) throws {
        let count = try broadcastCount(values.count, root: root, what: "broadcast of [Float]",
                                       stride: MemoryLayout<Float>.stride)
        if rank != root { values = [Float](repeating: 0, count: count) }
        try values.withUnsafeMutableBytes { try broadcast($0, root: root) }
    }

    /// Replaces every rank's `tensor` elements with `root`'s; all ranks pass tensors of the
    /// same element count (shapes are the caller's contract, e.g. the canonical parameter list).
    public func broadcast(_ tensor: inout Tensor, root: Int) throws {
        try tensor.withUnsafeMutableBufferPointer { try broadcast($0, root: root) }
    }

    /// Broadcasts `root`'s element count (8 bytes, little-endian) and returns it on every rank.
    private func broadcastCount(_ count: Int, root: Int, what: String, stride: Int) throws -> Int {
        var header = UInt64(count).littleEndian
        try withUnsafeMutableBytes(of: &header) { try broadcast($0, root: root) }
        let received = UInt64(littleEndian: header)
        guard received <= UInt64(Int.max / stride) else {
            throw CollectiveError.invalidLength(what: what, length: received)
        }
        return Int(received)
    }
}
