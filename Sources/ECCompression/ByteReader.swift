/// Reads little-endian integers and byte runs from a decompressed payload body, throwing
/// `PayloadError.malformedBody` (with the offset and what was being read) instead of reading
/// past the end.
struct ByteReader {
    let bytes: [UInt8]
    /// The offset of the next byte to read.
    private(set) var offset = 0

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    /// The bytes not read yet.
    var remaining: Int { bytes.count - offset }

    mutating func readUInt8(_ what: @autoclosure () -> String) throws -> UInt8 {
        try read(UInt8.self, what())
    }

    mutating func readUInt16(_ what: @autoclosure () -> String) throws -> UInt16 {
        UInt16(littleEndian: try read(UInt16.self, what()))
    }

    mutating func readUInt32(_ what: @autoclosure () -> String) throws -> UInt32 {
        UInt32(littleEndian: try read(UInt32.self, what()))
    }

    mutating func readUInt64(_ what: @autoclosure () -> String) throws -> UInt64 {
        UInt64(littleEndian: try read(UInt64.self, what()))
    }

    /// The next `count` bytes (`count` ≥ 0).
    mutating func readBytes(_ count: Int, _ what: @autoclosure () -> String) throws -> ArraySlice<UInt8> {
        try require(count, what())
        defer { offset += count }
        return bytes[offset..<offset + count]
    }

    /// Throws unless `count` more bytes are available.
    func require(_ count: Int, _ what: @autoclosure () -> String) throws {
        guard count <= remaining else {
            throw PayloadError.malformedBody(offset: offset,
                                             reason: "\(what()) needs \(count) bytes, \(remaining) remain")
        }
    }

    private mutating func read<T: FixedWidthInteger>(_ type: T.Type, _ what: @autoclosure () -> String) throws -> T {
        let size = MemoryLayout<T>.size
        try require(size, what())
        defer { offset += size }
        return bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: offset, as: T.self) }
    }
}
