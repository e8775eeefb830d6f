import ECNN
import ECTensor

/// Why a model cannot run on the integer path.
public enum Int8ModelError: Error, Equatable, CustomStringConvertible {
    /// The quantizer has no plan (`prepare` not called), or lacks the step size `missing`.
    case notPrepared(missing: String?)
    /// A node the integer walk does not run (a quantized grouped convolution).
    case unsupportedModule(model: String, module: String, opType: String)
    /// A quantized layer of the plan has no integer form, or one that does not fit the model.
    case layerMismatch(layer: String, reason: String)

    public var description: String {
        switch self {
        case let .notPrepared(missing):
            return "int8: the quantizer has " + (missing.map { "no step size \($0)" } ?? "no plan")
                + "; call prepare(model:communicator:) with a calibration batch first"
        case let .unsupportedModule(model, module, opType):
            return "int8: \(model) has '\(module)' (\(opType)), a grouped or depthwise convolution, which the integer kernel "
                + "does not run; keep it in FP32 (quantizer.fp32_layers) to export the rest in int8"
        case let .layerMismatch(layer, reason):
            return "int8: layer '\(layer)': \(reason)"
        }
    }
}

/// True integer inference for a model quantized by `LSQQuantizer` (the quantizer's `export` mode: "the engine has its
/// own int8 inference path whose accuracy matches the fake-quant model").
///
/// Every quantized Conv2D / Dense runs as an `Int8Layer` (8-bit activation codes × int8 weight
/// codes, Int32 accumulation, dequantized with `s_a·s_w[c]`); the layers the plan keeps in FP32,
/// pooling and flattening run in Float through the engine's ops with the skeleton model's
/// parameters. The walk follows the engine's fusion plan (`Fusion.plan`): a Conv2D/Dense
/// directly followed by ReLU (not then pooled) applies the ReLU itself, ReLU → MaxPool runs
/// as `maxPool2d(relu: true)`, and a quantized Conv2D before it pools its integer sums.
public final class Int8Model {
    /// The model whose structure is walked and whose FP32 layers' parameters are used.
    public let skeleton: Model
    public let plan: QuantizationPlan
    /// The integer layers by name, one per `plan.quantized` entry not in `winogradLayers`.
    public let layers: [String: Int8Layer]
    /// 3×3 convolutions running on the int8 Winograd kernel, by name.
    public let winogradLayers: [String: Int8WinogradLayer]

    /// A model over integer layers already built (e.g. read from an export).
    ///
    /// - Throws: `Int8ModelError` when the skeleton has a module the walk does not handle, or
    ///   a planned layer is missing from `layers` or does not fit the skeleton's kernel.
    public init(skeleton: Model, plan: QuantizationPlan, layers: [String: Int8Layer],
                winogradLayers: [String: Int8WinogradLayer] = [:]) throws {
        try Self.checkSupported(skeleton, plan: plan)
        for q in plan.quantized {
            guard let shape = layers[q.layer]?.weightShape ?? winogradLayers[q.layer]?.weightShape else {
                throw Int8ModelError.layerMismatch(layer: q.layer, reason: "no integer form")
            }
            guard let w = skeleton.parameter(named: q.weight.parameter), w.shape == shape else {
                throw Int8ModelError.layerMismatch(layer: q.layer, reason: "kernel \(shape) does not fit the model's "
                                                   + "\(skeleton.parameter(named: q.weight.parameter)?.shape ?? [])")
            }
        }
        self.skeleton = skeleton
        self.plan = plan
        self.layers = layers
        self.winogradLayers = winogradLayers
    }

