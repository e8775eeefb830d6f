@testable import ECCheckpoint
import Foundation
import XCTest

final class AtomicFileTests: XCTestCase {
    private struct InjectedFailure: Error {}

    private func contents(_ directory: URL) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: directory.path).sorted()
    }

    func testCreatesAndReplacesLeavingNoTemporaryFile() throws {
        let directory = try makeTemporaryDirectory(self)
        let url = directory.appendingPathComponent("state.json")
        try AtomicFile.write(Data("old".utf8), to: url)
        try AtomicFile.write(Data("new".utf8), to: url)
        XCTAssertEqual(try Data(contentsOf: url), Data("new".utf8))
        XCTAssertEqual(try contents(directory), ["state.json"])
    }

    func testFailureBeforeRenameKeepsOldFileAndRemovesTemporary() throws {
        let directory = try makeTemporaryDirectory(self)
        let url = directory.appendingPathComponent("state.json")
        try AtomicFile.write(Data("old".utf8), to: url)
        XCTAssertThrowsError(try AtomicFile.write(Data("new".utf8), to: url, beforeRename: { throw InjectedFailure() }))
        XCTAssertEqual(try Data(contentsOf: url), Data("old".utf8))
        XCTAssertEqual(try contents(directory), ["state.json"])
    }

    func testFailingRenameIsATypedErrorAndCleansUp() throws {
        let directory = try makeTemporaryDirectory(self)
        let target = directory.appendingPathComponent("occupied")
        try FileManager.default.createDirectory(at: target.appendingPathComponent("child"),
                                                withIntermediateDirectories: true)
        let error = checkpointError { try AtomicFile.write(Data("x".utf8), to: target) }
        guard case let .fileSystem(operation, path, reason)? = error else {
            return XCTFail("expected fileSystem, got \(String(describing: error))")
        }
        XCTAssertEqual(operation, "write (rename into place)")
        XCTAssertEqual(path, target.path, "the file asked for, not the hidden temporary one")
        XCTAssertTrue(reason.contains("errno"), reason)
        XCTAssertEqual(try contents(directory), ["occupied"])
        XCTAssertEqual(try contents(target), ["child"])
    }

    func testMissingDirectoryNamesThePath() throws {
        let url = try makeTemporaryDirectory(self).appendingPathComponent("absent/state.json")
        let error = checkpointError { try AtomicFile.write(Data(), to: url) }
        guard case .fileSystem("write (open)", url.path, _)? = error else { return XCTFail("got \(String(describing: error))") }
        assertMentions(error?.description, "absent/state.json", "No such file or directory")
        XCTAssertFalse(error?.description.contains(".tmp") ?? true, "no temporary name: \(String(describing: error))")
    }
}
