import Foundation
import ECCompression
import ECNN
import ECTensor
import SwiftProtobuf

/// Writes a model as an ONNX file (opset 13) whose outputs equal the engine's: FP32 models,
/// physically pruned (extracted) models — they are ordinary smaller models — and LSQ-quantized
/// models as QDQ (QuantizeLinear / DequantizeLinear pairs that ONNX Runtime runs in int8).
///
/// Interface and layouts. The graph's input and output keep the model's `interface`: a built-in
/// model reads `input`, NHWC `[N, H, W, C]` (N symbolic), and writes `logits` `[N, classes]`;
/// a model imported from ONNX keeps its own names, its input layout (PyTorch's NCHW) and its
/// trailing softmax, so the user's serving code does not change. Inside, convolutions, batch
/// norm and pooling run NCHW as ONNX requires: the walk tracks each value's layout and inserts
/// a `Transpose` where an op needs the other one (a `Flatten` or `Reshape` of a feature map
/// goes back to NHWC, because the engine flattens in H, W, C order and the next Dense's rows
/// are in that order). Kernels are transposed offline: Conv2D HWIO → OIHW; Dense `[in, out]`
/// is Gemm's B as it is.
///
/// The walk follows the engine's fusion plan (`Graph.steps`), because `post_quant` quantizes a
/// layer's output after its fused activation: a Conv2D/Dense directly followed by a ReLU that
/// is not then pooled emits `Conv → Relu → Q → DQ`, else `Conv → Q → DQ` and the ReLU later.
///
/// QDQ mapping (LSQ, Esser et al. 2020: v̂ = round(clip(v/s, −Qn, Qp))·s):
/// - weights: the codes `level(w/s_w)` as an INT8 initializer (exactly the engine's int8
///   export), then `DequantizeLinear` with scale `s_w` and zero point 0 — per tensor, or per
///   output channel with `axis` (0 for OIHW conv kernels, 1 for `[in, out]` Gemm weights);
/// - activations: `QuantizeLinear → DequantizeLinear` with scale `s` and zero point 0, UINT8
///   for unsigned grids, INT8 for signed ones (ONNX rounds half to even and saturates, as LSQ);
/// - bit widths below 8: the codes live in 8-bit storage restricted to the narrower range
///   `[−Qn, Qp]` (4-bit signed: −8…7). Weight codes are already in range; activations get a
///   `Clip(x, −Qn·s, Qp·s)` before their QuantizeLinear, which makes the 8-bit rounding land
///   on the narrower grid;
/// - signed 1-bit (binary {−1, +1}) weights are codes ±1; binary activations (the sign) have
///   no QuantizeLinear form and are refused.
/// Biases and batch norm stay FP32, as in the engine's fake quantization.
public enum ONNXExporter {
    /// The ONNX operator set the files use (per-axis QuantizeLinear/DequantizeLinear need 13).
    public static let opset = 13
    /// The IR version matching opset 13.
    public static let irVersion = 7

    /// What was written.
    public struct Result {
        /// The serialised `ModelProto`.
        public let data: Data
        /// Node count per operator type.
        public let operators: [String: Int]
    }

