import ECReport
import Foundation
import ECCheckpoint
import ECCompression
import ECTensor

/// `easycompress inspect PATH`: what a checkpoint directory, a save_dir (its newest checkpoint)
/// or a `.safetensors` file (ours, an int8 export, Keras weights) holds, per tensor.
///
/// Every tensor except the optimizer state and the compressors' own parts (`optimizer/…`,
/// `pruner/…`, `quantizer/…`, `sparsifier/…`) is a row: shape, dtype, element count and
/// sparsity — the fraction of exact zeros, counted from the values, so pruned channels,
/// sparsifier masks applied to weights and int8 zero codes all show without knowing who made
/// them. The compressor parts add columns to the layer they belong to:
/// - `pruner/keep/<group>` → `channels` kept / total, on every tensor of the group's producers;
/// - `quantizer/step/weight:<layer>` (`winograd_weight:<layer>` for an `int8_winograd` layer;
///   an int8 export's `<layer>/weight_scale` / `winograd_weight_scale`) and
///   `…input:<layer>` → weight and activation step sizes; bit widths come from the save_dir's
///   `summary.json` (`quantizer.layers`) or the int8 export's plan, when present.
public struct CheckpointInspection: Codable, Equatable {
    public struct Row: Codable, Equatable {
        public var name: String
        public var shape: [Int]
        public var dtype: String
        public var elements: Int
        public var zeros: Int
        public var sparsity: Double
        /// Kept channels of the layer's pruning group, `[kept, total]`.
        public var channels: [Int]?
        public var wbits: Int?
        public var bits: Int?
        public var weightScale: [Double]?
        public var activationScale: Double?

        enum CodingKeys: String, CodingKey {
            case name, shape, dtype, elements, zeros, sparsity, channels, wbits, bits
            case weightScale = "weight_scale", activationScale = "activation_scale"
        }
    }

    /// The file the tensors were read from.
    public var file: String
    /// The checkpoint's step (nil for a bare file).
    public var step: Int?
    /// The zoo model named in the checkpoint's state (nil for a bare file).
    public var model: String?
    public var rows: [Row]
    /// Tensors under `optimizer/` and compressor prefixes, counted but not listed.
    public var otherTensors: Int
    public var totalElements: Int
    public var totalZeros: Int
    public var sparsity: Double
    /// Newer checkpoints of the save_dir that failed verification, with the reason (the one
    /// shown is the newest valid one).
    public var skippedCheckpoints: [String] = []

    enum CodingKeys: String, CodingKey {
        case file, step, model, rows = "tensors", otherTensors = "other_tensors", totalElements = "total_elements"
        case totalZeros = "total_zeros", sparsity, skippedCheckpoints = "skipped_checkpoints"
    }

    static let statePrefixes = ["optimizer/", "pruner/", "quantizer/", "sparsifier/"]

    /// Reads `path`.
    ///
    /// - Throws: `TrainingError.incompatibleWeights` for a missing path or a directory that is
    ///   neither a checkpoint nor a save_dir; `CheckpointError` for a corrupt or truncated
    ///   checkpoint or file (the store verifies sizes and checksums first).
    public static func read(_ path: String) throws -> CheckpointInspection {
        let url = URL(fileURLWithPath: path)
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw TrainingError.incompatibleWeights(source: path, reason: "no such file or directory")
        }
        var checkpoint: Checkpoint?
        var saveDir: URL?
        var skipped: [String] = []
        if isDirectory.boolValue {
            let fm = FileManager.default
            if fm.fileExists(atPath: url.appendingPathComponent("checkpoints").path) {
                checkpoint = try SavedRun.requireLatestCheckpoint(in: path) { skipped.append("\($0.url.path): \($1)") }
                saveDir = url
            } else if fm.fileExists(atPath: url.appendingPathComponent("manifest.json").path) {
                checkpoint = try CheckpointStore(directory: url.deletingLastPathComponent()).load(url)
                saveDir = url.deletingLastPathComponent().deletingLastPathComponent()
            } else {
                throw TrainingError.incompatibleWeights(
                    source: path, reason: "neither a checkpoint directory (no manifest.json) "
                        + "nor a save_dir (no checkpoints/)")
            }
        }
        let file = checkpoint?.tensorsPath ?? path
        let st = try SafeTensors.read(from: URL(fileURLWithPath: file))
        let state = try checkpoint.map { try SavedRun.jobState(of: $0) }

        // What the compressors' parts say per layer.
        var channels: [String: [Int]] = [:]
        for name in st.names where name.hasPrefix("pruner/keep/") {
            guard let flags = st[name]?.tensor?.scalars else { continue }
            let kept = [flags.filter { $0 != 0 }.count, flags.count]
            for producer in name.dropFirst("pruner/keep/".count).split(separator: "+") { channels[String(producer)] = kept }
        }
        var weightScales: [String: [Double]] = [:], activationScales: [String: Double] = [:]
        for name in st.names {
            guard let values = st[name]?.tensor?.scalars.map(Double.init) else { continue }
            if name.hasPrefix("quantizer/step/weight:") { weightScales[String(name.dropFirst("quantizer/step/weight:".count))] = values }
            // Winograd layers (int8_winograd): the step of the kernel in the Winograd domain.
            if name.hasPrefix("quantizer/step/winograd_weight:") {
                weightScales[String(name.dropFirst("quantizer/step/winograd_weight:".count))] = values
            }
            if name.hasSuffix("/winograd_weight_scale") { weightScales[String(name.dropLast("/winograd_weight_scale".count))] = values }
            if name.hasPrefix("quantizer/step/input:") { activationScales[String(name.dropFirst("quantizer/step/input:".count))] = values.first }
            if name.hasSuffix("/weight_scale") { weightScales[String(name.dropLast("/weight_scale".count))] = values }
            if name.hasSuffix("/input_scale") { activationScales[String(name.dropLast("/input_scale".count))] = values.first }
        }
        let bits = bitWidths(saveDir: saveDir, metadata: st.metadata)

