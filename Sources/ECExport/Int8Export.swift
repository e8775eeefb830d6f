import ECCheckpoint
import ECCompression
import ECNN
import ECTensor
import Foundation

/// A file written by `Int8Export` that cannot be read back into a model.
public enum Int8ExportError: Error, Equatable, CustomStringConvertible {
    /// The file lacks an entry the model needs.
    case missingEntry(file: String, entry: String)
    /// An entry has another dtype or shape than the model needs.
    case entryMismatch(file: String, entry: String, expected: String, found: String)
    /// `__metadata__` lacks the format marker or the plan, or they are unreadable.
    case metadata(file: String, reason: String)

    public var description: String {
        switch self {
        case let .missingEntry(file, entry):
            return "\(file): int8 export has no entry '\(entry)' (the model needs it; was the file written for this model?)"
        case let .entryMismatch(file, entry, expected, found):
            return "\(file): int8 export entry '\(entry)' is \(found), the model expects \(expected)"
        case let .metadata(file, reason):
            return "\(file): int8 export metadata: \(reason)"
        }
    }
}

/// Writes and reads a quantized model with real integer weights (the quantizer's `export` mode), as
/// safetensors:
///
/// - per Winograd layer (`int8_winograd`): `<layer>/winograd_weight_int8` (I8 `[16, cin, cout]`,
///   codes of `U = G g Gᵀ`), `<layer>/winograd_weight_scale`, `<layer>/tile_scale` (F32 `[1]`,
///   the transformed input tiles' step), `<layer>/input_scale`, `<layer>/bias`;
/// - per other quantized layer: `<layer>/weight_int8` (I8, the kernel's shape, codes `level(w/s_w)`),
///   `<layer>/weight_scale` (F32 `[1]` or `[C]`), `<layer>/input_scale` (F32 `[1]`),
///   `<layer>/output_scale` (F32 `[1]`, `post_quant` only), `<layer>/bias` (F32 `[C]`);
/// - every other parameter (FP32 layers' kernels and biases) as F32 under its own name;
/// - `__metadata__`: `format` = `easycompression-int8`, `format_version` = `1`,
///   `quantization_plan` = the plan's JSON (bit widths and signedness of every grid).
///
/// Reading it back into a model skeleton of the same architecture gives an `Int8Model` whose
/// outputs are identical to the written one's.
public enum Int8Export {
    public static let format = "easycompression-int8"
    public static let formatVersion = 1

    /// Exports `model` as `quantizer` (prepared on it) quantizes it now.
    ///
    /// - Throws: `Int8ModelError` (unprepared quantizer, unsupported model), `CheckpointError`
    ///   when the file cannot be written.
    public static func write(model: Model, quantizer: LSQQuantizer, to url: URL) throws {
        try write(try Int8Model(model: model, quantizer: quantizer), to: url)
    }

