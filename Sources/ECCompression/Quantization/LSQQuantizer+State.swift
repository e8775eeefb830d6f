import ECCheckpoint
import Foundation
import ECNN
import ECTensor

extension LSQQuantizer {
    /// Per quantized layer: bit widths, weight step size(s), activation step size; and the
    /// layers kept in FP32 with the reason.
    public func summarySection(model: Model) throws -> Data {
        var layers: [[String: Any]] = []
        for l in plan?.quantized ?? [] {
            var entry: [String: Any] = ["layer": l.layer, "op_type": l.opType, "wbits": l.weight.bits, "bits": l.input.bits,
                                        "signed": l.input.signed, "per_channel": l.weight.perChannel, "fp32": false]
            entry["weight_scale"] = (steps[weightKey(l)]?.scalars ?? []).map { Double($0) }
            if l.winograd {
                entry["winograd"] = true
                entry["tile_scale"] = steps["tiles:\(l.layer)"].map { Double($0.scalars[0]) as Any } ?? NSNull()
            }
            entry["activation_scale"] = steps["input:\(l.layer)"].map { Double($0.scalars[0]) as Any } ?? NSNull()
            if let out = steps["output:\(l.layer)"] { entry["output_scale"] = Double(out.scalars[0]) }
            layers.append(entry)
        }
        for f in plan?.fp32 ?? [] {
            layers.append(["layer": f.layer, "op_type": f.opType, "fp32": true, "reason": f.reason.rawValue])
        }
        let section: [String: Any] = ["kind": kind, "bits": config.bits, "wbits": config.wbits, "signed": config.signed,
                                      "unsigned_after_relu": config.unsignedAfterReLU,
                                      "step_interval": config.stepInterval, "num_trials": config.numTrials,
                                      "updates_done": updatesDone, "layers": layers]
        return try JSONSerialization.data(withJSONObject: section, options: [.sortedKeys])
    }

    public func summaryRows(model: Model) -> [[String]] {
        var rows = [["layer", "wbits", "bits", "weight step", "activation step"]]
        for l in plan?.quantized ?? [] {
            let w = steps[weightKey(l)]?.scalars ?? []
            let wText = w.count == 1 ? String(format: "%.3g", w[0])
                : String(format: "%.3g…%.3g (%d)", w.min() ?? 0, w.max() ?? 0, w.count)
            rows.append([l.layer + (l.winograd ? " (Winograd)" : ""), "\(l.weight.bits)", "\(l.input.bits)\(l.input.signed ? "" : " (unsigned)")", wText,
                         steps["input:\(l.layer)"].map { String(format: "%.3g", $0.scalars[0]) } ?? "—"])
        }
        for f in plan?.fp32 ?? [] { rows.append([f.layer, "FP32", "FP32", f.reason.rawValue, ""]) }
        return rows
    }

    /// The step-size key of a layer's kernel: its Winograd-domain kernel for Winograd layers.
    func weightKey(_ l: QuantizedLayer) -> String { l.winograd ? "winograd_weight:\(l.layer)" : "weight:\(l.layer)" }

    /// `quantizer/step/<key>` and `quantizer/accumulated/<key>` for every step size.
    public func checkpointTensors() -> NamedTensors {
        var t = decisionTensors
        for (k, a) in accumulated { t["quantizer/accumulated/\(k)"] = a }
        return t
    }

    public func checkpointState() throws -> Data {
        try VersionedJSON.encode(QuantizerState(formatVersion: QuantizerState.currentVersion, updatesDone: updatesDone))
    }

    public func restore(tensors: NamedTensors, state: Data) throws {
        let done: Int
        do {
            done = try VersionedJSON.decode(QuantizerState.self, from: state, version: QuantizerState.currentVersion).updatesDone
        } catch {
            throw QuantizerError.checkpointState(reason: error.description)
        }
        guard done >= 0 else { throw QuantizerError.checkpointState(reason: "updates_done is \(done), expected ≥ 0") }
        var restored: [String: Tensor] = [:], restoredAccumulated: [String: Tensor] = [:]
        // Every planned step size, including activations not calibrated yet (per tensor: [1]).
        for key in ranges.keys.sorted() {
            let expected = steps[key]?.shape ?? [1]
            for name in ["quantizer/step/\(key)", "quantizer/accumulated/\(key)"] where tensors[name]?.shape != expected {
                throw QuantizerError.checkpointTensor(name: name, expectedShape: expected, found: tensors[name]?.shape)
            }
            let s = tensors["quantizer/step/\(key)"]!, a = tensors["quantizer/accumulated/\(key)"]!
            restored[key] = s
            restoredAccumulated[key] = a
        }
        steps = restored
        accumulated = restoredAccumulated
        for (key, s) in steps where localGradients[key] == nil { localGradients[key] = Tensor(shape: s.shape) }
        updatesDone = done
    }
}

/// The quantizer's JSON state beside its checkpoint tensors: how many step-size updates the
/// chief has applied.
struct QuantizerState: Codable, Equatable {
    static let currentVersion = 1

    let formatVersion: Int
    let updatesDone: Int

    enum CodingKeys: String, CodingKey { case formatVersion = "format_version", updatesDone = "updates_done" }
}
