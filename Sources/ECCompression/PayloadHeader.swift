/// The fixed 40-byte payload header, all integers little-endian:
///
/// | offset | size | field |
/// |---|---|---|
/// | 0 | 4 | magic `"ECPL"` (`45 43 50 4C`) |
/// | 4 | 2 | format version (`u16`, currently 1) |
/// | 6 | 2 | payload kind (`u16`, `PayloadKind.rawValue`) |
/// | 8 | 8 | training step (`u64`) |
/// | 16 | 8 | uncompressed body length in bytes (`u64`) |
/// | 24 | 8 | compressed length: bytes of the zstd frame that follows (`u64`) |
/// | 32 | 8 | XXH64 (seed 0) of the uncompressed body (`u64`) |
struct PayloadHeader: Equatable {
    static let byteCount = 40
    static let magic: [UInt8] = Array("ECPL".utf8)
    /// The format version this build writes and reads.
    static let currentVersion: UInt16 = 1

    var version: UInt16
    var kind: UInt16
    var step: UInt64
    var bodyLength: UInt64
    var compressedLength: UInt64
    var checksum: UInt64

    /// The header's 40 bytes.
    var bytes: [UInt8] {
        var writer = ByteWriter(reservingCapacity: PayloadHeader.byteCount)
        writer.append(contentsOf: PayloadHeader.magic)
        writer.append(version)
        writer.append(kind)
        writer.append(step)
        writer.append(bodyLength)
        writer.append(compressedLength)
        writer.append(checksum)
        return writer.bytes
    }

    init(version: UInt16 = PayloadHeader.currentVersion, kind: UInt16, step: UInt64, bodyLength: UInt64,
         compressedLength: UInt64, checksum: UInt64) {
        self.version = version
        self.kind = kind
        self.step = step
        self.bodyLength = bodyLength
        self.compressedLength = compressedLength
        self.checksum = checksum
    }

    /// Reads the header at the start of `payload`, checking only its length and magic; the
    /// other fields are the receiver's to verify (`PayloadCodec.decode`).
    init(parsing payload: [UInt8]) throws {
        guard payload.count >= PayloadHeader.byteCount else {
            throw PayloadError.truncatedHeader(byteCount: payload.count, headerBytes: PayloadHeader.byteCount)
        }
        let magic = Array(payload[0..<4])
        guard magic == PayloadHeader.magic else {
            throw PayloadError.badMagic(found: magic, expected: PayloadHeader.magic)
        }
        func field<T: FixedWidthInteger>(_ offset: Int, _ type: T.Type) -> T {
            payload.withUnsafeBytes { T(littleEndian: $0.loadUnaligned(fromByteOffset: offset, as: T.self)) }
        }
        self.init(version: field(4, UInt16.self), kind: field(6, UInt16.self), step: field(8, UInt64.self),
                  bodyLength: field(16, UInt64.self), compressedLength: field(24, UInt64.self),
                  checksum: field(32, UInt64.self))
    }
}