    /// Writes `int8` (its integer layers and its skeleton's other parameters).
    public static func write(_ int8: Int8Model, to url: URL) throws {
        var entries: [String: SafeTensorsEntry] = [:]
        var kernels = Set<String>()
        for q in int8.plan.quantized {
            kernels.insert(q.weight.parameter)
            let inputScale: Float, bias: [Float]?, outputScale: Float?
            if let l = int8.winogradLayers[q.layer] {
                entries["\(q.layer)/winograd_weight_int8"] = SafeTensorsEntry(shape: [16] + l.weightShape.suffix(2), values: l.kernelCodes)
                entries["\(q.layer)/winograd_weight_scale"] = SafeTensorsEntry(shape: [l.kernelScale.count], values: l.kernelScale)
                entries["\(q.layer)/tile_scale"] = SafeTensorsEntry(shape: [1], values: [l.tileScale])
                (inputScale, bias, outputScale) = (l.inputScale, l.bias, l.outputScale)
            } else {
                let l = int8.layers[q.layer]!
                entries["\(q.layer)/weight_int8"] = SafeTensorsEntry(shape: l.weightShape, values: l.weights)
                entries["\(q.layer)/weight_scale"] = SafeTensorsEntry(shape: [l.weightScale.count], values: l.weightScale)
                (inputScale, bias, outputScale) = (l.inputScale, l.bias, l.output?.scale)
            }
            entries["\(q.layer)/input_scale"] = SafeTensorsEntry(shape: [1], values: [inputScale])
            if let o = outputScale { entries["\(q.layer)/output_scale"] = SafeTensorsEntry(shape: [1], values: [o]) }
            if let b = bias { entries["\(q.layer)/bias"] = SafeTensorsEntry(shape: [b.count], values: b) }
        }
        for p in int8.skeleton.parameters where !kernels.contains(p.name) && entries[p.name] == nil {
            entries[p.name] = SafeTensorsEntry(p.value)
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let plan = String(decoding: try encoder.encode(int8.plan), as: UTF8.self)
        try SafeTensors(entries: entries, metadata: ["format": format, "format_version": "\(formatVersion)",
                                                     "quantization_plan": plan]).write(to: url)
    }
}

extension Int8Model {
    /// Reads an `Int8Export` file into `skeleton` (same architecture as the exported model):
    /// its FP32 parameters are overwritten with the file's, its quantized layers become
    /// `Int8Layer`s.
    ///
    /// - Throws: `Int8ExportError` for a missing entry, an entry of the wrong dtype or shape, or
    ///   missing/unreadable metadata; `CheckpointError` for an unreadable file; `Int8ModelError`
    ///   when the plan does not fit the skeleton.
    public static func load(from url: URL, model skeleton: Model) throws -> Int8Model {
        let file = url.path
        let st = try SafeTensors.read(from: url)
        guard st.metadata["format"] == Int8Export.format else {
            throw Int8ExportError.metadata(file: file, reason: "format is \(st.metadata["format"] ?? "missing"), expected \(Int8Export.format)")
        }
        guard st.metadata["format_version"] == "\(Int8Export.formatVersion)" else {
            throw Int8ExportError.metadata(file: file, reason: "format_version \(st.metadata["format_version"] ?? "missing") "
                                           + "is not supported (this build reads \(Int8Export.formatVersion))")
        }
        let plan: QuantizationPlan
        do {  // decoded and checked (bit widths 1…8, layers, signedness) before any layer is built
            plan = try QuantizationPlan.decode(Data((st.metadata["quantization_plan"] ?? "").utf8), path: "quantization_plan")
        } catch {
            throw Int8ExportError.metadata(file: file, reason: "quantization_plan is missing or not a valid plan (\(error))")
        }

        func entry<S: SafeTensorsScalar>(_ name: String, _: S.Type, shape: [Int]) throws -> [S] {
            guard let e = st[name] else { throw Int8ExportError.missingEntry(file: file, entry: name) }
            guard e.shape == shape, let values = e.values(as: S.self) else {
                throw Int8ExportError.entryMismatch(file: file, entry: name, expected: "\(S.safeTensorsDType.rawValue) \(shape)",
                                                    found: "\(e.dtype.rawValue) \(e.shape)")
            }
            return values
        }

        var layers: [String: Int8Layer] = [:], winograd: [String: Int8WinogradLayer] = [:]
        var kernels = Set<String>()
        func checkCodes(_ codes: [Int8], _ name: String, _ range: QuantRange) throws {
            if let bad = codes.first(where: { Float($0) < -range.qn || Float($0) > range.qp }) {
                throw Int8ExportError.entryMismatch(file: file, entry: name, expected: "codes in \(range)", found: "code \(bad)")
            }
        }
        func checkSteps(_ steps: [Float], _ layer: String) throws {
            if let bad = steps.first(where: { !($0 > 0 && $0.isFinite) }) {
                throw Int8ExportError.entryMismatch(file: file, entry: "\(layer) scales", expected: "positive finite steps", found: "\(bad)")
            }
        }
        for q in plan.quantized {
            guard let w = skeleton.parameter(named: q.weight.parameter) else {
                throw Int8ModelError.layerMismatch(layer: q.layer, reason: "the model has no parameter \(q.weight.parameter)")
            }
            kernels.insert(w.name)
            let c = w.shape.last!, wRange = QuantRange(bits: q.weight.bits, signed: true)
            if q.winograd {
                guard w.shape.count == 4, w.shape[0] == 3, w.shape[1] == 3 else {
                    throw Int8ModelError.layerMismatch(layer: q.layer, reason: "a Winograd layer needs a 3×3 kernel, the model's is \(w.shape)")
                }
            }
            // A Winograd layer stores its kernel in the Winograd domain ([16, cin, cout]) and the
            // step of its tiles; the rest is the same for both kinds.
            let kernelName = q.winograd ? "\(q.layer)/winograd_weight_int8" : "\(q.layer)/weight_int8"
            let codes = try entry(kernelName, Int8.self, shape: q.winograd ? [16] + w.shape.suffix(2) : w.shape)
            try checkCodes(codes, kernelName, wRange)
            let scale = try entry(q.winograd ? "\(q.layer)/winograd_weight_scale" : "\(q.layer)/weight_scale", Float.self,
                                  shape: [q.weight.perChannel ? c : 1])
            let tile = q.winograd ? try entry("\(q.layer)/tile_scale", Float.self, shape: [1]) : []
            let input = try entry("\(q.layer)/input_scale", Float.self, shape: [1])
            let output = try q.output.map { o in
                (scale: try entry("\(q.layer)/output_scale", Float.self, shape: [1])[0], range: QuantRange(bits: o.bits, signed: o.signed))
            }
            let biasName = scopePath(q.layer, "bias")
            let bias = try skeleton.parameter(named: biasName).map { _ in try entry(biasName, Float.self, shape: [c]) }
            try checkSteps(scale + tile + input + (output.map { [$0.scale] } ?? []), q.layer)
            let inputRange = QuantRange(bits: q.input.bits, signed: q.input.signed)
            if q.winograd {
                winograd[q.layer] = Int8WinogradLayer(
                    name: q.layer, weightShape: w.shape, inputStep: input[0], inputRange: inputRange, kernelCodes: codes,
                    kernelScale: scale, kernelRange: wRange, tileScale: tile[0],
                    tileRange: QuantRange(bits: q.input.bits, signed: true), bias: bias, output: output)
            } else {
                layers[q.layer] = Int8Layer(name: q.layer, opType: q.opType, weightShape: w.shape, weights: codes, weightScale: scale,
                                            weightRange: wRange, inputScale: input[0], inputRange: inputRange, bias: bias, output: output)
            }
        }
        for p in skeleton.parameters where !kernels.contains(p.name) {
            p.value = Tensor(shape: p.shape, scalars: try entry(p.name, Float.self, shape: p.shape))
        }
        return try Int8Model(skeleton: skeleton, plan: plan, layers: layers, winogradLayers: winograd)
    }
}