    /// Builds the ONNX model of `model` (in inference mode: batch norm with its running
    /// statistics), quantized as `quantization` when given.
    ///
    /// - Throws: `ONNXExportError` for a module or quantization without an ONNX form, a
    ///   missing step size, or an encoder failure.
    public static func export(_ model: Model, quantization: ONNXQuantization? = nil) throws -> Result {
        let io = model.interface
        var walk = ONNXWalk(model: model, quantization: quantization)
        walk.graph.reserve(io.inputName)
        let image = model.inputShape.count == 3
        let nchw = image && io.inputLayout == .nchw
        let input = ONNXValue(name: io.inputName, shape: [1] + model.inputShape, layout: !image ? .flat : nchw ? .nchw : .nhwc)
        var output = try walk.graph(model.graph, input)
        if output.layout == .nchw { output = walk.toNHWC(output, scope: "output") }
        if io.outputSoftmax {
            output = ONNXValue(name: walk.graph.node("Softmax", [output.name], name: "softmax", attributes: [("axis", .int(1))]),
                               shape: output.shape, layout: output.layout)
        }

        var graph = Onnx_GraphProto()
        graph.name = model.name
        if !walk.graph.renameOutput(output.name, to: io.outputName) {
            output = ONNXValue(name: walk.graph.node("Identity", [output.name], name: "output"), shape: output.shape,
                               layout: output.layout)
            _ = walk.graph.renameOutput(output.name, to: io.outputName)
        }
        graph.node = walk.graph.nodes
        graph.initializer = walk.graph.initializers
        let s = model.inputShape
        graph.input = [.floatTensor(io.inputName, dims: [nil] + (nchw ? [s[2], s[0], s[1]] : s).map { $0 })]
        graph.output = [.floatTensor(io.outputName, dims: [nil] + output.shape.dropFirst().map { $0 })]

        var proto = Onnx_ModelProto()
        proto.irVersion = Int64(irVersion)
        var opset = Onnx_OperatorSetIdProto()
        opset.domain = ""
        opset.version = Int64(Self.opset)
        proto.opsetImport = [opset]
        proto.producerName = "EasyCompression"
        proto.producerVersion = "1"
        proto.docString = "\(model.name), " + (quantization == nil ? "FP32" : "QDQ int8 (LSQ)")
            + "; input \(nchw ? "NCHW" : "NHWC") \(io.inputName)"
        proto.graph = graph
        var meta = Onnx_StringStringEntryProto()
        meta.key = "easycompression.model"
        meta.value = model.name
        proto.metadataProps = [meta]
        do {
            let data: Data = try proto.serializedBytes()
            return Result(data: data, operators: Dictionary(walk.graph.nodes.map { ($0.opType, 1) }, uniquingKeysWith: +))
        } catch {
            throw ONNXExportError.serialization(reason: "\(error)")
        }
    }
}

/// A value of the graph: its name, the engine's shape for it (NHWC feature maps, `[N, F]`
/// otherwise; N = 1 here) and the order ONNX holds it in.
struct ONNXValue {
    enum Layout { case nhwc, nchw, flat }
    let name: String
    let shape: [Int]
    let layout: Layout
}

/// The walk over a model's modules that emits their ONNX nodes.
struct ONNXWalk {
    let model: Model
    let quantization: ONNXQuantization?
    var graph = ONNXGraphBuilder()

    init(model: Model, quantization: ONNXQuantization?) {
        self.model = model
        self.quantization = quantization
    }

    /// The nodes in order, fused as the engine runs them (`Graph.steps`, from `Fusion.plan`);
    /// in an FP32 export a batch norm that only a Conv2D/Dense feeds is folded into it
    /// (`Fusion.foldableBatchNorms`, `BatchNorm.fold`) — exact up to rounding in inference.
    mutating func graph(_ g: Graph, _ x: ONNXValue) throws -> ONNXValue {
        var values = [ONNXValue?](repeating: nil, count: g.valueShapes.count)
        values[g.input] = x
        func input(_ i: Int) -> ONNXValue { values[g.nodes[i].inputs[0]]! }
        let folds = quantization == nil ? Fusion.foldableBatchNorms(g) : [:]
        let folded = Set(folds.values)
        for step in g.steps {
            switch step {
            case let .node(i) where folds[i] != nil:
                let bn = g.nodes[folds[i]!].op.layer as! BatchNorm
                values[g.nodes[i].outputs[0]] = try weightLayer(Self.folding(g.nodes[i].op.layer!, bn), input(i), relu: false)
            case let .node(i) where folded.contains(i):
                values[g.nodes[i].outputs[0]] = input(i)
            case let .node(i):
                let node = g.nodes[i]
                let outs = try self.node(node, node.inputs.map { values[$0]! })
                for (v, out) in zip(node.outputs, outs) { values[v] = out }
            case let .weightReLU(i, relu):
                values[g.nodes[relu].outputs[0]] = try weightLayer(g.nodes[i].op.layer as! ActivationFusable, input(i), relu: true)
            case let .reluMaxPool(relu, pool):
                values[g.nodes[pool].outputs[0]] = maxPool(g.nodes[pool].op.layer as! MaxPool, self.relu(input(relu), scope: g.nodes[relu].name))
            }
        }
        return values[g.output]!
    }

    /// A copy of weight layer `layer` with batch norm `bn` folded into its kernel and bias.
    static func folding(_ layer: Module, _ bn: BatchNorm) -> ActivationFusable {
        switch layer {
        case let c as Conv2D:
            let (k, b) = bn.fold(kernel: c.weight.value, bias: c.bias?.value)
            return Conv2D(name: c.name, kernel: k, bias: b, stride: c.stride, strideWidth: c.strideWidth, padding: c.padding,
                          pads: c.pads, groups: c.groups)
        case let d as Dense:
            let (k, b) = bn.fold(kernel: d.weight.value, bias: d.bias?.value)
            return Dense(name: d.name, weight: k, bias: b)
        default:
            preconditionFailure("\(layer.name): only Conv2D and Dense fold a batch norm")
        }
    }

