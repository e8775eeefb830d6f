@testable import ECCheckpoint
import Foundation
import ECTestSupport
import XCTest

/// A fresh empty directory under the system temporary directory, removed after the test.
func makeTemporaryDirectory(_ testCase: XCTestCase) throws -> URL {
    let url = FileManager.default.temporaryDirectory
        .appendingPathComponent("ECCheckpointTests-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    testCase.addTeardownBlock { try? FileManager.default.removeItem(at: url) }
    return url
}

/// The `CheckpointError` that `body` throws; fails the test if it succeeds or throws another type.
func checkpointError<T>(_ body: () throws -> T, file: StaticString = #filePath, line: UInt = #line)
    -> CheckpointError? {
    thrownError(CheckpointError.self, body, file: file, line: line)
}

/// Asserts that `message` contains every one of `parts` (variadic form).
func assertMentions(_ message: String?, _ parts: String..., file: StaticString = #filePath, line: UInt = #line) {
    assertMentions(message, parts, file: file, line: line)
}

/// Asserts that `message` contains every one of `parts`.
func assertMentions(_ message: String?, _ parts: [String], file: StaticString = #filePath, line: UInt = #line) {
    guard let message else { return XCTFail("no error message", file: file, line: line) }
    for part in parts where !message.contains(part) {
        XCTFail("message \"\(message)\" does not mention \"\(part)\"", file: file, line: line)
    }
}