        var rows: [Row] = [], other = 0
        for name in st.names {
            let entry = st[name]!
            if statePrefixes.contains(where: name.hasPrefix) {
                other += 1
                continue
            }
            let zeros = zeroCount(entry)
            let layer = name.split(separator: "/").dropLast().joined(separator: "/")
            let isKernel = name.hasSuffix("/weight") || name.hasSuffix("/weight_int8") || name.hasSuffix("/winograd_weight_int8")
            rows.append(Row(name: name, shape: entry.shape, dtype: entry.dtype.rawValue, elements: entry.elementCount, zeros: zeros,
                            sparsity: entry.elementCount == 0 ? 0 : Double(zeros) / Double(entry.elementCount),
                            channels: channels[layer], wbits: isKernel ? bits[layer]?.wbits : nil,
                            bits: isKernel ? bits[layer]?.bits : nil, weightScale: isKernel ? weightScales[layer] : nil,
                            activationScale: isKernel ? activationScales[layer] : nil))
        }
        let elements = rows.reduce(0) { $0 + $1.elements }, zeros = rows.reduce(0) { $0 + $1.zeros }
        var inspection = CheckpointInspection(file: file, step: checkpoint?.step, model: state?.model, rows: rows, otherTensors: other,
                                    totalElements: elements, totalZeros: zeros,
                                    sparsity: elements == 0 ? 0 : Double(zeros) / Double(elements))
        inspection.skippedCheckpoints = skipped
        return inspection
    }

    /// Exact zeros among the entry's values (any numeric dtype).
    static func zeroCount(_ entry: SafeTensorsEntry) -> Int {
        let size = entry.dtype.byteSize
        let isFloat = [.f16, .bf16, .f32, .f64].contains(entry.dtype)
        let bytes = [UInt8](entry.bytes)
        var zeros = 0
        for e in 0..<entry.elementCount {
            let element = bytes[(e * size)..<((e + 1) * size)]
            // ±0.0 of a float: at most the sign bit (the top bit of the last byte) is set.
            if element.dropLast().allSatisfy({ $0 == 0 }) && (element.last == 0 || (isFloat && element.last == 0x80)) { zeros += 1 }
        }
        return zeros
    }

    /// Bit widths per layer from the save_dir's summary.json or an int8 export's plan.
    static func bitWidths(saveDir: URL?, metadata: [String: String]) -> [String: (wbits: Int, bits: Int)] {
        var out: [String: (wbits: Int, bits: Int)] = [:]
        if let text = metadata["quantization_plan"], let plan = try? JSONDecoder().decode(QuantizationPlan.self, from: Data(text.utf8)) {
            for q in plan.quantized { out[q.layer] = (q.weight.bits, q.input.bits) }
        }
        if let saveDir, let data = try? Data(contentsOf: saveDir.appendingPathComponent("summary.json")),
           let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
           let layers = (object["quantizer"] as? [String: Any])?["layers"] as? [[String: Any]] {
            for l in layers {
                if let name = l["layer"] as? String, let w = l["wbits"] as? Int, let b = l["bits"] as? Int { out[name] = (w, b) }
            }
        }
        return out
    }

    /// The table `easycompress inspect` prints, with a totals line.
    public var table: String {
        func scales(_ s: [Double]?) -> String {
            guard let s, !s.isEmpty else { return "" }
            return s.count == 1 ? String(format: "%.4g", s[0]) : String(format: "%.3g…%.3g (%d)", s.min()!, s.max()!, s.count)
        }
        var lines = [["tensor", "shape", "dtype", "elements", "sparsity", "channels", "wbits/bits", "weight step", "act step"]]
        for r in rows {
            lines.append([r.name, "[" + r.shape.map(String.init).joined(separator: ", ") + "]", r.dtype, "\(r.elements)",
                          String(format: "%.1f%%", r.sparsity * 100), r.channels.map { "\($0[0])/\($0[1])" } ?? "",
                          r.wbits.map { w in "\(w)/\(r.bits.map(String.init) ?? "?")" } ?? "", scales(r.weightScale),
                          r.activationScale.map { String(format: "%.4g", $0) } ?? ""])
        }
        var header = file
        if let step { header += ", step \(step)" }
        if let model { header += ", \(model)" }
        let total = String(format: "%d tensors, %d elements, %d zeros (sparsity %.2f%%); %d optimizer/compressor tensors not listed",
                           rows.count, totalElements, totalZeros, sparsity * 100, otherTensors)
        let warnings = skippedCheckpoints.map { "skipped (failed verification) \($0)\n" }.joined()
        return warnings + header + "\n" + TextTable.render(lines) + "\n" + total
    }
}