    mutating func node(_ node: GraphNode, _ x: [ONNXValue]) throws -> [ONNXValue] {
        switch node.op {
        case let .layer(m):
            return [try module(m, x[0])]
        case .add, .sub, .mul, .div:
            // Same layout for both operands; rank-4 maps meet in NCHW, where their neighbours are.
            let four = x.allSatisfy { $0.shape.count == 4 }
            let (a, b) = four ? (toNCHW(x[0], scope: node.name), toNCHW(x[1], scope: node.name))
                              : (toEngine(x[0], scope: node.name), toEngine(x[1], scope: node.name))
            let y = graph.node(node.op.opType, [a.name, b.name], name: node.name)
            return [ONNXValue(name: y, shape: GraphBuilder.broadcast(x[0].shape, x[1].shape)!, layout: a.layout)]
        case let .concat(axis):
            let parts = x.map { $0.shape.count == 4 ? toNCHW($0, scope: node.name) : toEngine($0, scope: node.name) }
            var shape = parts[0].shape
            shape[axis] = parts.reduce(0) { $0 + $1.shape[axis] }
            let y = graph.node("Concat", parts.map(\.name), name: node.name,
                               attributes: [("axis", .int(Self.onnxAxis(axis, parts[0])))])
            return [ONNXValue(name: y, shape: shape, layout: parts[0].layout)]
        case let .split(axis, sizes):
            let v = x[0].shape.count == 4 ? toNCHW(x[0], scope: node.name) : toEngine(x[0], scope: node.name)
            let ys = graph.nodes("Split", [v.name, graph.int64s(scopePath(node.name, "split"), sizes.map(Int64.init))],
                                 outputs: sizes.count, name: node.name, attributes: [("axis", .int(Self.onnxAxis(axis, v)))])
            return zip(ys, sizes).map { y, size in
                var shape = v.shape
                shape[axis] = size
                return ONNXValue(name: y, shape: shape, layout: v.layout)
            }
        case let .transpose(perm):
            let v = toEngine(x[0], scope: node.name)
            let y = graph.node("Transpose", [v.name], name: node.name, attributes: [("perm", .ints(perm))])
            return [ONNXValue(name: y, shape: perm.map { v.shape[$0] }, layout: perm.count == 4 ? .nhwc : .flat)]
        case let .reshape(shape):
            let v = toEngine(x[0], scope: node.name)
            let y = graph.node("Reshape", [v.name, graph.int64s(scopePath(node.name, "shape"), ([0] + shape).map(Int64.init))],
                               name: node.name)
            return [ONNXValue(name: y, shape: [v.shape[0]] + shape, layout: shape.count == 3 ? .nhwc : .flat)]
        case let .constant(p):
            let name = graph.floats(p.name, shape: p.shape, p.value.scalars)
            return [ONNXValue(name: name, shape: p.shape, layout: p.shape.count == 4 ? .nhwc : .flat)]
        }
    }

    /// The ONNX axis of engine axis `axis` of a value held in `v.layout`.
    static func onnxAxis(_ axis: Int, _ v: ONNXValue) -> Int { v.layout == .nchw ? [0, 2, 3, 1][axis] : axis }

    mutating func module(_ m: Module, _ x: ONNXValue) throws -> ONNXValue {
        switch m {
        case let layer as Conv2D:
            return try weightLayer(layer, x, relu: false)
        case let layer as Dense:
            return try weightLayer(layer, x, relu: false)
        case let bn as BatchNorm:
            return batchNorm(bn, x)
        case is ReLU:
            return relu(x, scope: m.name)
        case let pool as MaxPool:
            return maxPool(pool, x)
        case let pool as AvgPool:
            return averagePool(pool, x)
        case let act as ActivationLayer:
            return activation(act, x)
        case is Flatten:
            return flatten(x, scope: m.name)
        case is GlobalAvgPool:
            let v = toNCHW(x, scope: m.name)
            let pooled = graph.node("GlobalAveragePool", [v.name], name: scopePath(m.name, "GlobalAveragePool"))
            let flat = graph.node("Flatten", [pooled], name: scopePath(m.name, "Flatten"), attributes: [("axis", .int(1))])
            return ONNXValue(name: flat, shape: [x.shape[0], x.shape[3]], layout: .flat)
        default:
            throw ONNXExportError.unsupportedModule(model: model.name, module: m.name, opType: m.opType)
        }
    }