    /// The integer form of `model` as `quantizer` (prepared on it) fake-quantizes it now:
    /// `q_w = level(w/s_w)` with the quantizer's weight steps, its input (and output) steps.
    ///
    /// - Throws: `Int8ModelError.notPrepared`, or as `init(skeleton:plan:layers:)`.
    public convenience init(model: Model, quantizer: LSQQuantizer) throws {
        guard let plan = quantizer.plan else { throw Int8ModelError.notPrepared(missing: nil) }
        try Self.checkSupported(model, plan: plan)
        var layers: [String: Int8Layer] = [:], winograd: [String: Int8WinogradLayer] = [:]
        for q in plan.quantized {
            guard let w = model.parameter(named: q.weight.parameter) else {
                throw Int8ModelError.layerMismatch(layer: q.layer, reason: "the model has no parameter \(q.weight.parameter)")
            }
            guard w.value.scalars.allSatisfy(\.isFinite) else {
                throw Int8ModelError.layerMismatch(layer: q.layer, reason: "its weights hold NaN or infinity (a diverged run?)")
            }
            if q.winograd {
                func step(_ key: String) throws -> Tensor {
                    guard let s = quantizer.steps[key] else { throw Int8ModelError.notPrepared(missing: key) }
                    return s
                }
                winograd[q.layer] = Self.winogradLayer(
                    q, kernel: w.value, kernelStep: try step("winograd_weight:\(q.layer)"),
                    tileStep: try step("tiles:\(q.layer)").scalarValue, inputStep: try step("input:\(q.layer)").scalarValue,
                    bias: model.parameter(named: scopePath(q.layer, "bias"))?.value.scalars,
                    outputStep: try q.output.map { _ in try step("output:\(q.layer)").scalarValue })
                continue
            }
            guard let sw = quantizer.steps["weight:\(q.layer)"] else { throw Int8ModelError.notPrepared(missing: "weight:\(q.layer)") }
            guard let sa = quantizer.steps["input:\(q.layer)"] else { throw Int8ModelError.notPrepared(missing: "input:\(q.layer)") }
            let wRange = QuantRange(bits: q.weight.bits, signed: true), scale = sw.scalars
            let output = q.output.flatMap { o in
                quantizer.steps["output:\(q.layer)"].map { (scale: $0.scalarValue, range: QuantRange(bits: o.bits, signed: o.signed)) }
            }
            let bias = model.parameter(named: scopePath(q.layer, "bias"))?.value.scalars
            layers[q.layer] = Int8Layer(
                name: q.layer, opType: q.opType, weightShape: w.shape,
                weights: Int8Layer.quantizeWeights(w.value, scale: scale, range: wRange), weightScale: scale,
                weightRange: wRange, inputScale: sa.scalarValue, inputRange: QuantRange(bits: q.input.bits, signed: q.input.signed),
                bias: bias, output: output)
        }
        try self.init(skeleton: model, plan: plan, layers: layers, winogradLayers: winograd)
    }

    /// The int8 Winograd form of planned layer `q` with spatial kernel `kernel`: `U = G g Gᵀ`
    /// quantized with `kernelStep` (wbits), tiles with `tileStep` (`bits`, signed), the spatial
    /// input with `inputStep` on the plan's input grid.
    static func winogradLayer(_ q: QuantizedLayer, kernel: Tensor, kernelStep: Tensor, tileStep: Float, inputStep: Float,
                              bias: [Float]?, outputStep: Float? = nil) -> Int8WinogradLayer {
        let kernelRange = QuantRange(bits: q.weight.bits, signed: true)
        let u = Variable(kernel).winogradKernel().value
        return Int8WinogradLayer(name: q.layer, weightShape: kernel.shape, inputStep: inputStep,
                                 inputRange: QuantRange(bits: q.input.bits, signed: q.input.signed),
                                 kernelCodes: Int8Layer.quantizeWeights(u, scale: kernelStep.scalars, range: kernelRange),
                                 kernelScale: kernelStep.scalars, kernelRange: kernelRange, tileScale: tileStep,
                                 tileRange: QuantRange(bits: q.input.bits, signed: true), bias: bias,
                                 output: outputStep.flatMap { step in q.output.map { (step, QuantRange(bits: $0.bits, signed: $0.signed)) } })
    }

    /// Throws `unsupportedModule` for the first node of `model` the walk does not run: a
    /// grouped convolution the plan quantizes (every other node runs — quantized Conv2D/Dense
    /// layers on the integer kernels, the rest in Float as the fake-quantized model runs them).
    static func checkSupported(_ model: Model, plan: QuantizationPlan) throws {
        let quantized = Set(plan.quantized.map(\.layer))
        for node in model.graph.nodes {
            if let conv = node.op.layer as? Conv2D, conv.groups != 1, quantized.contains(conv.name) {
                throw Int8ModelError.unsupportedModule(model: model.name, module: node.name, opType: "\(node.op.opType), groups \(conv.groups)")
            }
        }
    }

