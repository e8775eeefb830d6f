import Foundation

/// Contiguous storage for a tensor's Float32 elements, shared copy-on-write between
/// `Tensor` values. Memory is 64-byte aligned so BLAS and vector loops see aligned rows.
public final class TensorStorage {
    public let count: Int
    public let pointer: UnsafeMutablePointer<Float>
    /// For a view into a `FlatBuffer`: the buffer (kept alive by the view); nil for owned memory.
    public let owner: FlatBuffer?

    /// Allocates `count` elements, left uninitialised (callers overwrite every element).
    @usableFromInline init(uninitializedCount count: Int) {
        precondition(count >= 0, "negative element count \(count)")
        self.count = count
        pointer = BufferPool.allocate(byteCount: max(count, 1) * MemoryLayout<Float>.stride)
            .bindMemory(to: Float.self, capacity: max(count, 1))
        owner = nil
    }

    /// `count` elements of `buffer` from `offset`, not copied.
    init(viewing buffer: FlatBuffer, offset: Int, count: Int) {
        precondition(offset >= 0 && count >= 0 && offset + count <= buffer.count,
                     "view \(offset)..<\(offset + count) outside a buffer of \(buffer.count)")
        self.count = count
        pointer = buffer.pointer + offset
        owner = buffer
    }

    deinit {
        if owner == nil {
            BufferPool.release(UnsafeMutableRawPointer(pointer), byteCount: max(count, 1) * MemoryLayout<Float>.stride)
        }
    }
}

/// One contiguous block of Float32 that several tensors view (e.g. every parameter's gradient,
/// so that an allreduce is one call over one buffer with no packing — llm.c's single parameter
/// block). A tensor viewing it stays a view only while nothing else shares its storage: a
/// copy-on-write mutation detaches it, which `Tensor.isView(of:)` detects.
public final class FlatBuffer {
    public let count: Int
    public let pointer: UnsafeMutablePointer<Float>

    /// `count` zeroed elements.
    public init(count: Int) {
        precondition(count >= 0, "negative element count \(count)")
        self.count = count
        pointer = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1) * MemoryLayout<Float>.stride, alignment: 64)
            .bindMemory(to: Float.self, capacity: max(count, 1))
        pointer.initialize(repeating: 0, count: max(count, 1))
    }

    deinit { UnsafeMutableRawPointer(pointer).deallocate() }

    public var buffer: UnsafeMutableBufferPointer<Float> { UnsafeMutableBufferPointer(start: pointer, count: count) }
}

/// A dense, row-major (C order) Float32 tensor with value semantics.
///
/// Activations are NHWC, convolution kernels HWIO (`[kh, kw, cin, cout]`), dense kernels
/// `[in, out]` — TensorFlow's layouts, so a Conv2D kernel is also the `[kh·kw·cin, cout]`
/// matrix its GEMM uses. Copies share storage until one of them is mutated.
public struct Tensor {
    public private(set) var shape: [Int]
    @usableFromInline var storage: TensorStorage

    /// The number of elements (product of the shape; 1 for a scalar with shape `[]`).
    public var count: Int { storage.count }
    public var rank: Int { shape.count }

    /// A tensor whose elements are left uninitialised: the caller must write every element.
    public init(uninitializedShape shape: [Int]) {
        self.shape = shape
        storage = TensorStorage(uninitializedCount: Tensor.elementCount(shape))
    }

    /// A tensor filled with `value`.
    public init(shape: [Int], repeating value: Float = 0) {
        self.init(uninitializedShape: shape)
        storage.pointer.initialize(repeating: value, count: storage.count)
    }

    /// A tensor holding `scalars` (row-major) with the given shape.
    public init(shape: [Int], scalars: [Float]) {
        precondition(Tensor.elementCount(shape) == scalars.count,
                     "shape \(shape) needs \(Tensor.elementCount(shape)) scalars, got \(scalars.count)")
        self.init(uninitializedShape: shape)
        scalars.withUnsafeBufferPointer { storage.pointer.update(from: $0.baseAddress!, count: $0.count) }
    }