    // MARK: Layouts

    mutating func toNCHW(_ x: ONNXValue, scope: String) -> ONNXValue {
        guard x.layout == .nhwc else { return x }
        let t = graph.node("Transpose", [x.name], name: scopePath(scope, "to_nchw"), attributes: [("perm", .ints([0, 3, 1, 2]))])
        return ONNXValue(name: t, shape: x.shape, layout: .nchw)
    }

    mutating func toNHWC(_ x: ONNXValue, scope: String) -> ONNXValue {
        guard x.layout == .nchw else { return x }
        let t = graph.node("Transpose", [x.name], name: scopePath(scope, "to_nhwc"), attributes: [("perm", .ints([0, 2, 3, 1]))])
        return ONNXValue(name: t, shape: x.shape, layout: .nhwc)
    }

    /// `x` in the engine's own layout (NHWC for feature maps).
    mutating func toEngine(_ x: ONNXValue, scope: String) -> ONNXValue { toNHWC(x, scope: scope) }

    // MARK: Layers

    mutating func relu(_ x: ONNXValue, scope: String) -> ONNXValue {
        ONNXValue(name: graph.node("Relu", [x.name], name: scopePath(scope, "Relu")), shape: x.shape, layout: x.layout)
    }

    mutating func maxPool(_ pool: MaxPool, _ x: ONNXValue) -> ONNXValue {
        let v = toNCHW(x, scope: pool.name)
        let y = graph.node("MaxPool", [v.name], name: scopePath(pool.name, "MaxPool"), attributes: Self.window(pool.window))
        return ONNXValue(name: y, shape: pool.outputShape(for: x.shape), layout: .nchw)
    }

    mutating func averagePool(_ pool: AvgPool, _ x: ONNXValue) -> ONNXValue {
        let v = toNCHW(x, scope: pool.name)
        let y = graph.node("AveragePool", [v.name], name: scopePath(pool.name, "AveragePool"),
                           attributes: Self.window(pool.window) + [("count_include_pad", .int(pool.countIncludePad ? 1 : 0))])
        return ONNXValue(name: y, shape: pool.outputShape(for: x.shape), layout: .nchw)
    }

    static func window(_ w: PoolWindow) -> [(String, ONNXAttribute)] {
        [("kernel_shape", .ints([w.kernelHeight, w.kernelWidth])), ("strides", .ints([w.strideHeight, w.strideWidth])),
         ("pads", .ints([w.pads.top, w.pads.left, w.pads.bottom, w.pads.right])), ("ceil_mode", .int(w.ceilMode ? 1 : 0))]
    }

    mutating func activation(_ layer: ActivationLayer, _ x: ONNXValue) -> ONNXValue {
        let scope = layer.name
        let y: String
        switch layer.kind {
        case let .clip(lower, upper):
            y = graph.node("Clip", [x.name, graph.floats(scopePath(scope, "min"), shape: [], [lower]),
                                    graph.floats(scopePath(scope, "max"), shape: [], [upper])], name: scopePath(scope, "Clip"))
        case let .leakyRelu(alpha):
            y = graph.node("LeakyRelu", [x.name], name: scopePath(scope, "LeakyRelu"), attributes: [("alpha", .float(alpha))])
        case .sigmoid:
            y = graph.node("Sigmoid", [x.name], name: scopePath(scope, "Sigmoid"))
        case let .hardSigmoid(alpha, beta):
            y = graph.node("HardSigmoid", [x.name], name: scopePath(scope, "HardSigmoid"),
                           attributes: [("alpha", .float(alpha)), ("beta", .float(beta))])
        case .hardSwish:
            // HardSwish is opset 14: x · HardSigmoid(x; 1/6, 1/2) in opset 13.
            let gate = graph.node("HardSigmoid", [x.name], name: scopePath(scope, "HardSigmoid"),
                                  attributes: [("alpha", .float(1.0 / 6)), ("beta", .float(0.5))])
            y = graph.node("Mul", [x.name, gate], name: scopePath(scope, "Mul"))
        case .tanh:
            y = graph.node("Tanh", [x.name], name: scopePath(scope, "Tanh"))
        }
        return ONNXValue(name: y, shape: x.shape, layout: x.layout)
    }

