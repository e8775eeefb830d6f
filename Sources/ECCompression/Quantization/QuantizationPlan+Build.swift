import ECNN

extension QuantizationPlan {
    /// The plan for `model` under `config`: every quantizable layer (Conv2D / MatMul, in
    /// execution order) is either quantized or listed in `fp32` with its reason.
    ///
    /// A layer stays FP32 when named in `fp32_layers`, else when the config's scope filter
    /// (include / exclude scopes, matched against the layer's scope) rejects it. A quantized
    /// layer gets its weight at `wbits`, signed, per channel if `per_channel`; its input at
    /// `bits`, signed as configured — unsigned when the layer reads the image (pixels ≥ 0), and
    /// with `unsigned_after_relu` when its input is never negative (`readsNonNegative`); its
    /// output at `bits` with `post_quant`.
    ///
    /// - Throws: `CompressionConfigError` from `config.validate(against: model)`.
    public static func build(model: Model, config: QuantizerConfig) throws -> QuantizationPlan {
        try config.validate(against: model)
        let scopes = config.scopes
        var quantized: [QuantizedLayer] = []
        var fp32: [FP32Layer] = []
        for layer in QuantizableLayer.all(in: model) {
            if config.fp32Layers.contains(layer.name) {
                fp32.append(FP32Layer(layer: layer.name, opType: layer.opType, reason: .fp32Layers))
            } else if !scopes.contains(layer.name) {
                fp32.append(FP32Layer(layer: layer.name, opType: layer.opType, reason: .outOfScope))
            } else {
                quantized.append(QuantizedLayer(
                    layer: layer.name, opType: layer.opType, readsModelInput: layer.readsModelInput,
                    weight: WeightQuantization(parameter: layer.weight, bits: config.wbits,
                                               perChannel: config.perChannel),
                    input: TensorQuantization(bits: config.bits, signed: config.signed && !layer.readsModelInput
                                                && !(config.unsignedAfterReLU && layer.readsNonNegative)),
                    output: config.postQuant ? TensorQuantization(bits: config.bits, signed: config.signed) : nil,
                    winograd: config.int8Winograd && layer.winogradCapable))
            }
        }
        return QuantizationPlan(model: model.name, quantized: quantized, fp32: fp32)
    }

    /// The planned layer named `layer`, if it is quantized.
    public func quantizedLayer(named layer: String) -> QuantizedLayer? {
        quantized.first { $0.layer == layer }
    }
}

extension QuantizationPlan {
    /// The first way this plan (read from a file) differs from `other` (built for the model at
    /// hand), in words: the model, a layer quantized in one and not the other, or a layer's
    /// widths.
    func difference(from other: QuantizationPlan) -> String {
        if model != other.model { return "written for model '\(model)', this model is '\(other.model)'" }
        let mine = quantized.map(\.layer), theirs = other.quantized.map(\.layer)
        if let layer = mine.first(where: { !theirs.contains($0) }) {
            return "quantizes layer '\(layer)', which this model and config keep FP32 or lack"
        }
        if let layer = theirs.first(where: { !mine.contains($0) }) {
            return "keeps layer '\(layer)' FP32, this model and config quantize it"
        }
        for (a, b) in zip(quantized, other.quantized) where a != b {
            return "layer '\(a.layer)' is planned as \(a.describe), this model and config give \(b.describe)"
        }
        return "its FP32 layers differ from this model's"
    }
}

extension QuantizedLayer {
    /// `W8 (per channel) A8 signed` — the widths in a line.
    var describe: String {
        "W\(weight.bits)\(weight.perChannel ? " (per channel)" : "") A\(input.bits) \(input.signed ? "signed" : "unsigned")"
            + (output.map { ", output \($0.bits)" } ?? "") + (winograd ? ", Winograd" : "")
    }
}
