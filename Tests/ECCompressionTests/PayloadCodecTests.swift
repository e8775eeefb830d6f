import Foundation
@testable import ECCompression
import ECTensor
import XCTest

final class PayloadCodecTests: XCTestCase {
    func testRoundTripsManyEntriesBitForBit() throws {
        let entries = sampleEntries()
        let bytes = try PayloadCodec.encode(kind: .masks, step: 120, entries: entries)
        let payload = try PayloadCodec.decode(bytes, expectedKind: .masks, expectedStep: 120)
        XCTAssertEqual(payload.kind, .masks)
        XCTAssertEqual(payload.step, 120)
        XCTAssertEqual(payload.names, entries.keys.sorted())
        for (name, value) in entries { XCTAssertEqual(payload[name], value, name) }
        XCTAssertEqual(bitPatterns(payload["scale/awkward"]), awkwardFloats.map(\.bitPattern))
        XCTAssertEqual(payload.mask(named: "mask/9")?.count, 9)
        XCTAssertNil(payload.mask(named: "scale/scalar"))
        XCTAssertEqual(payload.floats(named: "scale/scalar"), Tensor(scalar: 0.125))
        XCTAssertNil(payload["no/such/entry"])
    }

    func testRoundTripsEveryKindEmptyEntriesAndLargeSteps() throws {
        for kind in PayloadKind.allCases {
            for step in [0, 1, 240, Int.max] {
                let bytes = try PayloadCodec.encode(kind: kind, step: step, entries: [:])
                let payload = try PayloadCodec.decode(bytes, expectedKind: kind, expectedStep: step)
                XCTAssertEqual(payload.entries, [])
                XCTAssertEqual(payload.step, step)
            }
        }
    }

    /// Every zstd level gives the same decoded payload; out-of-range levels are refused.
    func testLevels() throws {
        let entries = sampleEntries(seed: 3)
        for level in [-5, 1, 3, 19] {
            let bytes = try PayloadCodec.encode(kind: .scales, step: 2, entries: entries, level: level)
            XCTAssertEqual(try PayloadCodec.decode(bytes, expectedKind: .scales, expectedStep: 2).entries,
                           Payload.canonical(entries), "level \(level)")
        }
        let range = Zstd.levels
        XCTAssertEqual(payloadError { try PayloadCodec.encode(kind: .masks, step: 0, entries: [:], level: 99) },
                       .invalidLevel(found: 99, supported: range))
    }

    /// The body of one 9-element mask named "m", byte by byte (docs/payload-format.md).
    func testBodyIsPinnedByteByByte() throws {
        let body = try PayloadBody.encode([PayloadEntry(name: "m", value: .mask(Mask([true, false, true, true, false,
                                                                                         false, false, false, true])))])
        XCTAssertEqual(body, [0x01, 0x00, 0x00, 0x00,  // one entry
                              0x01, 0x00, 0x6D,        // name "m"
                              0x01, 0x01,              // mask, rank 1
                              0x09, 0, 0, 0, 0, 0, 0, 0,  // shape [9]
                              0x0D, 0x01])             // bits LSB-first
        let floats = try PayloadBody.encode([PayloadEntry(name: "s", value: .floats(Tensor(scalar: -2)))])
        XCTAssertEqual(floats, [1, 0, 0, 0, 1, 0, 0x73, 0x02, 0x00, 0x00, 0x00, 0x00, 0xC0])
    }

    /// The header of that tiny payload, byte by byte: magic, version 1, kind 1, step 5,
    /// body length 19, compressed length 28 (zstd stores 19 bytes raw: 6-byte frame header,
    /// 3-byte block header), XXH64 of the body; then the zstd frame.
    func testHeaderIsPinnedByteByByte() throws {
        let mask = Mask([true, false, true, true, false, false, false, false, true])
        let bytes = try PayloadCodec.encode(kind: .masks, step: 5, entries: ["m": .mask(mask)])
        let body: [UInt8] = [1, 0, 0, 0, 1, 0, 0x6D, 1, 1, 9, 0, 0, 0, 0, 0, 0, 0, 0x0D, 0x01]
        let checksum = XXHash64.hash(Data(body))
        let expectedHeader: [UInt8] = [0x45, 0x43, 0x50, 0x4C,  // "ECPL"
                                       0x01, 0x00,              // version 1
                                       0x01, 0x00,              // kind 1 (masks)
                                       0x05, 0, 0, 0, 0, 0, 0, 0,  // step 5
                                       0x13, 0, 0, 0, 0, 0, 0, 0,  // body length 19
                                       0x1C, 0, 0, 0, 0, 0, 0, 0]  // compressed length 28
            + (0..<8).map { UInt8(truncatingIfNeeded: checksum >> (8 * $0)) }
        XCTAssertEqual(Array(bytes.prefix(40)), expectedHeader)
        XCTAssertEqual(bytes.count, 40 + 28)
        XCTAssertEqual(Array(bytes[40..<44]), [0x28, 0xB5, 0x2F, 0xFD], "zstd frame magic")
        XCTAssertEqual(Array(bytes.suffix(19)), body, "a 19-byte body is stored raw in the frame")
        XCTAssertEqual(PayloadCodec.headerBytes, 40)
        XCTAssertEqual(PayloadCodec.formatVersion, 1)
    }

