@testable import ECCompression
import ECTensor
import XCTest

/// Bodies whose names, shapes or lengths are inconsistent are `malformedBody` errors that say
/// where and what; they are hand-built here, since the encoder cannot produce them.
final class PayloadBodyTests: XCTestCase {
    private func littleEndian<T: FixedWidthInteger>(_ value: T) -> [UInt8] {
        withUnsafeBytes(of: value.littleEndian, Array.init)
    }

    private func body(_ entries: [[UInt8]], count: UInt32? = nil) -> [UInt8] {
        littleEndian(count ?? UInt32(entries.count)) + entries.flatMap { $0 }
    }

    private func entry(_ name: [UInt8], type: UInt8 = 1, shape: [UInt64], data: [UInt8]) -> [UInt8] {
        littleEndian(UInt16(name.count)) + name + [type, UInt8(shape.count)] + shape.flatMap(littleEndian) + data
    }

    private func entry(_ name: String, type: UInt8 = 1, shape: [UInt64], data: [UInt8]) -> [UInt8] {
        entry(Array(name.utf8), type: type, shape: shape, data: data)
    }

    private func assertMalformed(_ bytes: [UInt8], offset: Int, _ reason: String,
                                 file: StaticString = #filePath, line: UInt = #line) {
        let error = payloadError({ try PayloadBody.decode(bytes) }, file: file, line: line)
        XCTAssertEqual(error, .malformedBody(offset: offset, reason: reason), file: file, line: line)
    }

    func testWellFormedHandBuiltBodyDecodes() throws {
        let bytes = body([entry("a", shape: [9], data: [0x0D, 0x01]),
                          entry("b", type: 2, shape: [], data: littleEndian(Float(-2).bitPattern))])
        let entries = try PayloadBody.decode(bytes)
        XCTAssertEqual(entries, [PayloadEntry(name: "a", value: .mask(Mask(shape: [9], packedBytes: [0x0D, 0x01]))),
                                 PayloadEntry(name: "b", value: .floats(Tensor(scalar: -2)))])
        XCTAssertEqual(try PayloadBody.encode(entries), bytes)
    }

    func testNamesMustBeNonEmptyUTF8UniqueAndSorted() {
        let a = entry("a", shape: [1], data: [1]), b = entry("b", shape: [1], data: [1])
        assertMalformed(body([b, a]), offset: 4 + b.count,
                        "entry 'a' follows 'b'; names must be strictly increasing (canonical order)")
        assertMalformed(body([a, a]), offset: 4 + a.count, "duplicate entry name 'a'; names must be unique")
        assertMalformed(body([entry([], shape: [1], data: [1])]), offset: 4, "entry 0 has an empty name")
        assertMalformed(body([entry([0xFF, 0xFE], shape: [1], data: [1])]), offset: 4,
                        "the name of entry 0 is not UTF-8")
        // "e" + combining acute sorts before precomposed "é" bytewise, but is the same String.
        let decomposed = entry("e\u{301}", shape: [1], data: [1]), precomposed = entry("\u{E9}", shape: [1], data: [1])
        assertMalformed(body([decomposed, precomposed]), offset: 0, "two entry names are equal as Unicode strings")
    }

    func testTypesShapesAndLengthsMustAgree() {
        assertMalformed([], offset: 0, "the entry count needs 4 bytes, 0 remain")
        assertMalformed(body([entry("m", type: 3, shape: [1], data: [1])]), offset: 7,
                        "entry 'm' has type 3, expected 1 (mask) or 2 (float32)")
        assertMalformed(body([entry("m", shape: [9], data: [0x0D])]), offset: 17,
                        "the mask bits of entry 'm' [9] needs 2 bytes, 1 remain")
        assertMalformed(body([entry("m", shape: [9], data: [0x0D, 0x03])]), offset: 18,
                        "entry 'm' [9]: the unused high bits of the last mask byte are 1, expected 0")
        assertMalformed(body([entry("m", type: 2, shape: [3], data: [UInt8](repeating: 0, count: 8))]), offset: 17,
                        "the float32 data of entry 'm' [3] needs 3 × 4 bytes, 8 remain")
        assertMalformed(Array(body([entry("m", shape: [2, 2, 2], data: [])]).dropLast(8)), offset: 9,
                        "the shape of entry 'm' (rank 3) needs 24 bytes, 16 remain")
        assertMalformed(body([entry("m", shape: [1 << 62, 4], data: [])]), offset: 9,
                        "entry 'm': dimension 4 after [4611686018427387904] makes the element count overflow "
                            + "(at most \(Int.max))")
        assertMalformed(body([entry("m", shape: [.max], data: [])]), offset: 9,
                        "entry 'm': dimension \(UInt64.max) after [] makes the element count overflow "
                            + "(at most \(Int.max))")
        assertMalformed(body([entry("m", shape: [1], data: [1])]) + [0, 0], offset: 18,
                        "2 bytes follow the last entry, expected none")
        assertMalformed(body([], count: 1000), offset: 0,
                        "entry count 1000 cannot fit in the 0 bytes that follow (at least 5 bytes per entry)")
    }

    /// A malformed body with a valid frame and checksum reaches the receiver as `malformedBody`.
    func testMalformedBodyThroughTheCodec() throws {
        let bad = body([entry("m", shape: [9], data: [0x0D, 0x03])])
        let bytes = try PayloadCodec.frame(kind: PayloadKind.masks.rawValue, step: 5, body: bad, level: 1)
        assertDecodeFails(bytes, with: .malformedBody(
            offset: 18, reason: "entry 'm' [9]: the unused high bits of the last mask byte are 1, expected 0"))
        XCTAssertEqual(PayloadError.malformedBody(offset: 18, reason: "x").description,
                       "payload body malformed at byte 18: x")
    }
}
