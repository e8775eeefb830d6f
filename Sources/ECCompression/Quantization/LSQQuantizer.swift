import Foundation
import ECCollective
import ECNN
import ECTensor

/// Quantization-aware training with learned step sizes (LSQ, Esser et al., ICLR 2020) —
/// the seed's `LSQQuantizer`.
///
/// Every Conv2D/MatMul layer of the `QuantizationPlan` computes with fake-quantized operands:
/// its kernel at `wbits` (per tensor, or per output channel with `per_channel`), its input
/// activation at `bits` (unsigned for the image, `signed` otherwise), its output too with
/// `post_quant` — v̂ = round(clip(v/s, −Qn, Qp))·s with straight-through gradients
/// (`Variable.fakeQuantLSQ`). Weights keep training every step.
///
/// Step sizes (chief-only scale updates, docs/quantization.md):
/// - initialised from the pretrained weights (s = 2·mean|w|/√Qp) and, for activations, from a
///   calibration batch the caller gives (the same on every rank, so every rank starts equal);
/// - every rank computes its local step-size gradients (the LSQ gradient, scaled by
///   g = 1/√(N·Qp), N the elements sharing the step in the *global* batch for activations —
///   `ForwardContext.batchShare` — and in the kernel for weights, so the sum over ranks and
///   thread replicas is what one pass over the global batch gives); they are summed to the
///   chief (`reduce`) after every step and accumulated;
/// - at each `step_interval`, for `num_trials` updates, the chief applies
///   s ← max(s − lr·(accumulated gradient / step_interval), s_min) — the interval's mean
///   gradient at the training learning rate, kept positive — and broadcasts the new step
///   sizes as a zstd payload; every rank adopts the decoded values, so they are bit-identical;
///   after the last update the step sizes are frozen and no more gradients are reduced.
public final class LSQQuantizer: Compressor, LayerTransform {
    public let kind = "quantizer"
    public let config: QuantizerConfig
    /// The learning rate of step-size updates (the training optimizer's base rate).
    public let learningRate: Float
    /// The smallest step size an update may leave (keeps scales positive).
    public static let minimumStep: Float = 1e-8
    let calibration: Tensor?
    let expectedPlan: (plan: QuantizationPlan, modelDir: String)?

    public private(set) var plan: QuantizationPlan?
    /// Step sizes by key: `weight:<layer>`, `input:<layer>`, `output:<layer>`; for Winograd
    /// layers `winograd_weight:<layer>` (the transformed kernel U) and `tiles:<layer>` (the
    /// transformed input tiles V) instead of `weight:<layer>`.
    public internal(set) var steps: [String: Tensor] = [:]
    var ranges: [String: QuantRange] = [:]
    /// Layers computed through Winograd F(2×2, 3×3) (`int8_winograd`).
    var winogradLayers: Set<String> = []
    var channels: [String: Int] = [:]
    /// This rank's step-size gradients since the last reduction.
    var localGradients: [String: Tensor] = [:]
    /// The chief's sum of all ranks' gradients over the current interval.
    var accumulated: [String: Tensor] = [:]
    public internal(set) var updatesDone = 0
    var communicator: Communicator?

    /// - Parameters:
    ///   - calibration: a batch of training inputs (`[n] + inputShape`) whose statistics
    ///     initialise the activation step sizes; without it they start at 2·mean|x|/√Qp of
    ///     the first batch each layer sees… which would differ between ranks, so multi-rank
    ///     jobs must give one (the CLI gives the first 256 training images).
    ///   - learningRate: the rate of the chief's step-size updates.
    ///   - expectedPlan: the plan `quantizeGraph` wrote (and the folder it came from);
    ///     `prepare` checks the model and config give exactly this plan.
    public init(config: QuantizerConfig, calibration: Tensor?, learningRate: Float,
                expectedPlan: (plan: QuantizationPlan, modelDir: String)? = nil) throws {
        try config.validate()
        self.config = config
        self.calibration = calibration
        self.learningRate = learningRate
        self.expectedPlan = expectedPlan
    }

    // MARK: Compressor

