import ECNN
import ECTensor

extension Int8Model {
    /// A model trained with plain QAT, run with every Winograd-capable quantized Conv2D (3×3,
    /// stride 1, `same`) on the int8 Winograd kernel anyway — what deploying it on a Winograd
    /// int8 runtime does. The Winograd-domain step sizes it never learned are set after
    /// training by LSQ's initialisation rule: `s_U` from the transformed trained kernel, `s_V`
    /// from the transformed tiles of `calibration` as the quantized model sees them. Layers
    /// already trained Winograd-aware keep their learned steps.
    ///
    /// This is the baseline Winograd-aware training is measured against (docs/quantization.md).
    ///
    /// - Throws: as `init(model:quantizer:)`.
    public static func postTrainingWinograd(model: Model, quantizer: LSQQuantizer, calibration: Tensor) throws -> Int8Model {
        try Int8Model(model: model, quantizer: quantizer).postTrainingWinograd(model: model, quantizer: quantizer,
                                                                               calibration: calibration)
    }

    /// `postTrainingWinograd(model:quantizer:calibration:)` from this model, the integer form
    /// of `model` as `quantizer` quantizes it (no need to build it again).
    public func postTrainingWinograd(model: Model, quantizer: LSQQuantizer, calibration: Tensor) throws -> Int8Model {
        let capable = Set(QuantizableLayer.all(in: model).filter(\.winogradCapable).map(\.name))
        let converted = plan.quantized.filter { capable.contains($0.layer) && !$0.winograd }
        guard !converted.isEmpty else { return self }

        // The spatial inputs the quantized model feeds these layers (already on their grids).
        let recorder = QuantizedInputRecorder(inner: quantizer)
        let saved = model.transform
        model.transform = recorder
        _ = model(Variable(calibration), .inference())
        model.transform = saved

        var layers = layers, winograd = winogradLayers, plan = plan
        for q in converted {
            guard let w = model.parameter(named: q.weight.parameter), let x = recorder.seen[q.layer],
                  let inputStep = quantizer.steps["input:\(q.layer)"] else {
                throw Int8ModelError.notPrepared(missing: "input:\(q.layer)")
            }
            let u = Variable(w.value).winogradKernel().value
            let kernelStep = u.lsqInitialStepSize(range: QuantRange(bits: q.weight.bits, signed: true),
                                                  channelAxisSize: q.weight.perChannel ? w.shape.last : nil)
            let tiles = Variable(x).winogradInputTiles().value
            let tileStep = tiles.lsqInitialStepSize(range: QuantRange(bits: q.input.bits, signed: true)).scalarValue
            winograd[q.layer] = Self.winogradLayer(q, kernel: w.value, kernelStep: kernelStep, tileStep: tileStep,
                                              inputStep: inputStep.scalarValue,
                                              bias: model.parameter(named: scopePath(q.layer, "bias"))?.value.scalars,
                                              outputStep: quantizer.steps["output:\(q.layer)"]?.scalarValue)
            layers[q.layer] = nil
            if let i = plan.quantized.firstIndex(where: { $0.layer == q.layer }) { plan.quantized[i].winograd = true }
        }
        return try Int8Model(skeleton: model, plan: plan, layers: layers, winogradLayers: winograd)
    }
}

/// Passes every operand through `inner` and records each layer's transformed (quantized)
/// input.
final class QuantizedInputRecorder: LayerTransform {
    let inner: LayerTransform
    var seen: [String: Tensor] = [:]
    init(inner: LayerTransform) { self.inner = inner }
    func transformInput(_ x: Variable, layer: String, ctx: ForwardContext) -> Variable {
        let y = inner.transformInput(x, layer: layer, ctx: ctx)
        seen[layer] = y.value
        return y
    }
    func transformWeight(_ w: Variable, layer: String, ctx: ForwardContext) -> Variable { inner.transformWeight(w, layer: layer, ctx: ctx) }
    func transformOutput(_ y: Variable, layer: String, ctx: ForwardContext) -> Variable { inner.transformOutput(y, layer: layer, ctx: ctx) }
    func usesWinograd(layer: String) -> Bool { inner.usesWinograd(layer: layer) }
    func transformWinogradTiles(_ v: Variable, layer: String, ctx: ForwardContext) -> Variable {
        inner.transformWinogradTiles(v, layer: layer, ctx: ctx)
    }
    func transformWinogradKernel(_ u: Variable, layer: String, ctx: ForwardContext) -> Variable {
        inner.transformWinogradKernel(u, layer: layer, ctx: ctx)
    }
}
