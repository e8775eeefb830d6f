/// A seeded, platform-independent pseudo-random generator (xoshiro256**, Blackman & Vigna 2018),
/// seeded through SplitMix64. The same seed gives the same stream on every machine and rank;
/// its four-word state can be saved in a checkpoint and restored exactly.
public struct RNG: RandomNumberGenerator, Equatable, Codable {
    public private(set) var state: [UInt64]

    public init(seed: UInt64) {
        var x = seed
        var s: [UInt64] = []
        for _ in 0..<4 {
            x &+= 0x9E37_79B9_7F4A_7C15
            var z = x
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            s.append(z ^ (z >> 31))
        }
        state = s
    }

    /// Restores a generator from a saved `state` (four words, not all zero).
    public init?(state: [UInt64]) {
        guard state.count == 4, state.contains(where: { $0 != 0 }) else { return nil }
        self.state = state
    }

    public mutating func next() -> UInt64 {
        let result = rotl(state[1] &* 5, 7) &* 9
        let t = state[1] << 17
        state[2] ^= state[0]
        state[3] ^= state[1]
        state[1] ^= state[2]
        state[0] ^= state[3]
        state[2] ^= t
        state[3] = rotl(state[3], 45)
        return result
    }

    /// A uniform Float in [0, 1) with 24 random bits.
    public mutating func nextUniform() -> Float {
        Float(next() >> 40) * (1.0 / 16_777_216.0)
    }

    /// A standard normal sample (Box–Muller; one of the pair is discarded so the stream
    /// position depends only on the number of calls).
    public mutating func nextNormal() -> Float {
        let u1 = max(Double(next() >> 11) * (1.0 / 9_007_199_254_740_992.0), 1e-300)
        let u2 = Double(next() >> 11) * (1.0 / 9_007_199_254_740_992.0)
        return Float((-2 * _log(u1)).squareRoot() * _cos(2 * Double.pi * u2))
    }

    /// A derived generator for an independent sub-stream (e.g. one per layer or per epoch).
    public func derived(_ salt: UInt64) -> RNG {
        RNG(seed: state[0] ^ (salt &* 0x9E37_79B9_7F4A_7C15) ^ rotl(state[3], 13))
    }

    private func rotl(_ x: UInt64, _ k: UInt64) -> UInt64 { (x << k) | (x >> (64 - k)) }
}

import Foundation

@inline(__always) private func _log(_ x: Double) -> Double { Foundation.log(x) }
@inline(__always) private func _cos(_ x: Double) -> Double { Foundation.cos(x) }

extension Tensor {
    /// Uniform samples in [low, high).
    public static func uniform(shape: [Int], low: Float, high: Float, rng: inout RNG) -> Tensor {
        var t = Tensor(uninitializedShape: shape)
        t.withUnsafeMutableBufferPointer { p in
            for i in 0..<p.count { p[i] = low + (high - low) * rng.nextUniform() }
        }
        return t
    }

    /// Normal samples with the given mean and standard deviation.
    public static func normal(shape: [Int], mean: Float = 0, std: Float = 1, rng: inout RNG) -> Tensor {
        var t = Tensor(uninitializedShape: shape)
        t.withUnsafeMutableBufferPointer { p in
            for i in 0..<p.count { p[i] = mean + std * rng.nextNormal() }
        }
        return t
    }
}

extension Array {
    /// Fisher–Yates shuffle driven by a seeded `RNG` (deterministic across platforms, unlike
    /// the standard library's `shuffle(using:)` whose algorithm is unspecified).
    public mutating func seededShuffle(rng: inout RNG) {
        guard count > 1 else { return }
        for i in stride(from: count - 1, to: 0, by: -1) {
            let j = Int(rng.next() % UInt64(i + 1))
            swapAt(i, j)
        }
    }
}
