import ECTensor
/// Encodes compression decisions into the bytes the chief broadcasts, and verifies and decodes
/// them on receipt (docs/payload-format.md).
///
/// Wire format (docs/payload-format.md), all integers little-endian:
///
/// ```
/// header (40 bytes)
///   0  magic "ECPL"            16  u64 uncompressed body length
///   4  u16 format version (1)  24  u64 compressed length (bytes after the header)
///   6  u16 kind                32  u64 XXH64 (seed 0) of the uncompressed body
///   8  u64 training step
/// zstd frame (compressed length bytes): the body, one frame with its content size
/// body: u32 entryCount, then per entry in canonical (bytewise name) order:
///   u16 nameByteCount, UTF-8 name, u8 type (1 mask, 2 float32), u8 rank, u64 × rank shape,
///   data — mask: ⌈n/8⌉ bytes LSB-first (element i = bit i%8 of byte i/8), float32: 4n bytes
/// ```
///
/// `decode` verifies every field against the receiver's expectations and never traps on
/// hostile bytes: each inconsistency is a distinct `PayloadError` naming the field, the value
/// found and the value expected. Declared lengths are bounded by `maximumBodyBytes` before
/// anything is allocated.
public enum PayloadCodec {
    /// The format version this build writes, and the only one it reads.
    public static var formatVersion: UInt16 { PayloadHeader.currentVersion }
    /// The fixed header size in bytes.
    public static var headerBytes: Int { PayloadHeader.byteCount }
    /// The largest uncompressed body accepted (1 GiB): a corrupted length field cannot make a
    /// receiver allocate more.
    public static let maximumBodyBytes = 1 << 30

    /// The bytes of a payload: header followed by the zstd frame of the body.
    ///
    /// - Parameters:
    ///   - kind: what the entries are; the receiver must expect the same kind.
    ///   - step: the training step (≥ 0) the decisions belong to; the receiver must expect it.
    ///   - entries: name → mask or Float32 tensor; written in canonical (sorted) order.
    ///   - level: the zstd level; 1 is fast and compresses structured masks by 100× and more
    ///     (docs/payload-format.md).
    /// - Throws: `PayloadError.invalidEntry` for an empty or over-long name or a rank above 255,
    ///   `.lengthTooLarge` beyond `maximumBodyBytes`, `.invalidLevel`, `.zstd`.
    public static func encode(kind: PayloadKind, step: Int, entries: [String: PayloadValue],
                              level: Int = 1) throws -> [UInt8] {
        precondition(step >= 0, "payload step must be >= 0, got \(step)")
        return try frame(kind: kind.rawValue, step: UInt64(step), body: PayloadBody.encode(Payload.canonical(entries)),
                         level: level)
    }

    /// Verifies `bytes` and returns the payload they hold.
    ///
    /// Checks, in order: header length, magic, version, kind == `expectedKind`, step ==
    /// `expectedStep`, uncompressed length ≤ `maximumBodyBytes`, compressed length == the bytes
    /// after the header, the frame's declared and actual content size == the uncompressed
    /// length, the XXH64 of the body, and the body's structure.
    ///
    /// - Throws: `PayloadError`, one case per failed check.
    public static func decode(_ bytes: [UInt8], expectedKind: PayloadKind, expectedStep: Int) throws -> Payload {
        precondition(expectedStep >= 0, "expected payload step must be >= 0, got \(expectedStep)")
        let header = try PayloadHeader(parsing: bytes)
        guard header.version == PayloadHeader.currentVersion else {
            throw PayloadError.unsupportedVersion(found: header.version, supported: PayloadHeader.currentVersion)
        }
        guard header.kind == expectedKind.rawValue else {
            throw PayloadError.kindMismatch(found: header.kind, expected: expectedKind)
        }
        guard header.step == UInt64(expectedStep) else {
            throw PayloadError.stepMismatch(found: header.step, expected: UInt64(expectedStep))
        }
        let body = try verifiedBody(bytes, header: header)
        return Payload(kind: expectedKind, step: expectedStep, entries: try PayloadBody.decode(body))
    }

    /// Header + zstd frame around an already serialised `body` (also used by tests to frame
    /// hostile bodies).
    static func frame(kind: UInt16, step: UInt64, body: [UInt8], level: Int) throws -> [UInt8] {
        guard body.count <= maximumBodyBytes else {
            throw PayloadError.lengthTooLarge(field: "uncompressed body length", found: UInt64(body.count),
                                              limit: UInt64(maximumBodyBytes))
        }
        let compressed = try Zstd.compress(body, level: level)
        let header = PayloadHeader(kind: kind, step: step, bodyLength: UInt64(body.count),
                                   compressedLength: UInt64(compressed.count),
                                   checksum: body.withUnsafeBytes { XXHash64.hash($0) })
        return header.bytes + compressed
    }

    /// The decompressed body, after the length, size and checksum checks.
    private static func verifiedBody(_ bytes: [UInt8], header: PayloadHeader) throws -> [UInt8] {
        guard header.bodyLength <= UInt64(maximumBodyBytes) else {
            throw PayloadError.lengthTooLarge(field: "uncompressed body length", found: header.bodyLength,
                                              limit: UInt64(maximumBodyBytes))
        }
        let arrived = bytes.count - PayloadHeader.byteCount
        guard UInt64(arrived) >= header.compressedLength else {
            throw PayloadError.truncatedBody(found: arrived, declared: header.compressedLength)
        }
        guard UInt64(arrived) == header.compressedLength else {
            throw PayloadError.compressedLengthMismatch(found: arrived, declared: header.compressedLength)
        }
        let frame = bytes[PayloadHeader.byteCount...]
        if let declared = try Zstd.declaredContentSize(frame), declared != header.bodyLength {
            throw PayloadError.decompressedLengthMismatch(found: declared, declared: header.bodyLength)
        }
        let body = try Zstd.decompress(frame, capacity: Int(header.bodyLength))
        guard body.count == Int(header.bodyLength) else {
            throw PayloadError.decompressedLengthMismatch(found: UInt64(body.count), declared: header.bodyLength)
        }
        let checksum = body.withUnsafeBytes { XXHash64.hash($0) }
        guard checksum == header.checksum else {
            throw PayloadError.checksumMismatch(found: checksum, declared: header.checksum)
        }
        return body
    }
}
