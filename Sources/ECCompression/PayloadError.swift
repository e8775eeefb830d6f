/// Failures to encode or to verify a compression payload (tier 2: each case carries the field,
/// the value found and the value expected).
///
/// A receiver that gets any of these must not use the payload: the chief's decisions would
/// silently diverge across ranks. `PayloadChannel` throws them and the caller ends the job with
/// `failJob(_:comm:)`.
public enum PayloadError: Error, Equatable, CustomStringConvertible {
    /// Fewer bytes than the fixed header.
    case truncatedHeader(byteCount: Int, headerBytes: Int)
    /// The first four bytes are not the magic `"ECPL"`.
    case badMagic(found: [UInt8], expected: [UInt8])
    /// A format version this build cannot read.
    case unsupportedVersion(found: UInt16, supported: UInt16)
    /// The header's kind (a raw value, possibly unknown) is not the one the receiver expects.
    case kindMismatch(found: UInt16, expected: PayloadKind)
    /// The header's training step is not the one the receiver expects.
    case stepMismatch(found: UInt64, expected: UInt64)
    /// A length field is beyond what a receiver accepts (`PayloadCodec.maximumBodyBytes`),
    /// refused before anything is allocated.
    case lengthTooLarge(field: String, found: UInt64, limit: UInt64)
    /// Fewer bytes follow the header than its compressed-length field declares.
    case truncatedBody(found: Int, declared: UInt64)
    /// More bytes follow the header than its compressed-length field declares.
    case compressedLengthMismatch(found: Int, declared: UInt64)
    /// libzstd reported an error (`ZSTD_getErrorName`'s text), e.g. a corrupted frame.
    case zstd(operation: String, message: String)
    /// The frame decompresses (or declares that it decompresses) to a size other than the
    /// header's uncompressed-length field.
    case decompressedLengthMismatch(found: UInt64, declared: UInt64)
    /// The XXH64 of the decompressed body is not the header's checksum.
    case checksumMismatch(found: UInt64, declared: UInt64)
    /// The decompressed body is not a well-formed entry list (names, shapes, lengths).
    case malformedBody(offset: Int, reason: String)
    /// An entry cannot be encoded (empty or over-long name, rank over 255).
    case invalidEntry(name: String, reason: String)
    /// A zstd compression level outside what libzstd supports.
    case invalidLevel(found: Int, supported: ClosedRange<Int>)

    public var description: String {
        switch self {
        case let .truncatedHeader(byteCount, headerBytes):
            return "payload truncated: \(byteCount) bytes, the header alone needs \(headerBytes)"
        case let .badMagic(found, expected):
            return "payload magic mismatch: found \(hex(found)), expected \(hex(expected)) (\"ECPL\"); "
                + "hint: these bytes are not an EasyCompression payload"
        case let .unsupportedVersion(found, supported):
            return "payload format version \(found) is not supported, this build reads version \(supported); "
                + "hint: run the same build on every rank"
        case let .kindMismatch(found, expected):
            return "payload kind mismatch: header says \(PayloadKind.describe(raw: found)), "
                + "receiver expected \(PayloadKind.describe(raw: expected.rawValue))"
        case let .stepMismatch(found, expected):
            return "payload step mismatch: header says \(found), receiver expected \(expected)"
        case let .lengthTooLarge(field, found, limit):
            return "payload \(field) is \(found) bytes, more than the limit of \(limit)"
        case let .truncatedBody(found, declared):
            return "payload body truncated: header says \(declared) compressed bytes, \(found) arrived"
        case let .compressedLengthMismatch(found, declared):
            return "payload compressed length mismatch: header says \(declared) bytes, \(found) arrived"
        case let .zstd(operation, message):
            return "payload zstd error in \(operation): \(message)"
        case let .decompressedLengthMismatch(found, declared):
            return "payload uncompressed length mismatch: header says \(declared) bytes, "
                + "the zstd frame holds \(found)"
        case let .checksumMismatch(found, declared):
            return "payload checksum mismatch: header says \(hex(declared)), body hashes to \(hex(found)) (XXH64)"
        case let .malformedBody(offset, reason):
            return "payload body malformed at byte \(offset): \(reason)"
        case let .invalidEntry(name, reason):
            return "payload entry '\(name)' cannot be encoded: \(reason)"
        case let .invalidLevel(found, supported):
            return "zstd compression level must be in \(supported.lowerBound)...\(supported.upperBound), got \(found)"
        }
    }
}

/// A payload the channel could not send or accept, named by what it was: its kind, its step,
/// the compressor whose decisions it carries and the rank it failed on, with the reason.
/// `PayloadChannel.broadcast` throws it.
public struct PayloadChannelError: Error, Equatable, CustomStringConvertible {
    /// Where it failed: encoding on the chief, or verifying what arrived on a rank.
    public enum Stage: String, Sendable { case encode, verify }
    public let kind: PayloadKind
    public let step: Int
    /// The compressor whose decisions the payload carries (`pruner`, `quantizer`,
    /// `sparsifier`), nil for a channel that serves no compressor.
    public let sender: String?
    public let rank: Int
    public let stage: Stage
    /// What was wrong with the bytes.
    public let error: PayloadError

    public init(kind: PayloadKind, step: Int, sender: String?, rank: Int, stage: Stage, error: PayloadError) {
        self.kind = kind
        self.step = step
        self.sender = sender
        self.rank = rank
        self.stage = stage
        self.error = error
    }

    public var description: String {
        let what = "\(sender.map { "the \($0)'s " } ?? "")\(kind) payload of step \(step)"
        switch stage {
        case .encode: return "\(what) could not be encoded on rank \(rank): \(error)"
        case .verify: return "\(what) was rejected on rank \(rank): \(error)"
        }
    }
}

/// `0x` and two lower-case hex digits per byte.
private func hex(_ bytes: [UInt8]) -> String {
    "0x" + bytes.map { $0 < 16 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined()
}

/// `0x` and sixteen lower-case hex digits.
private func hex(_ value: UInt64) -> String {
    let digits = String(value, radix: 16)
    return "0x" + String(repeating: "0", count: 16 - digits.count) + digits
}
