import Foundation
@testable import ECCompression
import ECTensor
import XCTest

/// Every way a received payload can be wrong is its own `PayloadError` case, naming the field,
/// the value found and the value expected.
final class PayloadCodecVerificationTests: XCTestCase {
    /// The 9-element mask payload of `testHeaderIsPinnedByteByByte`: 40 + 28 bytes, the frame's
    /// single raw block header at offset 46.
    private func tinyPayload(step: Int = 5) throws -> [UInt8] {
        let mask = Mask([true, false, true, true, false, false, false, false, true])
        return try PayloadCodec.encode(kind: .masks, step: step, entries: ["m": .mask(mask)])
    }

    private func setField(_ bytes: inout [UInt8], at offset: Int, to value: UInt64) {
        for i in 0..<8 { bytes[offset + i] = UInt8(truncatingIfNeeded: value >> (8 * i)) }
    }

    func testTruncatedHeader() throws {
        let bytes = try tinyPayload()
        assertDecodeFails(Array(bytes.prefix(12)), with: .truncatedHeader(byteCount: 12, headerBytes: 40))
        assertDecodeFails([], with: .truncatedHeader(byteCount: 0, headerBytes: 40))
        XCTAssertEqual(PayloadError.truncatedHeader(byteCount: 12, headerBytes: 40).description,
                       "payload truncated: 12 bytes, the header alone needs 40")
    }

    func testBadMagic() throws {
        var bytes = try tinyPayload()
        bytes[3] = 0x58
        assertDecodeFails(bytes, with: .badMagic(found: [0x45, 0x43, 0x50, 0x58], expected: [0x45, 0x43, 0x50, 0x4C]))
        XCTAssertTrue(PayloadError.badMagic(found: [0x45, 0x43, 0x50, 0x58], expected: Array("ECPL".utf8)).description
            .hasPrefix("payload magic mismatch: found 0x45435058, expected 0x4543504c"))
    }

    func testUnsupportedVersion() throws {
        var bytes = try tinyPayload()
        bytes[4] = 2
        assertDecodeFails(bytes, with: .unsupportedVersion(found: 2, supported: 1))
    }

    func testWrongKind() throws {
        let bytes = try tinyPayload()
        assertDecodeFails(bytes, kind: .scales, with: .kindMismatch(found: 1, expected: .scales))
        XCTAssertEqual(PayloadError.kindMismatch(found: 1, expected: .scales).description,
                       "payload kind mismatch: header says 1 (masks), receiver expected 2 (scales)")
        var unknown = bytes
        unknown[6] = 7
        assertDecodeFails(unknown, with: .kindMismatch(found: 7, expected: .masks))
        XCTAssertEqual(PayloadError.kindMismatch(found: 7, expected: .masks).description,
                       "payload kind mismatch: header says 7 (unknown), receiver expected 1 (masks)")
    }

    func testWrongStep() throws {
        let bytes = try tinyPayload(step: 120)
        assertDecodeFails(bytes, step: 240, with: .stepMismatch(found: 120, expected: 240))
        XCTAssertEqual(PayloadError.stepMismatch(found: 120, expected: 240).description,
                       "payload step mismatch: header says 120, receiver expected 240")
    }

    /// An absurd uncompressed length is refused before anything is allocated.
    func testAbsurdDeclaredLength() throws {
        var bytes = try tinyPayload()
        setField(&bytes, at: 16, to: 1 << 32)
        assertDecodeFails(bytes, with: .lengthTooLarge(field: "uncompressed body length", found: 1 << 32,
                                                       limit: 1 << 30))
        setField(&bytes, at: 16, to: .max)
        assertDecodeFails(bytes, with: .lengthTooLarge(field: "uncompressed body length", found: .max, limit: 1 << 30))
    }