    public func prepare(model: Model, communicator: Communicator) throws {
        self.communicator = communicator
        let plan = try QuantizationPlan.build(model: model, config: config)
        if let expected = expectedPlan, expected.plan != plan {
            throw QuantizerError.planMismatch(modelDir: expected.modelDir, reason: expected.plan.difference(from: plan))
        }
        self.plan = plan
        winogradLayers = Set(plan.quantized.filter(\.winograd).map(\.layer))
        for layer in plan.quantized {
            guard let w = model.parameter(named: layer.weight.parameter) else { continue }
            let wRange = QuantRange(bits: layer.weight.bits, signed: true)
            let c = layer.weight.perChannel ? w.shape.last : nil
            if layer.winograd {  // the kernel is quantized in the Winograd domain only, and so are the tiles
                let u = Variable(w.value).winogradKernel().value
                set("winograd_weight:\(layer.layer)", range: wRange, channels: c, step: u.lsqInitialStepSize(range: wRange, channelAxisSize: c))
                ranges["tiles:\(layer.layer)"] = QuantRange(bits: layer.input.bits, signed: true)
            } else {
                set("weight:\(layer.layer)", range: wRange, channels: c, step: w.value.lsqInitialStepSize(range: wRange, channelAxisSize: c))
            }
            ranges["input:\(layer.layer)"] = QuantRange(bits: layer.input.bits, signed: layer.input.signed)
            if let out = layer.output { ranges["output:\(layer.layer)"] = QuantRange(bits: out.bits, signed: out.signed) }
        }
        if let calibration { calibrate(model: model, on: calibration) }
        model.transform = self
    }

    /// Initialises activation step sizes from the statistics the layers see on `batch`.
    func calibrate(model: Model, on batch: Tensor) {
        let recorder = ActivationRecorder()
        model.transform = recorder
        _ = model(Variable(batch), .inference())
        model.transform = nil
        for (key, range) in ranges where key.hasPrefix("input:") || key.hasPrefix("output:") {
            guard let t = recorder.seen[key] else { continue }
            set(key, range: range, channels: nil, step: t.lsqInitialStepSize(range: range))
        }
        for layer in winogradLayers {  // tiles of the quantized input, as training will see them
            guard let x = recorder.seen["input:\(layer)"], let s = steps["input:\(layer)"],
                  let inputRange = ranges["input:\(layer)"], let range = ranges["tiles:\(layer)"] else { continue }
            let tiles = Variable(x).fakeQuantLSQ(stepSize: Variable(s), range: inputRange).winogradInputTiles().value
            set("tiles:\(layer)", range: range, channels: nil, step: tiles.lsqInitialStepSize(range: range))
        }
    }

    private func set(_ key: String, range: QuantRange, channels c: Int?, step: Tensor) {
        ranges[key] = range
        channels[key] = c
        steps[key] = step
        localGradients[key] = Tensor(shape: step.shape)
        accumulated[key] = Tensor(shape: step.shape)
    }

    @discardableResult
    public func afterStep(_ step: Int, model: Model, channel: PayloadChannel) throws -> CompressionEvent? {
        guard let comm = communicator, updatesDone < config.numTrials else { return nil }
        precondition(comm === channel.communicator, "the payload channel must use the world given to prepare")
        let keys = steps.keys.sorted()
        var flat = keys.flatMap { localGradients[$0]!.scalars }
        try comm.reduce(&flat, toRoot: 0)
        for k in keys { localGradients[k] = Tensor(shape: steps[k]!.shape) }
        if comm.isChief {
            var offset = 0
            for k in keys {
                let n = steps[k]!.count
                accumulated[k]!.addScaled(Tensor(shape: [n], scalars: Array(flat[offset..<(offset + n)])))
                offset += n
            }
        }
        guard step % config.stepInterval == 0 else { return nil }
        var entries: [String: PayloadValue]?
        if comm.isChief {
            entries = [:]
            for k in keys {
                var s = steps[k]!
                let g = accumulated[k]!
                s.withUnsafeMutableBufferPointer { sp in g.withUnsafeBufferPointer { gp in
                    for i in sp.indices {
                        sp[i] = max(sp[i] - learningRate * gp[i] / Float(config.stepInterval), LSQQuantizer.minimumStep)
                    }
                } }
                entries![k] = .floats(s)
                accumulated[k] = Tensor(shape: s.shape)
            }
        }
        let payload = try channel.broadcast(kind: .scales, step: step, entries: entries)
        var relativeChange = 0.0, count = 0
        for k in keys {
            guard let s = payload.floats(named: k), s.shape == steps[k]!.shape else {
                throw QuantizerError.payloadMismatch(key: k, expectedShape: steps[k]!.shape, found: payload.floats(named: k)?.shape)
            }
            for (new, old) in zip(s.scalars, steps[k]!.scalars) { relativeChange += Double(abs(new - old) / old); count += 1 }
            steps[k] = s
        }
        updatesDone += 1
        return CompressionEvent(kind: kind, step: step, trial: updatesDone,
                                values: ["mean_relative_step_change": count == 0 ? 0 : relativeChange / Double(count)])
    }

