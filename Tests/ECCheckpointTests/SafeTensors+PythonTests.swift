import ECCheckpoint
import ECTestSupport
import ECTensor
import Foundation
import XCTest

/// Cross-checks with the reference implementation, the Python `safetensors` package.
///
/// Runs `$EC_PYTHON` (default `python3`, looked up on `PATH`). If it cannot import
/// `safetensors.numpy` and `numpy`, the tests are skipped — or fail when `EC_REQUIRE_PYTHON=1`
/// (set it in CI). Setup: `python3 -m venv .build/pyenv && .build/pyenv/bin/pip install
/// safetensors numpy`, then `EC_PYTHON=.build/pyenv/bin/python`.
final class SafeTensorsPythonTests: XCTestCase {
    private func requireSafetensors(file: StaticString = #filePath, line: UInt = #line) throws -> Bool {
        try PythonRunner.require("numpy, safetensors.numpy", file: file, line: line)
    }

    func testPythonReadsWhatSwiftWrites() throws {
        guard try requireSafetensors() else { return }
        var file = SafeTensors(tensors: NamedTensors([
            ("conv1/weight", Tensor(shape: [2, 3], scalars: [1, -2, 3.5, 0, 0.25, -8])),
            ("scale", Tensor(scalar: 0.125)),
            ("empty", Tensor(shape: [0, 3])),
        ]), metadata: ["format": "pt", "note": "ünï \"q\""])
        file["q"] = SafeTensorsEntry(shape: [4], values: [Int8(-128), -1, 0, 127])
        file["mask"] = SafeTensorsEntry(shape: [3], values: [UInt8(1), 0, 255])
        file["idx"] = SafeTensorsEntry(shape: [2], values: [Int32(-7), Int32.max])
        file["big"] = SafeTensorsEntry(shape: [1], values: [Int64(-(1 << 62))])
        file["ema"] = SafeTensorsEntry(shape: [2], values: [0.5, -0.25])
        let url = try makeTemporaryDirectory(self).appendingPathComponent("swift.safetensors")
        try file.write(to: url)

        let script = """
        import json, sys
        from safetensors import safe_open
        from safetensors.numpy import load_file
        tensors = load_file(sys.argv[1])
        with safe_open(sys.argv[1], framework="np") as f:
            metadata = f.metadata()
        print(json.dumps({"metadata": metadata, "tensors": {name: {"dtype": str(t.dtype), "shape": list(t.shape),
            "values": t.astype("float64").ravel().tolist()} for name, t in tensors.items()}}))
        """
        let output = try PythonRunner.json(script, [url.path])
        XCTAssertEqual(output["metadata"] as? [String: String], file.metadata)
        let tensors = try XCTUnwrap(output["tensors"] as? [String: [String: Any]])
        XCTAssertEqual(Set(tensors.keys), Set(file.names))
        let numpyNames: [SafeTensorsDType: String] = [.f32: "float32", .i8: "int8", .u8: "uint8", .i32: "int32",
                                                      .i64: "int64", .f64: "float64"]
        for name in file.names {
            let entry = file[name]!
            XCTAssertEqual(tensors[name]?["dtype"] as? String, numpyNames[entry.dtype], name)
            XCTAssertEqual(tensors[name]?["shape"] as? [Int], entry.shape, name)
            XCTAssertEqual(tensors[name]?["values"] as? [Double], doubles(entry), name)
        }
    }

    func testSwiftReadsWhatPythonWrites() throws {
        guard try requireSafetensors() else { return }
        let url = try makeTemporaryDirectory(self).appendingPathComponent("python.safetensors")
        let script = """
        import sys
        import numpy as np
        from safetensors.numpy import save_file
        save_file({
            "conv/weight": np.arange(24, dtype=np.float32).reshape(2, 3, 4) / np.float32(8) - np.float32(1),
            "scalar": np.array(2.5, dtype=np.float32),
            "empty": np.zeros((0, 2), dtype=np.float32),
            "q": np.array([-128, -1, 0, 127], dtype=np.int8),
            "mask": np.array([[1, 0], [0, 1]], dtype=np.uint8),
            "idx": np.array([-7, 2**31 - 1], dtype=np.int32),
            "big": np.array([-2**63, 2**62], dtype=np.int64),
            "ema": np.array([np.pi, -0.1], dtype=np.float64),
        }, sys.argv[1], metadata={"step": "120", "note": "ünï"})
        """
        let result = try PythonRunner.run(script, [url.path])
        XCTAssertEqual(result.status, 0, result.stderr)

        let file = try SafeTensors.read(from: url)
        XCTAssertEqual(file.metadata, ["step": "120", "note": "ünï"])
        XCTAssertEqual(file["conv/weight"]?.tensor, Tensor(shape: [2, 3, 4], scalars: (0..<24).map { Float($0) / 8 - 1 }))
        XCTAssertEqual(file["scalar"]?.tensor, Tensor(scalar: 2.5))
        XCTAssertEqual(file["empty"]?.tensor, Tensor(shape: [0, 2]))
        XCTAssertEqual(file["q"]?.values(as: Int8.self), [-128, -1, 0, 127])
        XCTAssertEqual(file["mask"]?.shape, [2, 2])
        XCTAssertEqual(file["mask"]?.values(as: UInt8.self), [1, 0, 0, 1])
        XCTAssertEqual(file["idx"]?.values(as: Int32.self), [-7, Int32.max])
        XCTAssertEqual(file["big"]?.values(as: Int64.self), [Int64.min, 1 << 62])
        XCTAssertEqual(file["ema"]?.values(as: Double.self), [Double.pi, -0.1])
    }

    func testPythonReadsACheckpoint() throws {
        guard try requireSafetensors() else { return }
        let store = CheckpointStore(directory: try makeTemporaryDirectory(self))
        let saved = try store.save(step: 3, tensors: sampleTensors(), extraEntries: sampleExtras,
                                   state: sampleState(step: 3), keepLast: 1)
        let script = """
        import json, sys
        from safetensors.numpy import load_file
        print(json.dumps({name: float(t.astype("float64").sum()) for name, t in load_file(sys.argv[1]).items()}))
        """
        let sums = try PythonRunner.json(script, [saved.url.appendingPathComponent("tensors.safetensors").path])
        XCTAssertEqual(sums as? [String: Double], ["conv1/weight": 153, "conv1/bias": 0, "quant/step": Double(Float(0.01)),
                                                   "conv1/mask": 1, "conv1/weight_int8": 1])
    }

    private func doubles(_ entry: SafeTensorsEntry) -> [Double] {
        switch entry.dtype {
        case .f32: return entry.tensor!.scalars.map(Double.init)
        case .i8: return entry.values(as: Int8.self)!.map(Double.init)
        case .u8: return entry.values(as: UInt8.self)!.map(Double.init)
        case .i32: return entry.values(as: Int32.self)!.map(Double.init)
        case .i64: return entry.values(as: Int64.self)!.map(Double.init)
        case .f64: return entry.values(as: Double.self)!
        default: return []
        }
    }
}
