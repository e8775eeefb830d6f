import ECTensor

/// A Boolean mask over a parameter tensor: `true` keeps an element, `false` prunes it.
///
/// Elements are in row-major (C) order, like `Tensor`. On the wire (and in `packedBytes`) a
/// mask takes one bit per element, **LSB-first**: element `i` is bit `i % 8` (value
/// `1 << (i % 8)`) of byte `i / 8`, so `[1,0,1,1, 0,0,0,0, 1]` packs to `[0x0D, 0x01]` — the
/// order of NumPy's `packbits(bitorder="little")`. The unused high bits of the last byte are
/// zero; `⌈count / 8⌉` bytes in all.
public struct Mask: Equatable, Sendable {
    /// The shape of the tensor the mask covers (`[]` for a scalar: one element).
    public let shape: [Int]
    /// One flag per element, row-major; `values.count == shape.reduce(1, *)`.
    public let values: [Bool]

    /// A mask with the given shape and row-major flags.
    ///
    /// - Precondition: `values.count` equals the product of `shape`, every dimension ≥ 0.
    public init(shape: [Int], values: [Bool]) {
        precondition(shape.allSatisfy { $0 >= 0 }, "negative dimension in mask shape \(shape)")
        let count = shape.reduce(1, *)
        precondition(count == values.count, "mask shape \(shape) needs \(count) values, got \(values.count)")
        self.shape = shape
        self.values = values
    }

    /// A one-dimensional mask (shape `[values.count]`).
    public init(_ values: [Bool]) {
        self.init(shape: [values.count], values: values)
    }

    /// A mask that is `value` everywhere.
    public init(shape: [Int], repeating value: Bool) {
        precondition(shape.allSatisfy { $0 >= 0 }, "negative dimension in mask shape \(shape)")
        self.init(shape: shape, values: [Bool](repeating: value, count: shape.reduce(1, *)))
    }

    /// The mask of `tensor`'s non-zero elements (NaN counts as non-zero), with its shape.
    public init(nonZerosOf tensor: Tensor) {
        self.init(shape: tensor.shape, values: tensor.withUnsafeBufferPointer { $0.map { $0 != 0 } })
    }

    /// The number of elements.
    public var count: Int { values.count }

    /// The number of kept (`true`) elements.
    public var keptCount: Int { values.reduce(0) { $0 + ($1 ? 1 : 0) } }

    /// The mask as a tensor of 1s (kept) and 0s (pruned), for multiplying into weights.
    public var tensor: Tensor {
        Tensor(shape: shape, scalars: values.map { $0 ? 1 : 0 })
    }

    /// The bits, packed LSB-first into `⌈count / 8⌉` bytes (see the type's documentation).
    public var packedBytes: [UInt8] {
        var bytes = [UInt8](repeating: 0, count: Mask.packedByteCount(count))
        guard count > 0 else { return bytes }
        values.withUnsafeBufferPointer { flagBuffer in
            // A Bool is one byte holding 0 or 1: read eight at a time and shift them into place.
            let flags = UnsafeRawPointer(flagBuffer.baseAddress!).assumingMemoryBound(to: UInt8.self)
            bytes.withUnsafeMutableBufferPointer { out in
                let full = flagBuffer.count / 8
                for b in 0..<full {
                    let f = flags + 8 * b
                    out[b] = f[0] | f[1] << 1 | f[2] << 2 | f[3] << 3 | f[4] << 4 | f[5] << 5 | f[6] << 6 | f[7] << 7
                }
                for i in (8 * full)..<flagBuffer.count where flagBuffer[i] { out[i >> 3] |= 1 << UInt8(i & 7) }
            }
        }
        return bytes
    }

    /// Unpacks the mask's LSB-first bits from `bytes`, which must hold exactly `⌈count / 8⌉`
    /// bytes (`count` = product of `shape`); bits beyond `count` are ignored.
    public init(shape: [Int], packedBytes bytes: [UInt8]) {
        self.init(shape: shape, packedBytes: bytes[...])
    }

    /// Unpacks the mask's LSB-first bits from `bytes` (see `init(shape:packedBytes:)`).
    public init(shape: [Int], packedBytes bytes: ArraySlice<UInt8>) {
        precondition(shape.allSatisfy { $0 >= 0 }, "negative dimension in mask shape \(shape)")
        let count = shape.reduce(1, *)
        precondition(bytes.count == Mask.packedByteCount(count),
                     "\(count) mask bits need \(Mask.packedByteCount(count)) bytes, got \(bytes.count)")
        let values = bytes.withUnsafeBufferPointer { packed in
            [Bool](unsafeUninitializedCapacity: count) { flags, initialized in
                let full = count / 8
                for b in 0..<full {
                    let byte = packed[b]
                    for k in 0..<8 { flags[8 * b + k] = (byte >> UInt8(k)) & 1 != 0 }
                }
                for i in (8 * full)..<count { flags[i] = packed[i >> 3] & (1 << UInt8(i & 7)) != 0 }
                initialized = count
            }
        }
        self.init(shape: shape, values: values)
    }

    /// `⌈count / 8⌉`: the bytes `count` packed bits take.
    public static func packedByteCount(_ count: Int) -> Int { count / 8 + (count % 8 == 0 ? 0 : 1) }
}