    /// Logits `[batch, classes]` for input `[batch] + inputShape`. A batch of 16 or more is cut
    /// into one slice per worker thread, run at once (`Parallel.mapBatchSlices`): every pass
    /// of the integer walk — quantization, im2col, the GEMM, pooling — then runs on all cores.
    /// The integer layers' sums are exact, so their outputs do not depend on the cut (layers
    /// kept in FP32 round as single-threaded BLAS does).
    public func callAsFunction(_ x: Tensor) -> Tensor {
        let slices = min(Parallel.workers, (x.shape.first ?? 0) / 8)
        SparseInference.prepare(skeleton)  // FP32 layers may run block-sparse: build that cache before the threads
        guard slices > 1 else {
            // A few images: one thread (handing a small loop to another core costs more than it
            // saves — measured: batch 1 in 79 µs on one thread, 96 µs on two).
            var y: Tensor?
            Parallel.replicas(1) { _ in y = onePass(x) }
            return y!
        }
        return Parallel.mapBatchSlices(x, slices) { onePass($0) }
    }

    /// The integer walk over the whole batch on this thread (its loops may still split).
    func onePass(_ x: Tensor) -> Tensor {
        let ctx = ForwardContext.inference()  // no transform: FP32 layers run unquantized
        let graph = skeleton.graph, steps = graph.steps
        var values = [Tensor?](repeating: nil, count: graph.valueShapes.count)
        values[graph.input] = x
        func input(_ i: Int) -> Tensor { values[graph.nodes[i].inputs[0]]! }
        func write(_ i: Int, _ y: Tensor) { values[graph.nodes[i].outputs[0]] = y }
        var s = 0
        while s < steps.count {
            switch steps[s] {
            case let .node(i):
                let node = graph.nodes[i]
                if let conv = node.op.layer as? Conv2D, let layer = layers[conv.name], s + 1 < steps.count,
                   case let .reluMaxPool(relu, pool) = steps[s + 1], graph.nodes[relu].inputs[0] == node.outputs[0],
                   layer.output?.range.isBinary != true, let p = graph.nodes[pool].op.layer as? MaxPool {
                    // Conv → ReLU → MaxPool: pooled on the integer sums (Int8Layer.forward). (A
                    // binary post-quant grid maps 0 to +1: there the ReLU must follow the output
                    // quantization, as in the fake-quant model, so that layer takes the plain path.)
                    write(pool, layer.forward(input(i), geometry: conv.geometry, relu: true, pool: (p.size, p.stride)))
                    s += 2
                    continue
                }
                if let fusable = node.op.layer as? ActivationFusable {
                    write(i, run(fusable, input(i), relu: false, ctx))
                } else {
                    // Everything but the weight layers runs in Float, as in the fake-quantized model.
                    let outs = graph.run(node.op, node.inputs.map { Variable(values[$0]!) }, ctx)
                    for (v, o) in zip(node.outputs, outs) { values[v] = o.value }
                }
            case let .weightReLU(i, relu):
                write(relu, run(graph.nodes[i].op.layer as! ActivationFusable, input(i), relu: true, ctx))
            case let .reluMaxPool(relu, pool):
                let p = graph.nodes[pool].op.layer as! MaxPool
                write(pool, Variable(input(relu)).maxPool2d(size: p.size, stride: p.stride, relu: true).value)
            }
            s += 1
        }
        return values[graph.output]!
    }

    private func run(_ module: ActivationFusable, _ x: Tensor, relu: Bool, _ ctx: ForwardContext) -> Tensor {
        if let winograd = winogradLayers[module.name] { return winograd.forward(x, relu: relu) }
        guard let layer = layers[module.name] else {
            return module.forward(Variable(x), ctx, activation: relu ? .relu : .identity).value
        }
        let conv = module as? Conv2D
        guard let conv else { return layer.forward(x, stride: 1, padding: .valid, relu: relu) }
        return layer.forward(x, geometry: conv.geometry, relu: relu)
    }

    /// Top-1 accuracy over `images` (`[N] + inputShape`) and `labels`, in batches.
    public func accuracy(images: Tensor, labels: [Int32], batchSize: Int = 500) -> Double {
        precondition(images.shape.first == labels.count, "accuracy: \(images.shape) images for \(labels.count) labels")
        var correct = 0, start = 0
        while start < labels.count {
            let end = min(labels.count, start + batchSize)
            let batch = images.rows(start..<end)
            let predicted = self(batch).argmaxRows()
            correct += (start..<end).filter { predicted[$0 - start] == labels[$0] }.count
            start = end
        }
        return labels.isEmpty ? 0 : Double(correct) / Double(labels.count)
    }
}
