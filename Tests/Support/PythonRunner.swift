import Foundation
import XCTest

/// The reference readers in Python (`safetensors`, `onnx`, `onnxruntime`), for cross-checks.
///
/// Runs `$EC_PYTHON` (default `python3`, looked up on `PATH`). If it cannot import the modules a
/// test needs, the test is skipped — or fails when `EC_REQUIRE_PYTHON=1` (`launch/test` sets
/// it and installs them in `.build/pyenv`: safetensors, numpy, onnx, onnxruntime).
public enum PythonRunner {
    public struct Result {
        public var status: Int32
        public var stdout: Data
        public var stderr: String
    }

    public static var python: String { ProcessInfo.processInfo.environment["EC_PYTHON"] ?? "python3" }

    /// Runs `python -c script arguments…`.
    public static func run(_ script: String, _ arguments: [String] = []) throws -> Result {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [python, "-c", script] + arguments
        let stdout = Pipe(), stderr = Pipe()
        process.standardOutput = stdout
        process.standardError = stderr
        try process.run()
        let out = stdout.fileHandleForReading.readDataToEndOfFile()
        let err = stderr.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Result(status: process.terminationStatus, stdout: out, stderr: String(decoding: err, as: UTF8.self))
    }

    /// True when Python imports every module of `modules` (`"numpy, safetensors.numpy"`); else
    /// skips the test (throws `XCTSkip`), or fails it and returns false with `EC_REQUIRE_PYTHON=1`.
    public static func require(_ modules: String, file: StaticString = #filePath, line: UInt = #line) throws -> Bool {
        let result = try? run("import \(modules)")
        if let result, result.status == 0 { return true }
        let message = "Python cross-check needs `\(python)` (EC_PYTHON) with \(modules): "
            + (result?.stderr.split(separator: "\n").last.map(String.init) ?? "could not run it")
            + " (setup: python3 -m venv .build/pyenv && .build/pyenv/bin/pip install safetensors numpy onnx onnxruntime)"
        if ProcessInfo.processInfo.environment["EC_REQUIRE_PYTHON"] == "1" {
            XCTFail(message, file: file, line: line)
            return false
        }
        throw XCTSkip(message)
    }

    /// Runs `script` and decodes the JSON object it prints; fails the test on a non-zero exit.
    public static func json(_ script: String, _ arguments: [String], file: StaticString = #filePath,
                            line: UInt = #line) throws -> [String: Any] {
        let result = try run(script, arguments)
        XCTAssertEqual(result.status, 0, result.stderr, file: file, line: line)
        return try XCTUnwrap(JSONSerialization.jsonObject(with: result.stdout) as? [String: Any],
                             String(decoding: result.stdout, as: UTF8.self) + result.stderr, file: file, line: line)
    }

    /// Checks an ONNX file with the reference tools and runs it: `onnx.checker.check_model(…,
    /// full_check=True)`, then ONNX Runtime (CPU) on the `input` tensor of the safetensors file
    /// `inputs` (fed to the model's first input, whatever its name), writing the first output
    /// as `logits` to the safetensors file `outputs`. Prints (decoded here) `opset`, `ops`
    /// (node op types), `input` (name, shape), `output` (name) and, when `inputs` has
    /// `labels`, `accuracy`.
    public static func runONNX(model: String, inputs: String, outputs: String, file: StaticString = #filePath,
                               line: UInt = #line) throws -> [String: Any] {
        try json(onnxScript, [model, inputs, outputs], file: file, line: line)
    }

    static let onnxScript = """
        import json, sys
        import numpy as np, onnx, onnxruntime as ort
        from safetensors.numpy import load_file, save_file
        model = onnx.load(sys.argv[1])
        onnx.checker.check_model(model, full_check=True)
        data = load_file(sys.argv[2])
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        session = ort.InferenceSession(sys.argv[1], options, providers=["CPUExecutionProvider"])
        x = data["input"]
        name_in, name_out = session.get_inputs()[0].name, session.get_outputs()[0].name
        logits = np.concatenate([session.run([name_out], {name_in: x[i:i + 500]})[0] for i in range(0, len(x), 500)])
        save_file({"logits": logits.astype(np.float32)}, sys.argv[3])
        result = {"opset": [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")][0],
                  "ops": sorted({n.op_type for n in model.graph.node}),
                  "input": {"name": name_in, "shape": [d if isinstance(d, int) else None for d in session.get_inputs()[0].shape]},
                  "output": name_out}
        if "labels" in data:
            result["accuracy"] = float((logits.argmax(axis=1) == data["labels"].astype(np.int64)).mean())
        print(json.dumps(result))
        """
}
