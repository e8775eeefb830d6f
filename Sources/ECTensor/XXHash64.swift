import Foundation

/// XXH64, Yann Collet's 64-bit non-cryptographic hash (https://github.com/Cyan4973/xxHash,
/// `xxhash.xxh64` in Python), used as the checkpoint checksum: it detects torn writes and bit
/// rot in a file, not tampering.
///
/// The input is consumed in 32-byte stripes by four accumulators
/// `vᵢ ← rotl(vᵢ + lane·P₂, 31)·P₁`, which are merged, followed by the 8-, 4- and 1-byte
/// tail and a final avalanche; all arithmetic is modulo 2⁶⁴ on little-endian lanes.
public enum XXHash64 {
    private static let p1: UInt64 = 0x9E37_79B1_85EB_CA87
    private static let p2: UInt64 = 0xC2B2_AE3D_27D4_EB4F
    private static let p3: UInt64 = 0x1656_67B1_9E37_79F9
    private static let p4: UInt64 = 0x85EB_CA77_C2B2_AE63
    private static let p5: UInt64 = 0x27D4_EB2F_1656_67C5

    /// The XXH64 of `data` with `seed`.
    public static func hash(_ data: Data, seed: UInt64 = 0) -> UInt64 {
        data.withUnsafeBytes { hash($0, seed: seed) }
    }

    /// The XXH64 of `bytes` with `seed`.
    public static func hash(_ bytes: UnsafeRawBufferPointer, seed: UInt64 = 0) -> UInt64 {
        let count = bytes.count
        var offset = 0
        var h: UInt64
        if count >= 32 {
            var v1 = seed &+ p1 &+ p2, v2 = seed &+ p2, v3 = seed, v4 = seed &- p1
            while offset + 32 <= count {
                v1 = round(v1, lane(bytes, offset))
                v2 = round(v2, lane(bytes, offset + 8))
                v3 = round(v3, lane(bytes, offset + 16))
                v4 = round(v4, lane(bytes, offset + 24))
                offset += 32
            }
            h = rotl(v1, 1) &+ rotl(v2, 7) &+ rotl(v3, 12) &+ rotl(v4, 18)
            for v in [v1, v2, v3, v4] { h = (h ^ round(0, v)) &* p1 &+ p4 }
        } else {
            h = seed &+ p5
        }
        h = h &+ UInt64(count)
        while offset + 8 <= count {
            h = rotl(h ^ round(0, lane(bytes, offset)), 27) &* p1 &+ p4
            offset += 8
        }
        if offset + 4 <= count {
            let word = UInt64(UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt32.self)))
            h = rotl(h ^ (word &* p1), 23) &* p2 &+ p3
            offset += 4
        }
        while offset < count {
            h = rotl(h ^ (UInt64(bytes[offset]) &* p5), 11) &* p1
            offset += 1
        }
        h ^= h >> 33
        h = h &* p2
        h ^= h >> 29
        h = h &* p3
        h ^= h >> 32
        return h
    }

    /// A hash as 16 lower-case hex digits, the spelling stored in manifests.
    public static func hexDigest(_ hash: UInt64) -> String {
        let hex = String(hash, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }

    private static func lane(_ bytes: UnsafeRawBufferPointer, _ offset: Int) -> UInt64 {
        UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
    }

    private static func round(_ accumulator: UInt64, _ input: UInt64) -> UInt64 {
        rotl(accumulator &+ input &* p2, 31) &* p1
    }

    private static func rotl(_ x: UInt64, _ r: UInt64) -> UInt64 {
        (x << r) | (x >> (64 - r))
    }
}
