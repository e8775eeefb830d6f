import ECCompression
import ECNN

/// One step of a compressor as `CompressionHook` drives it: `afterStep` (a decision, if one is
/// due), then `applyMasks` on every parameter's value, which makes the decision effective.
@discardableResult
func hookStep(_ compressor: Compressor, _ step: Int, model: Model, channel: PayloadChannel) throws -> CompressionEvent? {
    let event = try compressor.afterStep(step, model: model, channel: channel)
    for p in model.parameters { compressor.applyMasks(to: &p.value, parameter: p.name) }
    return event
}
