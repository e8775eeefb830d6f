import ECCheckpoint
import Foundation

extension QuantizationPlan {
    /// Writes `dir/quantization_plan.json` (pretty-printed, keys sorted), creating `dir` if
    /// needed. The file is replaced atomically (written aside, then renamed over the old one):
    /// a reader never sees half a plan.
    ///
    /// - Throws: `QuantizationPlanError.io` when the directory or the file cannot be written.
    public func write(to dir: URL) throws {
        let url = dir.appendingPathComponent(Self.fileName)
        do {
            let data = try VersionedJSON.encode(self, pretty: true)
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            try AtomicFile.write(data, to: url)
        } catch {
            throw QuantizationPlanError.io(path: url.path, operation: "write", reason: VersionedJSON.describe(error))
        }
    }

    /// Reads and checks `dir/quantization_plan.json`.
    ///
    /// - Throws: `QuantizationPlanError`: `io` (no such file, unreadable), `unsupportedVersion`
    ///   (checked before the other fields, which another version may lay out differently),
    ///   `malformed` (not JSON, a key missing or of the wrong type, an unknown FP32 reason),
    ///   `invalidField` (see `check(path:)`).
    public static func read(from dir: URL) throws -> QuantizationPlan {
        let url = dir.appendingPathComponent(fileName)
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            let reason = FileManager.default.fileExists(atPath: url.path) ? VersionedJSON.describe(error) : "no such file"
            throw QuantizationPlanError.io(path: url.path, operation: "read", reason: reason)
        }
        return try decode(data, path: url.path)
    }

    /// Decodes and checks a plan's JSON (a file's, or an export's metadata), `path` naming its
    /// origin in errors.
    ///
    /// - Throws: `QuantizationPlanError` as `read(from:)`.
    public static func decode(_ data: Data, path: String) throws -> QuantizationPlan {
        let plan: QuantizationPlan
        do {
            plan = try VersionedJSON.decode(QuantizationPlan.self, from: data, version: currentFormatVersion)
        } catch let .unsupportedVersion(found, supported) {
            throw QuantizationPlanError.unsupportedVersion(path: path, found: found, supported: supported)
        } catch let .malformed(reason) {
            throw QuantizationPlanError.malformed(path: path, reason: reason)
        }
        try plan.check(path: path)
        return plan
    }

    /// The checks a plan read from `path` must pass: a model name; layers named, of a
    /// quantizable op type, each listed once; weights under their layer's scope and signed;
    /// every bit width in [1, 8]; a layer that reads the image quantizes its input unsigned.
    ///
    /// - Throws: `QuantizationPlanError.invalidField` naming the first bad field.
    func check(path: String) throws {
        func fail(_ field: String, _ reason: String) -> QuantizationPlanError {
            .invalidField(path: path, field: field, reason: reason)
        }
        func checkBits(_ field: String, _ bits: Int) throws {
            let range = QuantizerConfig.bitRange
            guard range.contains(bits) else {
                throw fail(field, "must be in [\(range.lowerBound), \(range.upperBound)], got \(bits)")
            }
        }
        guard !model.isEmpty else { throw fail("model", "is empty") }
        var seen = Set<String>()
        func checkLayer(_ field: String, _ layer: String, _ opType: String) throws {
            guard !layer.isEmpty else { throw fail("\(field).layer", "is empty") }
            guard seen.insert(layer).inserted else { throw fail("\(field).layer", "'\(layer)' is listed twice") }
            guard QuantizerConfig.quantizableOpTypes.contains(opType) else {
                let allowed = QuantizerConfig.quantizableOpTypes.joined(separator: ", ")
                throw fail("\(field).op_type", "must be one of \(allowed), got '\(opType)'")
            }
        }
        for (i, entry) in quantized.enumerated() {
            let field = "quantized[\(i)]"
            try checkLayer(field, entry.layer, entry.opType)
            let parameter = entry.weight.parameter
            guard ScopeFilter.scope(entry.layer, matches: parameter), parameter != entry.layer else {
                throw fail("\(field).weight.parameter", "'\(parameter)' is not a parameter of layer '\(entry.layer)'")
            }
            try checkBits("\(field).weight.bits", entry.weight.bits)
            guard entry.weight.signed else { throw fail("\(field).weight.signed", "must be true (weights are signed)") }
            try checkBits("\(field).input.bits", entry.input.bits)
            if entry.readsModelInput && entry.input.signed {
                throw fail("\(field).input.signed",
                           "must be false for a layer that reads the model input (pixels ≥ 0)")
            }
            if let output = entry.output { try checkBits("\(field).output.bits", output.bits) }
        }
        for (i, entry) in fp32.enumerated() {
            try checkLayer("fp32[\(i)]", entry.layer, entry.opType)
        }
    }
}
