@testable import ECCheckpoint
import ECTensor
import Foundation
import XCTest

/// Model tensors, extra entries and state as a training job would checkpoint them.
func sampleTensors(scale: Float = 1) -> NamedTensors {
    NamedTensors([("conv1/weight", Tensor(shape: [3, 3, 1, 2], scalars: (0..<18).map { Float($0) * scale })),
                  ("conv1/bias", Tensor(shape: [2], scalars: [0.5, -0.5])),
                  ("quant/step", Tensor(scalar: 0.01))])
}

let sampleExtras = ["conv1/mask": SafeTensorsEntry(shape: [2], values: [UInt8(1), 0]),
                    "conv1/weight_int8": SafeTensorsEntry(shape: [2], values: [Int8(-3), 4])]

func sampleState(step: Int) -> Data { Data(#"{"step": \#(step), "epoch": 1, "rng": [1, 2]}"#.utf8) }

final class CheckpointStoreTests: XCTestCase {
    private func makeStore() throws -> CheckpointStore {
        CheckpointStore(directory: try makeTemporaryDirectory(self).appendingPathComponent("run/checkpoints"))
    }

    private func names(_ store: CheckpointStore) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: store.directory.path).sorted()
    }

    func testSaveThenLoadRoundTripsEverything() throws {
        let store = try makeStore()
        let saved = try store.save(step: 120, tensors: sampleTensors(), extraEntries: sampleExtras,
                                   state: sampleState(step: 120), keepLast: 3)
        XCTAssertEqual(saved, CheckpointReference(step: 120, url: store.url(step: 120)))
        XCTAssertEqual(saved.url.lastPathComponent, "step-00000120")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: saved.url.path).sorted(),
                       ["manifest.json", "state.json", "tensors.safetensors"])

        let loaded = try store.load(step: 120)
        XCTAssertEqual(loaded.step, 120)
        XCTAssertEqual(loaded.tensors, sampleTensors())
        XCTAssertEqual(loaded.extraEntries, sampleExtras)
        XCTAssertEqual(loaded.state, sampleState(step: 120))
        XCTAssertEqual(try store.load(saved.url).tensors, sampleTensors())
        XCTAssertEqual(try store.latest(), saved)
        try loaded.validateShapes(["conv1/weight": [3, 3, 1, 2], "conv1/bias": [2], "quant/step": []])
    }

    func testManifestRecordsVersionStepSizesAndChecksums() throws {
        let store = try makeStore()
        let saved = try store.save(step: 7, tensors: sampleTensors(), state: sampleState(step: 7), keepLast: 1)
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: saved.url.appendingPathComponent("manifest.json")))
        let manifest = try XCTUnwrap(json as? [String: Any])
        XCTAssertEqual(manifest["format_version"] as? Int, 1)
        XCTAssertEqual(manifest["step"] as? Int, 7)
        let files = try XCTUnwrap(manifest["files"] as? [[String: Any]])
        let state = try XCTUnwrap(files.first { $0["name"] as? String == "state.json" })
        XCTAssertEqual(state["bytes"] as? Int, sampleState(step: 7).count)
        XCTAssertEqual(state["xxh64"] as? String, XXHash64.hexDigest(XXHash64.hash(sampleState(step: 7))))
        let tensors = try SafeTensors.read(from: saved.url.appendingPathComponent("tensors.safetensors"))
        XCTAssertEqual(tensors.metadata, ["step": "7"])
    }

    func testKeepsTheLastKCheckpoints() throws {
        let store = try makeStore()
        for step in stride(from: 0, through: 50, by: 10) {
            try store.save(step: step, tensors: sampleTensors(scale: Float(step)), state: sampleState(step: step), keepLast: 3)
        }
        XCTAssertEqual(try names(store), ["step-00000030", "step-00000040", "step-00000050"])
        XCTAssertEqual(try store.checkpoints().map(\.step), [30, 40, 50])
        XCTAssertEqual(try store.load(step: 40).tensors, sampleTensors(scale: 40))
        try store.save(step: 60, tensors: sampleTensors(), state: sampleState(step: 60), keepLast: 1)
        XCTAssertEqual(try names(store), ["step-00000060"])
    }

    func testNewCheckpointIsKeptEvenBelowLaterSteps() throws {
        let store = try makeStore()
        for step in [100, 200] { try store.save(step: step, tensors: sampleTensors(), state: sampleState(step: step), keepLast: 5) }
        try store.save(step: 150, tensors: sampleTensors(), state: sampleState(step: 150), keepLast: 2)
        XCTAssertEqual(try store.checkpoints().map(\.step), [150, 200])
    }

    func testSavingTheSameStepReplacesIt() throws {
        let store = try makeStore()
        try store.save(step: 5, tensors: sampleTensors(scale: 1), state: sampleState(step: 5), keepLast: 2)
        try store.save(step: 5, tensors: sampleTensors(scale: 2), state: Data("{}".utf8), keepLast: 2)
        XCTAssertEqual(try names(store), ["step-00000005"])
        XCTAssertEqual(try store.load(step: 5).tensors, sampleTensors(scale: 2))
        XCTAssertEqual(try store.load(step: 5).state, Data("{}".utf8))
    }

    func testInvalidArgumentsAndNameClashes() throws {
        let store = try makeStore()
        XCTAssertEqual(checkpointError { try store.save(step: 1, tensors: sampleTensors(), state: Data(), keepLast: 0) },
                       .invalidArgument(name: "keepLast", value: "0", expected: "≥ 1"))
        XCTAssertEqual(checkpointError { try store.save(step: -1, tensors: sampleTensors(), state: Data(), keepLast: 1) },
                       .invalidArgument(name: "step", value: "-1", expected: "≥ 0"))
        let clash = ["conv1/bias": SafeTensorsEntry(shape: [1], values: [UInt8(1)])]
        let error = checkpointError {
            try store.save(step: 1, tensors: sampleTensors(), extraEntries: clash, state: Data(), keepLast: 1)
        }
        guard case .duplicateTensor(_, "conv1/bias")? = error else { return XCTFail("got \(String(describing: error))") }
        XCTAssertNil(try store.latest())
    }

    func testEmptyOrMissingStore() throws {
        let store = try makeStore()
        XCTAssertNil(try store.latest())
        XCTAssertNil(try store.loadLatest())
        XCTAssertEqual(try store.checkpoints(), [])
        XCTAssertEqual(checkpointError { try store.load(step: 3) },
                       .checkpointNotFound(directory: store.directory.path, step: 3))
    }

    func testDirectoryNames() {
        XCTAssertEqual(CheckpointStore.directoryName(step: 120), "step-00000120")
        XCTAssertEqual(CheckpointStore.directoryName(step: 123_456_789), "step-123456789")
        XCTAssertEqual(CheckpointStore.step(fromDirectoryName: "step-00000120"), 120)
        for name in ["step-", "step-12a", ".tmp-step-00000120-1-2", "step--1", "steps-1"] {
            XCTAssertNil(CheckpointStore.step(fromDirectoryName: name), name)
        }
    }
}
