/// What `quantize_graph(mode:modelDir:config:)` prepares the model for (the seed's `mode`).
///
/// The same `QuantizationPlan` serves all three modes; the mode decides what the quantization
/// nodes do with it.
public enum QuantizeMode: String, Codable, CaseIterable, Sendable {
    /// Quantization-aware training: fake quantization v̂ = round(clip(v/s, −Qn, Qp))·s on
    /// every planned tensor, with gradients — straight-through for v inside the clip range, the
    /// LSQ gradient (scaled by g = 1/√(N·Qp)) for the step sizes s, which the chief updates every
    /// `step_interval` steps, `num_trials` times.
    case train
    /// Evaluation: the same fake quantization with the step sizes frozen (no gradients, no
    /// updates), so that accuracy is measured on exactly what training quantized.
    case eval
    /// Export: the weights are emitted as real integers (int8 storage for wbits ≤ 8) with
    /// their step sizes as scales, and the activation scales for int8 inference (QDQ).
    case export
}
