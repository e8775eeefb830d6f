@testable import ECCompression
import ECTensor
import XCTest

/// Hostile bytes never crash a receiver: every truncation, random byte flips, garbage, and
/// mutated bodies with valid frames either throw a `PayloadError` or decode to exactly what
/// was sent (the checksum makes any other outcome impossible).
final class PayloadCodecFuzzTests: XCTestCase {
    /// Structured masks (compressed zstd blocks, not raw ones) and floats, ~1 KB on the wire.
    private let entries: [String: PayloadValue] = [
        "conv1/weight": .mask(Mask(shape: [3, 3, 1, 32], values: (0..<288).map { $0 % 32 % 5 != 0 })),
        "conv2/weight": .mask(Mask(shape: [700], values: (0..<700).map { ($0 / 16) % 3 == 0 })),
        "conv2/bias": .mask(Mask((0..<9).map { $0 % 2 == 0 })),
        "fc1/scale": .floats(Tensor(shape: [2, 4], scalars: awkwardFloats)),
        "fc2/scale": .floats(Tensor(shape: [64], scalars: (0..<64).map { Float($0 % 4) * 0.25 })),
    ]

    func testTruncationAtEveryLength() throws {
        let bytes = try PayloadCodec.encode(kind: .masks, step: 77, entries: entries)
        XCTAssertGreaterThan(bytes.count, 100)
        for length in 0..<bytes.count {
            let expected: PayloadError = length < 40
                ? .truncatedHeader(byteCount: length, headerBytes: 40)
                : .truncatedBody(found: length - 40, declared: UInt64(bytes.count - 40))
            assertDecodeFails(Array(bytes.prefix(length)), step: 77, with: expected)
        }
    }

    func testRandomByteFlipsAreDetected() throws {
        let bytes = try PayloadCodec.encode(kind: .masks, step: 77, entries: entries)
        let original = try PayloadCodec.decode(bytes, expectedKind: .masks, expectedStep: 77)
        var rng = RNG(seed: 2024)
        var detected = 0
        let trials = 3000
        for trial in 0..<trials {
            var corrupted = bytes
            for _ in 0...(trial % 3) {
                corrupted[Int(rng.next() % UInt64(bytes.count))] ^= UInt8(1 + rng.next() % 255)
            }
            do {
                let payload = try PayloadCodec.decode(corrupted, expectedKind: .masks, expectedStep: 77)
                XCTAssertEqual(payload, original, "trial \(trial): a corrupted payload decoded to different entries")
            } catch is PayloadError {
                detected += 1
            }
        }
        // Only flips in zstd's own slack (e.g. an unused bit of the frame) can go unnoticed.
        XCTAssertGreaterThan(detected, trials * 95 / 100)
    }

    func testGarbageIsRejected() {
        var rng = RNG(seed: 5)
        for trial in 0..<2000 {
            var bytes = (0..<Int(rng.next() % 160)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            if trial % 2 == 0, bytes.count >= 40 {  // a plausible header over garbage
                let header = PayloadHeader(kind: 1, step: 77, bodyLength: rng.next() % 4096,
                                           compressedLength: UInt64(bytes.count - 40), checksum: rng.next())
                bytes.replaceSubrange(0..<40, with: header.bytes)
                if trial % 4 == 0 { bytes.replaceSubrange(40..<min(44, bytes.count), with: [0x28, 0xB5, 0x2F, 0xFD]) }
            }
            XCTAssertNotNil(payloadError { try PayloadCodec.decode(bytes, expectedKind: .masks, expectedStep: 77) },
                            "trial \(trial)")
        }
    }

    /// Mutated bodies behind a valid frame and checksum: `malformedBody`, or a decode whose
    /// re-encoding is the mutated body byte for byte (the encoding is canonical).
    func testMutatedBodiesAreRejectedOrCanonical() throws {
        let body = try PayloadBody.encode(Payload.canonical(entries))
        var rng = RNG(seed: 99)
        var rejected = 0
        for trial in 0..<1500 {
            var mutated = body
            switch trial % 4 {
            case 0: mutated[Int(rng.next() % UInt64(body.count))] ^= UInt8(1 + rng.next() % 255)
            case 1: mutated.removeLast(1 + Int(rng.next() % 16))
            case 2: mutated.insert(UInt8(truncatingIfNeeded: rng.next()), at: Int(rng.next() % UInt64(body.count)))
            default: mutated[Int(rng.next() % 64)] = UInt8(truncatingIfNeeded: rng.next())
            }
            let bytes = try PayloadCodec.frame(kind: 3, step: 1, body: mutated, level: 1)
            do {
                let payload = try PayloadCodec.decode(bytes, expectedKind: .state, expectedStep: 1)
                XCTAssertEqual(try PayloadBody.encode(payload.entries), mutated, "trial \(trial)")
            } catch PayloadError.malformedBody {
                rejected += 1
            }
        }
        XCTAssertGreaterThan(rejected, 500)
    }
}
