@testable import ECCheckpoint
import XCTest

final class JSONValueTests: XCTestCase {
    private func parse(_ text: String) throws -> JSONValue { try JSONValue.parse(Array(text.utf8)) }

    func testObjectsKeepOrderAndDuplicateKeys() throws {
        let value = try parse(#" { "b" : [1, -2.5e3, true, null], "a": {}, "b": "x" }  "#)
        guard case let .object(members) = value else { return XCTFail("not an object: \(value)") }
        XCTAssertEqual(members.map(\.key), ["b", "a", "b"])
        XCTAssertEqual(members[0].value, .array([.number("1"), .number("-2.5e3"), .bool(true), .null]))
        XCTAssertEqual(members[1].value, .object([]))
        XCTAssertEqual(members[2].value, .string("x"))
    }

    func testStringEscapesIncludingSurrogatePairs() throws {
        XCTAssertEqual(try parse(#""a\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00""#), .string("a\"\\/\u{8}\u{c}\n\r\té😀"))
        XCTAssertEqual(try parse("\"é\""), .string("é"))
    }

    func testIntegersAreReadExactly() throws {
        XCTAssertEqual(try parse("9007199254740993").nonNegativeInt, 9_007_199_254_740_993)
        XCTAssertNil(try parse("-1").nonNegativeInt)
        XCTAssertNil(try parse("1.0").nonNegativeInt)
        XCTAssertNil(try parse("1e3").nonNegativeInt)
        XCTAssertNil(try parse("99999999999999999999999").nonNegativeInt)
    }

    func testMalformedDocumentsThrowWithOffset() {
        let bad = ["", "{", "{\"a\":}", "[1,]", "{\"a\" 1}", "01", "\"\\x\"", "\"\\ud800\"", "tru", "{} x",
                   "\"unterminated", "\"tab\there\"", "-", "1.", "{1:2}", String(repeating: "[", count: 100)]
        for text in bad {
            XCTAssertThrowsError(try parse(text), "accepted \(text)") { error in
                XCTAssertTrue(error is JSONParseError, "\(text): \(error)")
            }
        }
        XCTAssertThrowsError(try JSONValue.parse([0x22, 0xFF, 0x22])) { error in
            XCTAssertEqual((error as? JSONParseError)?.message, "not valid UTF-8")
        }
    }

    func testJSONTextRoundTrips() throws {
        let text = #"{"a":[1,"x\n",false,null],"b":{}}"#
        XCTAssertEqual(try parse(text).jsonText, text)
    }
}