    /// A tensor of `shape` viewing `buffer` from element `offset` (no copy; see `FlatBuffer`).
    public init(viewing buffer: FlatBuffer, offset: Int, shape: [Int]) {
        self.shape = shape
        storage = TensorStorage(viewing: buffer, offset: offset, count: Tensor.elementCount(shape))
    }

    /// Whether this tensor's elements live in `buffer` at `offset`.
    public func isView(of buffer: FlatBuffer, offset: Int) -> Bool {
        storage.owner === buffer && storage.pointer == buffer.pointer + offset
    }

    /// A scalar (rank-0) tensor.
    public init(scalar: Float) { self.init(shape: [], scalars: [scalar]) }

    public static func elementCount(_ shape: [Int]) -> Int {
        var n = 1
        for d in shape {
            precondition(d >= 0, "negative dimension in shape \(shape)")
            n *= d
        }
        return n
    }

    /// All elements, row-major.
    public var scalars: [Float] {
        Array(UnsafeBufferPointer(start: storage.pointer, count: count))
    }

    /// The single element of a one-element tensor.
    public var scalarValue: Float {
        precondition(count == 1, "scalarValue of a tensor with shape \(shape)")
        return storage.pointer[0]
    }

    public subscript(flat index: Int) -> Float {
        get {
            precondition(index >= 0 && index < count, "flat index \(index) out of range 0..<\(count)")
            return storage.pointer[index]
        }
        set {
            precondition(index >= 0 && index < count, "flat index \(index) out of range 0..<\(count)")
            makeUnique()
            storage.pointer[index] = newValue
        }
    }

    /// Same elements viewed with another shape of equal element count (no copy).
    public func reshaped(_ newShape: [Int]) -> Tensor {
        precondition(Tensor.elementCount(newShape) == count, "cannot reshape \(shape) to \(newShape)")
        var t = self
        t.shape = newShape
        return t
    }

    @inlinable
    public func withUnsafeBufferPointer<R>(_ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R {
        try body(UnsafeBufferPointer(start: storage.pointer, count: storage.count))
    }

    @inlinable
    public mutating func withUnsafeMutableBufferPointer<R>(
        _ body: (UnsafeMutableBufferPointer<Float>) throws -> R
    ) rethrows -> R {
        makeUnique()
        return try body(UnsafeMutableBufferPointer(start: storage.pointer, count: storage.count))
    }

    /// Copies the storage if it is shared, so that a mutation stays local to this value.
    @inlinable
    public mutating func makeUnique() {
        if !isKnownUniquelyReferenced(&storage) {
            let fresh = TensorStorage(uninitializedCount: storage.count)
            fresh.pointer.update(from: storage.pointer, count: storage.count)
            storage = fresh
        }
    }

    /// Whether two tensors share the same storage (for tests of copy-on-write and views).
    public func sharesStorage(with other: Tensor) -> Bool { storage === other.storage }
}

extension Tensor: Equatable {
    /// Exact equality of shape and every element (bitwise for non-NaN values).
    public static func == (lhs: Tensor, rhs: Tensor) -> Bool {
        guard lhs.shape == rhs.shape else { return false }
        if lhs.storage === rhs.storage { return true }
        return memcmp(lhs.storage.pointer, rhs.storage.pointer, lhs.count * MemoryLayout<Float>.stride) == 0
    }
}

extension Tensor: CustomStringConvertible {
    public var description: String {
        let shown = scalars.prefix(8).map { String(format: "%.5g", $0) }.joined(separator: ", ")
        return "Tensor(shape: \(shape), [\(shown)\(count > 8 ? ", …" : "")])"
    }
}

extension Tensor {
    /// Largest absolute element-wise difference; shapes must match.
    public func maxAbsDifference(_ other: Tensor) -> Float {
        precondition(shape == other.shape, "shape \(shape) vs \(other.shape)")
        var m: Float = 0
        withUnsafeBufferPointer { a in
            other.withUnsafeBufferPointer { b in
                for i in 0..<a.count { m = max(m, abs(a[i] - b[i])) }
            }
        }
        return m
    }

    /// Sum of all elements, accumulated in Double.
    public func sum() -> Double {
        withUnsafeBufferPointer { p in
            var s = 0.0
            for v in p { s += Double(v) }
            return s
        }
    }
}
