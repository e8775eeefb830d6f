@testable import ECTensor
import Foundation
import XCTest

final class XXHash64Tests: XCTestCase {
    /// Reference values from the C implementation (Python `xxhash.xxh64(...).hexdigest()`),
    /// covering the short path, the 8/4/1-byte tails and the 32-byte stripe loop.
    func testMatchesReferenceImplementation() {
        XCTAssertEqual(XXHash64.hash(Data()), 0xEF46_DB37_51D8_E999)
        XCTAssertEqual(XXHash64.hash(Data("a".utf8)), 0xD24E_C4F1_A98C_6E5B)
        XCTAssertEqual(XXHash64.hash(Data("abc".utf8)), 0x44BC_2CF5_AD77_0999)
        XCTAssertEqual(XXHash64.hash(Data("abc".utf8), seed: 42), 0x13C1_D910_7027_70E6)
        XCTAssertEqual(XXHash64.hash(Data(0..<37)), 0xD93F_A2DF_EE5C_24C9)
        let long = Data((0..<3).flatMap { _ in (0...255).map(UInt8.init) } + Array("xyz".utf8))
        XCTAssertEqual(XXHash64.hash(long), 0xE921_A1B4_5BD7_79F8)
    }

    func testHashIsIndependentOfAlignment() {
        let bytes = Data((0..<100).map { UInt8($0 * 7 % 256) })
        let shifted = Data([0xFF]) + bytes
        XCTAssertEqual(XXHash64.hash(shifted.dropFirst()), XXHash64.hash(bytes))
    }

    func testHexDigestIsSixteenLowerCaseDigits() {
        XCTAssertEqual(XXHash64.hexDigest(0xEF46_DB37_51D8_E999), "ef46db3751d8e999")
        XCTAssertEqual(XXHash64.hexDigest(0xAB), "00000000000000ab")
    }
}
