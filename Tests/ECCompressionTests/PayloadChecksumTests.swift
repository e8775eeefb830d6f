@testable import ECCompression
import XCTest

final class PayloadChecksumTests: XCTestCase {
    /// Reference values of the C implementation (Python `xxhash.xxh64(...).intdigest()`), the
    /// same as ECCheckpoint's XXHash64 tests: short path, 8/4/1-byte tails, 32-byte stripes.
    func testMatchesReferenceImplementation() {
        XCTAssertEqual(PayloadChecksum.xxh64([]), 0xEF46_DB37_51D8_E999)
        XCTAssertEqual(PayloadChecksum.xxh64(Array("a".utf8)), 0xD24E_C4F1_A98C_6E5B)
        XCTAssertEqual(PayloadChecksum.xxh64(Array("abc".utf8)), 0x44BC_2CF5_AD77_0999)
        XCTAssertEqual(PayloadChecksum.xxh64(Array("abc".utf8), seed: 42), 0x13C1_D910_7027_70E6)
        XCTAssertEqual(PayloadChecksum.xxh64(Array(0..<37)), 0xD93F_A2DF_EE5C_24C9)
        let long = (0..<3).flatMap { _ in (0...255).map(UInt8.init) } + Array("xyz".utf8)
        XCTAssertEqual(PayloadChecksum.xxh64(long), 0xE921_A1B4_5BD7_79F8)
    }
}
