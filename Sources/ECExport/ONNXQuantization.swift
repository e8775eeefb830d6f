import ECCompression
import ECTensor

/// What a QDQ export needs from an LSQ-quantized model: the plan (which layers, bit widths,
/// signedness, per-channel weights) and the learned step sizes (`weight:<layer>`,
/// `input:<layer>`, `output:<layer>`, as `LSQQuantizer.steps`).
public struct ONNXQuantization {
    public let plan: QuantizationPlan
    public let steps: [String: Tensor]

    /// - Throws: `unsupportedQuantization` for a layer quantized in the Winograd domain
    ///   (`int8_winograd`): ONNX has no operator for Winograd-domain quantization, and a QDQ
    ///   graph of the spatial convolution would not compute what the model was trained to.
    public init(plan: QuantizationPlan, steps: [String: Tensor]) throws {
        if let winograd = plan.quantized.first(where: \.winograd) {
            throw ONNXExportError.unsupportedQuantization(
                layer: winograd.layer, reason: "it is quantized in the Winograd domain (int8_winograd), which ONNX cannot express; "
                    + "export it with --format int8, or train without int8_winograd for ONNX")
        }
        self.plan = plan
        self.steps = steps
    }

    /// The plan and step sizes of a prepared (and, for a trained model, restored) quantizer.
    public init(_ quantizer: LSQQuantizer) throws {
        guard let plan = quantizer.plan else {
            throw ONNXExportError.unsupportedQuantization(layer: "", reason: "the quantizer has no plan (prepare it first)")
        }
        try self.init(plan: plan, steps: quantizer.steps)
    }

    /// The plan's entry for `layer`, nil when it is not quantized.
    func layer(_ name: String) -> QuantizedLayer? { plan.quantized.first { $0.layer == name } }

    /// The step sizes `key` of `layer`, checked: `count` positive finite values.
    func scales(_ key: String, layer: String, count: Int) throws -> [Float] {
        guard let s = steps[key], s.count == count else { throw ONNXExportError.missingScale(layer: layer, key: key) }
        let values = s.scalars
        guard values.allSatisfy({ $0 > 0 && $0.isFinite }) else {
            throw ONNXExportError.unsupportedQuantization(layer: layer, reason: "step size \(key) must be positive and finite, got \(values)")
        }
        return values
    }
}
