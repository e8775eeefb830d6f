@testable import ECCheckpoint
import ECTensor
import Foundation
import XCTest

/// Corrupt, mismatched and interrupted checkpoints: each is a specific error naming the file or
/// tensor, and none replaces or hides the last good checkpoint.
final class CheckpointStoreLoadingTests: XCTestCase {
    private struct SimulatedCrash: Error {}
    private var store: CheckpointStore!
    private var good: CheckpointReference!

    override func setUpWithError() throws {
        store = CheckpointStore(directory: try makeTemporaryDirectory(self).appendingPathComponent("checkpoints"))
        good = try store.save(step: 10, tensors: sampleTensors(), extraEntries: sampleExtras,
                              state: sampleState(step: 10), keepLast: 3)
    }

    private func file(_ name: String, of reference: CheckpointReference? = nil) -> URL {
        (reference ?? good).url.appendingPathComponent(name)
    }

    private func names() throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: store.directory.path).sorted()
    }

    /// Replaces a file of the good checkpoint and records it in the manifest with a valid size
    /// and checksum, as a foreign writer might: only the content checks can catch it.
    private func replaceConsistently(_ name: String, with data: Data, extraEntries: [String]? = nil) throws {
        try data.write(to: file(name))
        let url = file(CheckpointManifest.fileName)
        var manifest = try CheckpointManifest.decode(Data(contentsOf: url), file: url.path, expectedStep: 10)
        let files = try manifest.files.map { ($0.name, try Data(contentsOf: file($0.name))) }
        manifest = CheckpointManifest(step: 10, files: files, extraEntries: extraEntries ?? manifest.extraEntries)
        try manifest.encoded().write(to: url)
    }

    func testFlippedDataByteIsAChecksumError() throws {
        var bytes = try Data(contentsOf: file("tensors.safetensors"))
        bytes[bytes.count - 3] ^= 0x10
        try bytes.write(to: file("tensors.safetensors"))
        let error = checkpointError { try store.load(step: 10) }
        guard case let .checksumMismatch(path, expected, actual)? = error else { return XCTFail("got \(String(describing: error))") }
        XCTAssertEqual(path, file("tensors.safetensors").path)
        XCTAssertNotEqual(expected, actual)
        assertMentions(error?.description, "step-00000010/tensors.safetensors", "corrupt")
        XCTAssertNil(try store.latest(), "a corrupt checkpoint is not offered for resume")
    }

    func testTruncatedFileIsASizeError() throws {
        let bytes = try Data(contentsOf: file("tensors.safetensors"))
        try bytes.prefix(bytes.count - 1).write(to: file("tensors.safetensors"))
        XCTAssertEqual(checkpointError { try store.load(good.url) },
                       .sizeMismatch(file: file("tensors.safetensors").path, expectedBytes: bytes.count,
                                     actualBytes: bytes.count - 1))
    }

    func testMissingOrBadManifest() throws {
        let manifestURL = file("manifest.json")
        let original = try Data(contentsOf: manifestURL)
        try FileManager.default.removeItem(at: manifestURL)
        XCTAssertEqual(checkpointError { try store.load(step: 10) }, .missingManifest(directory: good.url.path))

        try Data("{\"format_version\": 1, \"step\": ".utf8).write(to: manifestURL)
        guard case .invalidManifest(manifestURL.path, _)? = checkpointError({ try store.load(step: 10) }) else {
            return XCTFail("truncated manifest accepted")
        }
        let text = String(decoding: original, as: UTF8.self)
        try Data(text.replacingOccurrences(of: "\"format_version\" : 1", with: "\"format_version\" : 9").utf8).write(to: manifestURL)
        XCTAssertEqual(checkpointError { try store.load(step: 10) },
                       .unsupportedManifestVersion(file: manifestURL.path, version: 9, supported: 1))
        try Data(text.replacingOccurrences(of: "\"step\" : 10", with: "\"step\" : 11").utf8).write(to: manifestURL)
        guard case let .invalidManifest(_, reason)? = checkpointError({ try store.load(step: 10) }) else {
            return XCTFail("step mismatch accepted")
        }
        XCTAssertTrue(reason.contains("step 11"), reason)
        try Data(text.replacingOccurrences(of: "\"state.json\"", with: "\"..\\/state.json\"").utf8).write(to: manifestURL)
        guard case .invalidManifest? = checkpointError({ try store.load(step: 10) }) else {
            return XCTFail("a file outside the checkpoint was accepted")
        }
    }

    func testMissingExtraEntryAndWrongDType() throws {
        try replaceConsistently("tensors.safetensors", with: try SafeTensors(tensors: sampleTensors()).encoded())
        let path = file("tensors.safetensors").path
        XCTAssertEqual(checkpointError { try store.load(step: 10) }, .missingTensor(file: path, tensor: "conv1/mask"))

        var contents = SafeTensors(tensors: sampleTensors())
        contents["conv1/bias"] = SafeTensorsEntry(shape: [2], values: [Int8(1), 2])
        try replaceConsistently("tensors.safetensors", with: try contents.encoded(), extraEntries: [])
        let error = checkpointError { try store.load(step: 10) }
        XCTAssertEqual(error, .dtypeMismatch(file: path, tensor: "conv1/bias", expected: .f32, actual: .i8))
        assertMentions(error?.description, path, "conv1/bias", "I8")
    }

    func testInvalidSafetensorsInsideAVerifiedCheckpointIsReported() throws {
        try replaceConsistently("tensors.safetensors", with: Data([0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]))
        guard case .headerTooLarge(file("tensors.safetensors").path, _, _)? = checkpointError({ try store.load(step: 10) })
        else { return XCTFail("garbage accepted") }
    }

    func testMissingTensorAndShapeMismatchAgainstTheModel() throws {
        let checkpoint = try store.load(step: 10)
        let path = file("tensors.safetensors").path
        var expected = ["conv1/weight": [3, 3, 1, 2], "conv1/bias": [2], "quant/step": [], "fc/weight": [4, 10]]
        XCTAssertEqual(checkpointError { try checkpoint.validateShapes(expected) }, .missingTensor(file: path, tensor: "fc/weight"))
        expected["fc/weight"] = nil
        expected["conv1/weight"] = [3, 3, 1, 4]
        let error = checkpointError { try checkpoint.validateShapes(expected) }
        XCTAssertEqual(error?.description, "conv1/weight: checkpoint has shape [3,3,1,2], model expects [3,3,1,4] (\(path))")
    }

    func testFailureAtAnyStageOfSaveLeavesTheGoodCheckpoint() throws {
        for stage in [CheckpointStore.SaveStage.tensorsWritten, .stateWritten, .manifestWritten] {
            var failing = store!
            failing.failpoint = { if $0 == stage { throw SimulatedCrash() } }
            XCTAssertThrowsError(try failing.save(step: 20, tensors: sampleTensors(scale: 2), state: Data("{}".utf8), keepLast: 1))
            XCTAssertThrowsError(try failing.save(step: 10, tensors: sampleTensors(scale: 2), state: Data("{}".utf8), keepLast: 1))
            XCTAssertEqual(try names(), ["step-00000010"], "\(stage)")
            XCTAssertEqual(try store.latest(), good)
            XCTAssertEqual(try store.load(step: 10).tensors, sampleTensors(), "\(stage)")
        }
    }

    /// An I/O failure while the checkpoint is staged names the checkpoint being written, never
    /// the hidden staging directory (a name that means nothing to a user).
    func testASaveFailureNamesTheCheckpointNotItsStagingDirectory() throws {
        var failing = store!
        let directory = store.directory
        failing.failpoint = { stage in
            guard stage == .stateWritten else { return }
            let staging = try FileManager.default.contentsOfDirectory(atPath: directory.path).first { $0.hasPrefix(".tmp-") }!
            throw CheckpointError.fileSystem(operation: "write", path: directory.appendingPathComponent(staging).path + "/state.json",
                                             reason: "No space left on device (errno 28)")
        }
        let error = checkpointError { try failing.save(step: 20, tensors: sampleTensors(), state: Data("{}".utf8), keepLast: 1) }
        XCTAssertEqual(error, .fileSystem(operation: "save checkpoint (write)",
                                          path: store.url(step: 20).path + "/state.json", reason: "No space left on device (errno 28)"))
        XCTAssertEqual(try names(), ["step-00000010"])
    }

    func testOldCheckpointsAreDeletedOnlyAfterTheNewOneIsComplete() throws {
        var failing = store!
        failing.failpoint = { if $0 == .committed { throw SimulatedCrash() } }
        XCTAssertThrowsError(try failing.save(step: 20, tensors: sampleTensors(), state: sampleState(step: 20), keepLast: 1))
        XCTAssertEqual(try store.checkpoints().map(\.step), [10, 20])
        XCTAssertEqual(try store.latest()?.step, 20)
    }

    /// Leftovers of crashed runs: a staging directory with a full manifest, a step directory
    /// without one, and a newer checkpoint with a flipped byte. `latest` skips all of them.
    func testCrashLeftoversNeverHideTheGoodCheckpoint() throws {
        let corrupt = try store.save(step: 40, tensors: sampleTensors(scale: 4), state: sampleState(step: 40), keepLast: 9)
        var bytes = try Data(contentsOf: file("state.json", of: corrupt))
        bytes[0] ^= 1
        try bytes.write(to: file("state.json", of: corrupt))
        let staging = store.directory.appendingPathComponent(".tmp-step-00000020-999-abc")
        try FileManager.default.copyItem(at: good.url, to: staging)
        let partial = store.url(step: 30)
        try FileManager.default.createDirectory(at: partial, withIntermediateDirectories: true)
        try Data(contentsOf: file("tensors.safetensors")).prefix(40).write(to: partial.appendingPathComponent("tensors.safetensors"))

        var skipped: [Int: CheckpointError] = [:]
        XCTAssertEqual(try store.latest { skipped[$0.step] = $1 }, good)
        guard case .checksumMismatch? = skipped[40], case .missingManifest? = skipped[30] else {
            return XCTFail("skipped: \(skipped)")
        }
        XCTAssertEqual(try store.loadLatest()?.tensors, sampleTensors())
        XCTAssertEqual(try store.checkpoints().map(\.step), [10, 40])

        try store.save(step: 50, tensors: sampleTensors(), state: sampleState(step: 50), keepLast: 9)
        XCTAssertEqual(try names(), ["step-00000010", "step-00000040", "step-00000050"],
                       "saving removes the staging leftover and the older incomplete directory")
    }
}