    /// Entries are written in canonical order whatever the dictionary order; equal inputs give
    /// equal bytes, and decode → encode reproduces them.
    func testEncodingIsCanonicalAndDeterministic() throws {
        let entries = sampleEntries(seed: 9)
        let first = try PayloadCodec.encode(kind: .state, step: 3, entries: entries)
        let reordered = Dictionary(uniqueKeysWithValues: entries.reversed().map { ($0.key, $0.value) })
        XCTAssertEqual(try PayloadCodec.encode(kind: .state, step: 3, entries: reordered), first)
        let payload = try PayloadCodec.decode(first, expectedKind: .state, expectedStep: 3)
        let again = Dictionary(uniqueKeysWithValues: payload.entries.map { ($0.name, $0.value) })
        XCTAssertEqual(try PayloadCodec.encode(kind: .state, step: 3, entries: again), first)
        XCTAssertEqual(Payload.canonical(["b": .mask(Mask([])), "B": .mask(Mask([])), "a/b": .mask(Mask([])),
                                          "a": .mask(Mask([]))]).map(\.name), ["B", "a", "a/b", "b"])
    }

    func testEncodingRejectsEntriesItCannotRepresent() {
        let unnamed: [String: PayloadValue] = ["": .mask(Mask([true]))]
        XCTAssertEqual(payloadError { try PayloadCodec.encode(kind: .masks, step: 0, entries: unnamed) },
                       .invalidEntry(name: "", reason: "empty name"))
        let deep = Mask(shape: [Int](repeating: 1, count: 256), values: [true])
        XCTAssertEqual(payloadError { try PayloadCodec.encode(kind: .masks, step: 0, entries: ["deep": .mask(deep)]) },
                       .invalidEntry(name: "deep", reason: "rank 256, at most 255 allowed"))
        let long = String(repeating: "x", count: 65_536)
        let error = payloadError { try PayloadCodec.encode(kind: .masks, step: 0, entries: [long: .mask(Mask([]))]) }
        XCTAssertTrue(error?.description.contains("name is 65536 UTF-8 bytes, at most 65535 allowed") == true,
                      "\(String(describing: error))")
    }

    /// Whole-channel pruning (rows of 3136 equal bits) compresses by well over 100×;
    /// random masks at 50% density do not compress (about 1×).
    func testCompressionRatiosOfStructuredAndRandomMasks() throws {
        let rows = 128, rowLength = 3136
        var rng = RNG(seed: 11)
        let keptRows = (0..<rows).map { _ in rng.nextUniform() < 0.5 }
        let channels = Mask(shape: [rows, rowLength],
                            values: keptRows.flatMap { Array(repeating: $0, count: rowLength) })
        let random = Mask(shape: [rows, rowLength], values: (0..<rows * rowLength).map { _ in rng.next() & 1 == 0 })
        let uncompressed = Double(Mask.packedByteCount(rows * rowLength))
        let structured = try PayloadCodec.encode(kind: .masks, step: 0, entries: ["fc1/weight": .mask(channels)])
        let unstructured = try PayloadCodec.encode(kind: .masks, step: 0, entries: ["fc1/weight": .mask(random)])
        XCTAssertGreaterThan(uncompressed / Double(structured.count), 100, "\(structured.count) bytes")
        XCTAssertEqual(uncompressed / Double(unstructured.count), 1, accuracy: 0.05, "\(unstructured.count) bytes")
    }
}