    public func applyMasks(to tensor: inout Tensor, parameter: String) {}

    public var decisionTensors: NamedTensors {
        NamedTensors(steps.map { ("quantizer/step/\($0.key)", $0.value) })
    }

    // MARK: LayerTransform

    public func transformInput(_ x: Variable, layer: String, ctx: ForwardContext) -> Variable {
        quantize(x, key: "input:\(layer)", ctx: ctx)
    }

    public func transformWeight(_ w: Variable, layer: String, ctx: ForwardContext) -> Variable {
        quantize(w, key: "weight:\(layer)", ctx: ctx)
    }

    public func transformOutput(_ y: Variable, layer: String, ctx: ForwardContext) -> Variable {
        quantize(y, key: "output:\(layer)", ctx: ctx)
    }

    public func usesWinograd(layer: String) -> Bool { winogradLayers.contains(layer) }

    /// Only with `post_quant` (an output range planned for the layer).
    public func transformsOutput(layer: String) -> Bool { ranges["output:\(layer)"] != nil }

    /// Once every planned step size exists (calibrated, or restored): passes then only read
    /// them, and send their step-size gradients to their replica's accumulator.
    public var supportsReplicas: Bool { ranges.keys.allSatisfy { steps[$0] != nil } }

    /// Adds each replica's step-size gradients to this rank's, in replica order.
    public func absorbReplicaGradients(_ accumulators: [GradientAccumulator]) {
        for accumulator in accumulators {
            for (key, g) in accumulator.extras where localGradients[key] != nil { localGradients[key]!.addScaled(g) }
        }
    }

    public func transformWinogradTiles(_ v: Variable, layer: String, ctx: ForwardContext) -> Variable {
        quantize(v, key: "tiles:\(layer)", ctx: ctx)
    }

    public func transformWinogradKernel(_ u: Variable, layer: String, ctx: ForwardContext) -> Variable {
        quantize(u, key: "winograd_weight:\(layer)", ctx: ctx)
    }

    /// Fake-quantizes `v` with the step size `key`; its gradient accumulates into this rank's
    /// local step-size gradient while the step sizes still learn.
    func quantize(_ v: Variable, key: String, ctx: ForwardContext) -> Variable {
        guard let range = ranges[key] else { return v }
        if steps[key] == nil {  // no calibration batch: the first batch this layer sees
            set(key, range: range, channels: nil, step: v.value.lsqInitialStepSize(range: range))
        }
        let s = steps[key]!
        let learning = ctx.tape != nil && updatesDone < config.numTrials
        let step: Variable
        if learning, let replica = ctx.gradients {  // a thread replica's pass: its own accumulator
            step = ctx.tape!.leaf(s) { g in replica.add(g, key: key) }
        } else if learning {
            step = ctx.tape!.leaf(s) { [unowned self] g in self.localGradients[key]!.addScaled(g) }
        } else {
            step = Variable(s)
        }
        // Activations (and Winograd tiles) grow with the batch: scale by the global batch's
        // element count. Kernels are whole in every pass.
        let perBatch = !(key.hasPrefix("weight:") || key.hasPrefix("winograd_weight:"))
        let globalCount = learning && perBatch ? ctx.batchShare?.globalCount(v.value.count) : nil
        return v.fakeQuantLSQ(stepSize: step, range: range, channelAxisSize: channels[key] ?? nil, globalCount: globalCount)
    }
}

/// Records what each weight layer's input and output look like, for calibration.
final class ActivationRecorder: LayerTransform {
    var seen: [String: Tensor] = [:]
    func transformInput(_ x: Variable, layer: String, ctx: ForwardContext) -> Variable { seen["input:\(layer)"] = x.value; return x }
    func transformWeight(_ w: Variable, layer: String, ctx: ForwardContext) -> Variable { w }
    func transformOutput(_ y: Variable, layer: String, ctx: ForwardContext) -> Variable { seen["output:\(layer)"] = y.value; return y }
}
