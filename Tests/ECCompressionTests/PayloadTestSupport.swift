@testable import ECCompression
import ECTensor
import ECTestSupport
import XCTest

/// The `PayloadError` `body` throws, or `nil` (failing the test) if it throws nothing or
/// something else.
func payloadError<T>(_ body: () throws -> T, file: StaticString = #filePath, line: UInt = #line) -> PayloadError? {
    thrownError(Error.self, body, file: file, line: line).flatMap { error in
        switch error {
        case let e as PayloadError: return e
        case let e as PayloadChannelError: return e.error  // the channel names the payload around the reason
        default:
            XCTFail("expected a PayloadError, got \(error)", file: file, line: line)
            return nil
        }
    }
}

/// Asserts that decoding `bytes` (expecting masks at `step`) throws exactly `expected`.
func assertDecodeFails(_ bytes: [UInt8], kind: PayloadKind = .masks, step: Int = 5, with expected: PayloadError,
                       file: StaticString = #filePath, line: UInt = #line) {
    let error = payloadError({ try PayloadCodec.decode(bytes, expectedKind: kind, expectedStep: step) },
                             file: file, line: line)
    XCTAssertEqual(error, expected, file: file, line: line)
}

/// A deterministic mixture of entries: masks of odd lengths (0, 1, 7, 8, 9, large), a scalar
/// mask, multi-dimensional masks, and float tensors with awkward bit patterns.
func sampleEntries(seed: UInt64 = 1) -> [String: PayloadValue] {
    var rng = RNG(seed: seed)
    var entries = [String: PayloadValue]()
    for length in [0, 1, 7, 8, 9, 63, 64, 65, 100_003] {
        entries["mask/\(length)"] = .mask(Mask((0..<length).map { _ in rng.next() & 1 == 1 }))
    }
    entries["mask/scalar"] = .mask(Mask(shape: [], values: [true]))
    entries["mask/hwio"] = .mask(Mask(shape: [3, 3, 5, 7], values: (0..<315).map { $0 % 7 != 2 }))
    entries["mask/empty-rows"] = .mask(Mask(shape: [0, 4], values: []))
    entries["scale/awkward"] = .floats(Tensor(shape: [8], scalars: awkwardFloats))
    entries["scale/scalar"] = .floats(Tensor(scalar: 0.125))
    entries["scale/empty"] = .floats(Tensor(shape: [0], scalars: []))
    entries["scale/random"] = .floats(Tensor(shape: [17, 3], scalars: (0..<51).map { _ in rng.nextUniform() - 0.5 }))
    return entries
}

/// NaNs with payloads (quiet and signalling), infinities, signed zeros, subnormals, extremes.
let awkwardFloats: [Float] = [Float(bitPattern: 0x7FC0_1234), Float(bitPattern: 0xFF80_0001), .infinity,
                              -.infinity, -0.0, .leastNonzeroMagnitude, .greatestFiniteMagnitude, 1]

/// The bit patterns of a payload value's floats (for comparisons that must be bitwise).
func bitPatterns(_ value: PayloadValue?) -> [UInt32] {
    guard case .floats(let tensor)? = value else { return [] }
    return tensor.scalars.map(\.bitPattern)
}
