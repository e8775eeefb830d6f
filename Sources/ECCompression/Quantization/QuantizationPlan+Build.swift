import ECNN

extension QuantizationPlan {
    /// The plan for `model` under `config`: every quantizable layer (Conv2D / MatMul, in
    /// execution order) is either quantized or listed in `fp32` with its reason.
    ///
    /// A layer stays FP32 when named in `fp32_layers`, else when the config's scope filter
    /// (include / exclude scopes, matched against the layer's scope) rejects it. A quantized
    /// layer gets its weight at `wbits`, signed, per channel if `per_channel`; its input at
    /// `bits`, signed as configured — unsigned when the layer reads the image (pixels ≥ 0);
    /// its output at `bits` with `post_quant`.
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
                    input: TensorQuantization(bits: config.bits, signed: config.signed && !layer.readsModelInput),
                    output: config.postQuant ? TensorQuantization(bits: config.bits, signed: config.signed) : nil))
            }
        }
        return QuantizationPlan(model: model.name, quantized: quantized, fp32: fp32)
    }

    /// The planned layer named `layer`, if it is quantized.
    public func quantizedLayer(named layer: String) -> QuantizedLayer? {
        quantized.first { $0.layer == layer }
    }
}
