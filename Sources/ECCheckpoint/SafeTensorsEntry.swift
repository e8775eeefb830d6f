import ECTensor
import Foundation

/// One tensor of a safetensors file: a dtype, a shape and its raw little-endian row-major bytes.
///
/// The invariant `bytes.count == product(shape) × dtype.byteSize` holds for every value (the
/// initialisers check it; the reader validates files before building entries). Float32 entries
/// convert to and from `Tensor`; other dtypes convert to and from arrays of their Swift scalar.
public struct SafeTensorsEntry: Equatable {
    /// The element type.
    public let dtype: SafeTensorsDType
    /// The shape; `[]` is a scalar with one element.
    public let shape: [Int]
    /// The elements, row-major, little-endian.
    public let bytes: Data

    /// An entry from raw bytes.
    ///
    /// - Precondition: every dimension is non-negative and `bytes.count` equals
    ///   `product(shape) × dtype.byteSize`.
    public init(dtype: SafeTensorsDType, shape: [Int], bytes: Data) {
        let needed = Tensor.elementCount(shape) * dtype.byteSize
        precondition(bytes.count == needed,
                     "shape \(shapeText(shape)) × \(dtype.rawValue) needs \(needed) bytes, got \(bytes.count)")
        self.dtype = dtype
        self.shape = shape
        self.bytes = bytes
    }

    /// An F32 entry holding a tensor's shape and elements.
    public init(_ tensor: Tensor) {
        let bytes = tensor.withUnsafeBufferPointer { Data(buffer: $0) }
        self.init(dtype: .f32, shape: tensor.shape, bytes: bytes)
    }

    /// An entry of `Scalar`'s dtype holding `values` (row-major) with the given shape.
    ///
    /// - Precondition: `values.count` is the shape's element count.
    public init<Scalar: SafeTensorsScalar>(shape: [Int], values: [Scalar]) {
        precondition(Tensor.elementCount(shape) == values.count,
                     "shape \(shapeText(shape)) needs \(Tensor.elementCount(shape)) values, got \(values.count)")
        self.init(dtype: Scalar.safeTensorsDType, shape: shape, bytes: values.withUnsafeBytes { Data($0) })
    }

    /// The number of elements (1 for a scalar).
    public var elementCount: Int { Tensor.elementCount(shape) }

    /// The entry as a Float32 tensor, or nil when its dtype is not F32.
    public var tensor: Tensor? {
        guard dtype == .f32 else { return nil }
        var tensor = Tensor(uninitializedShape: shape)
        tensor.withUnsafeMutableBufferPointer { _ = bytes.copyBytes(to: $0) }
        return tensor
    }

    /// The elements as an array of `Scalar`, or nil when the entry's dtype is not `Scalar`'s.
    public func values<Scalar: SafeTensorsScalar>(as _: Scalar.Type) -> [Scalar]? {
        guard dtype == Scalar.safeTensorsDType else { return nil }
        let count = elementCount
        return [Scalar](unsafeUninitializedCapacity: count) { buffer, initialized in
            _ = bytes.copyBytes(to: buffer)
            initialized = count
        }
    }
}
