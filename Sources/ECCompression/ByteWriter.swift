/// Appends little-endian integers and raw bytes to a growing byte array (payload encoding).
struct ByteWriter {
    private(set) var bytes: [UInt8] = []

    init(reservingCapacity capacity: Int = 0) {
        bytes.reserveCapacity(capacity)
    }

    mutating func append(_ value: UInt8) { bytes.append(value) }
    mutating func append(_ value: UInt16) { appendLittleEndian(value) }
    mutating func append(_ value: UInt32) { appendLittleEndian(value) }
    mutating func append(_ value: UInt64) { appendLittleEndian(value) }

    mutating func append<S: Sequence>(contentsOf values: S) where S.Element == UInt8 {
        bytes.append(contentsOf: values)
    }

    /// Appends the IEEE-754 bit patterns of `values`, little-endian (NaN payloads kept).
    mutating func appendFloatBits(_ values: UnsafeBufferPointer<Float>) {
        let start = bytes.count
        bytes.append(contentsOf: repeatElement(0, count: values.count * 4))
        bytes.withUnsafeMutableBytes { out in
            for i in values.indices {
                out.storeBytes(of: values[i].bitPattern.littleEndian, toByteOffset: start + 4 * i, as: UInt32.self)
            }
        }
    }

    private mutating func appendLittleEndian<T: FixedWidthInteger>(_ value: T) {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }
}