    func testTruncatedBodyAndTrailingBytes() throws {
        let bytes = try tinyPayload()
        assertDecodeFails(Array(bytes.dropLast()), with: .truncatedBody(found: 27, declared: 28))
        assertDecodeFails(bytes + [0], with: .compressedLengthMismatch(found: 29, declared: 28))
        var shorter = bytes
        setField(&shorter, at: 24, to: 27)
        assertDecodeFails(shorter, with: .compressedLengthMismatch(found: 28, declared: 27))
        var huge = bytes
        setField(&huge, at: 24, to: .max)
        assertDecodeFails(huge, with: .truncatedBody(found: 28, declared: .max))
    }

    func testBadZstdFrame() throws {
        var badMagic = try tinyPayload()
        badMagic[40] ^= 0xFF
        guard case .zstd(let operation, let message)? = payloadError({
            try PayloadCodec.decode(badMagic, expectedKind: .masks, expectedStep: 5)
        }) else { return XCTFail("expected a zstd error") }
        XCTAssertEqual(operation, "ZSTD_getFrameContentSize")
        XCTAssertFalse(message.isEmpty)

        var reservedBlock = try tinyPayload()
        reservedBlock[46] |= 0b110  // block type 3: reserved
        let error = payloadError { try PayloadCodec.decode(reservedBlock, expectedKind: .masks, expectedStep: 5) }
        guard case .zstd(operation: "ZSTD_decompress", let text)? = error else {
            return XCTFail("expected a ZSTD_decompress error, got \(String(describing: error))")
        }
        XCTAssertTrue(error!.description.hasPrefix("payload zstd error in ZSTD_decompress: \(text)"))
    }

    func testDecompressedLengthMismatch() throws {
        var bytes = try tinyPayload()
        setField(&bytes, at: 16, to: 20)
        assertDecodeFails(bytes, with: .decompressedLengthMismatch(found: 19, declared: 20))
    }

    /// A frame that does not declare its content size (legal zstd) is decompressed, and its
    /// actual size is checked against the header.
    func testFrameWithoutContentSizeIsCheckedAfterDecompression() throws {
        let body: [UInt8] = [1, 0, 0, 0, 1, 0, 0x6D, 1, 1, 9, 0, 0, 0, 0, 0, 0, 0, 0x0D, 0x01]
        // Magic, descriptor 0 (no content size), window descriptor, last raw block of 19 bytes.
        let frame: [UInt8] = [0x28, 0xB5, 0x2F, 0xFD, 0x00, 0x00, 0x99, 0x00, 0x00] + body
        func payload(bodyLength: UInt64) -> [UInt8] {
            PayloadHeader(kind: 1, step: 5, bodyLength: bodyLength, compressedLength: UInt64(frame.count),
                          checksum: XXHash64.hash(Data(body))).bytes + frame
        }
        let decoded = try PayloadCodec.decode(payload(bodyLength: 19), expectedKind: .masks, expectedStep: 5)
        XCTAssertEqual(decoded.mask(named: "m")?.packedBytes, [0x0D, 0x01])
        assertDecodeFails(payload(bodyLength: 20), with: .decompressedLengthMismatch(found: 19, declared: 20))
        guard case .zstd(operation: "ZSTD_decompress", _)? = payloadError({
            try PayloadCodec.decode(payload(bodyLength: 18), expectedKind: .masks, expectedStep: 5)
        }) else { return XCTFail("expected a ZSTD_decompress error for a too small destination") }
    }

    func testChecksumMismatch() throws {
        var bytes = try tinyPayload()
        let declared = XXHash64.hash(Data(Array(bytes.suffix(19))))
        bytes[32] ^= 0x01
        assertDecodeFails(bytes, with: .checksumMismatch(found: declared, declared: declared ^ 1))
        var body = try tinyPayload()
        body[body.count - 2] ^= 0x02  // a mask bit inside the raw block
        let found = XXHash64.hash(Data(Array(body.suffix(19))))
        assertDecodeFails(body, with: .checksumMismatch(found: found, declared: declared))
        XCTAssertEqual(PayloadError.checksumMismatch(found: 0xAB, declared: 0x1234_5678_9ABC_DEF0).description,
                       "payload checksum mismatch: header says 0x123456789abcdef0, "
                           + "body hashes to 0x00000000000000ab (XXH64)")
    }
}