    /// The engine flattens `[N, H, W, C]` in H, W, C order: a NCHW map goes back to NHWC first.
    mutating func flatten(_ x: ONNXValue, scope: String) -> ONNXValue {
        guard x.layout != .flat else { return x }
        let v = toNHWC(x, scope: scope)
        let y = graph.node("Flatten", [v.name], name: scopePath(scope, "Flatten"), attributes: [("axis", .int(1))])
        return ONNXValue(name: y, shape: [x.shape[0], x.shape.dropFirst().reduce(1, *)], layout: .flat)
    }

    mutating func batchNorm(_ bn: BatchNorm, _ x: ONNXValue) -> ONNXValue {
        let v = toNCHW(x, scope: bn.name)
        let c = [bn.channels]
        let inputs = [v.name,
                      graph.floats(bn.gamma.name, shape: c, bn.gamma.value.scalars),
                      graph.floats(bn.beta.name, shape: c, bn.beta.value.scalars),
                      graph.floats(bn.movingMean.name, shape: c, bn.movingMean.value.scalars),
                      graph.floats(bn.movingVariance.name, shape: c, bn.movingVariance.value.scalars)]
        let y = graph.node("BatchNormalization", inputs, name: scopePath(bn.name, "BatchNormalization"),
                           attributes: [("epsilon", .float(bn.epsilon)), ("momentum", .float(bn.momentum))])
        return ONNXValue(name: y, shape: x.shape, layout: .nchw)
    }

    /// Conv2D (`Conv`, NCHW, OIHW kernel, explicit pads) or Dense (`Gemm`, or `MatMul` without
    /// a bias), with QDQ on input, kernel (and output) when the plan quantizes the layer.
    mutating func weightLayer(_ layer: ActivationFusable, _ x: ONNXValue, relu fusedReLU: Bool) throws -> ONNXValue {
        let planned = quantization?.layer(layer.name)
        var y: ONNXValue
        if let conv = layer as? Conv2D {
            let v = toNCHW(x, scope: conv.name)
            let input = try planned.map { try quantizeActivation(v.name, layer: conv.name, key: "input", $0.input) } ?? v.name
            let k = conv.weight.shape  // [kh, kw, cin/groups, cout]
            let weight = try kernel(conv.weight, layer: conv.name, planned: planned, onnxShape: [k[3], k[2], k[0], k[1]],
                                    permutation: [3, 2, 0, 1], channelAxis: 0)
            let p = conv.explicitPads(height: x.shape[1], width: x.shape[2])
            var inputs = [input, weight]
            if let b = conv.bias { inputs.append(graph.floats(b.name, shape: b.shape, b.value.scalars)) }
            let out = graph.node("Conv", inputs, name: scopePath(conv.name, "Conv"), attributes: [
                ("kernel_shape", .ints([k[0], k[1]])), ("strides", .ints([conv.stride, conv.strideWidth])),
                ("pads", .ints([p.top, p.left, p.bottom, p.right])), ("dilations", .ints([1, 1])), ("group", .int(conv.groups)),
            ])
            y = ONNXValue(name: out, shape: conv.outputShape(for: x.shape), layout: .nchw)
        } else if let dense = layer as? Dense {
            let v = flatten(x, scope: dense.name)
            let input = try planned.map { try quantizeActivation(v.name, layer: dense.name, key: "input", $0.input) } ?? v.name
            let weight = try kernel(dense.weight, layer: dense.name, planned: planned, onnxShape: dense.weight.shape,
                                    permutation: [0, 1], channelAxis: 1)
            let out: String
            if let b = dense.bias {
                out = graph.node("Gemm", [input, weight, graph.floats(b.name, shape: b.shape, b.value.scalars)],
                                 name: scopePath(dense.name, "Gemm"))
            } else {
                out = graph.node("MatMul", [input, weight], name: scopePath(dense.name, "MatMul"))
            }
            y = ONNXValue(name: out, shape: dense.outputShape(for: v.shape), layout: .flat)
        } else {
            throw ONNXExportError.unsupportedModule(model: model.name, module: layer.name, opType: layer.opType)
        }
        if fusedReLU { y = relu(y, scope: layer.name) }
        if let out = planned?.output {
            y = ONNXValue(name: try quantizeActivation(y.name, layer: layer.name, key: "output", out), shape: y.shape, layout: y.layout)
        }
        return y
    }

    /// The kernel in ONNX's layout: FP32, or INT8 codes + `DequantizeLinear` when planned.
    mutating func kernel(_ w: Parameter, layer: String, planned: QuantizedLayer?, onnxShape: [Int], permutation: [Int],
                         channelAxis: Int) throws -> String {
        guard let planned else {
            return graph.floats(w.name, shape: onnxShape, permute(w.value.scalars, shape: w.shape, permutation))
        }
        let channels = w.shape.last!
        let perChannel = planned.weight.perChannel
        let scale = try quantization!.scales("weight:\(layer)", layer: layer, count: perChannel ? channels : 1)
        let range = QuantRange(bits: planned.weight.bits, signed: true)
        guard w.value.scalars.allSatisfy(\.isFinite) else {
            throw ONNXExportError.unsupportedQuantization(layer: layer, reason: "its weights hold NaN or infinity (a diverged run?)")
        }
        let codes = Int8Layer.quantizeWeights(w.value, scale: scale, range: range)
        let shape = perChannel ? [channels] : []
        let inputs = [graph.int8s(scopePath(layer, "weight_int8"), shape: onnxShape, permute(codes, shape: w.shape, permutation)),
                      graph.floats(scopePath(layer, "weight_scale"), shape: shape, scale),
                      graph.int8s(scopePath(layer, "weight_zero_point"), shape: shape, [Int8](repeating: 0, count: scale.count))]
        return graph.node("DequantizeLinear", inputs, name: scopePath(layer, "weight", "DequantizeLinear"),
                          attributes: perChannel ? [("axis", .int(channelAxis))] : [])
    }

    /// `x` fake-quantized with the step `<key>:<layer>`: [Clip →] QuantizeLinear → DequantizeLinear.
    mutating func quantizeActivation(_ x: String, layer: String, key: String, _ q: TensorQuantization) throws -> String {
        let range = QuantRange(bits: q.bits, signed: q.signed)
        guard !range.isBinary else {
            throw ONNXExportError.unsupportedQuantization(
                layer: layer, reason: "signed 1-bit (binary) \(key) activations are a sign function, which QuantizeLinear cannot express")
        }
        let s = try quantization!.scales("\(key):\(layer)", layer: layer, count: 1)[0]
        let scope = scopePath(layer, key)
        var value = x
        if range.bits < 8 {
            value = graph.node("Clip", [x, graph.floats(scopePath(scope, "clip_min"), shape: [], [-range.qn * s]),
                                        graph.floats(scopePath(scope, "clip_max"), shape: [], [range.qp * s])],
                               name: scopePath(scope, "Clip"))
        }
        let scale = graph.floats(scopePath(scope, "scale"), shape: [], [s])
        let zero = range.signed ? graph.int8s(scopePath(scope, "zero_point"), shape: [], [0])
            : graph.uint8s(scopePath(scope, "zero_point"), shape: [], [0])
        let q8 = graph.node("QuantizeLinear", [value, scale, zero], name: scopePath(scope, "QuantizeLinear"))
        return graph.node("DequantizeLinear", [q8, scale, zero], name: scopePath(scope, "DequantizeLinear"))
    }
}

/// `values` (row-major, `shape`) with their axes reordered: axis `i` of the result is axis
/// `permutation[i]` of the input.
func permute<T>(_ values: [T], shape: [Int], _ permutation: [Int]) -> [T] {
    precondition(permutation.sorted() == Array(shape.indices), "permute: \(permutation) is not a permutation of \(shape.count) axes")
    if permutation == Array(shape.indices) { return values }
    var strides = [Int](repeating: 1, count: shape.count)
    for i in stride(from: shape.count - 2, through: 0, by: -1) { strides[i] = strides[i + 1] * shape[i + 1] }
    let outShape = permutation.map { shape[$0] }, outStrides = permutation.map { strides[$0] }
    var out: [T] = []
    out.reserveCapacity(values.count)
    var index = [Int](repeating: 0, count: shape.count)
    for _ in 0..<values.count {
        var source = 0
        for a in index.indices { source += index[a] * outStrides[a] }
        out.append(values[source])
        var a = index.count - 1
        while a >= 0 {
            index[a] += 1
            if index[a] < outShape[a] { break }
            index[a] = 0
            a -= 1
        }
    }
    return out
}
