import ECNN
import ECTensor
import Foundation

extension ONNXImportState {
    /// Imports node `i`: its outputs become engine values or import-time constants.
    mutating func visit(_ i: Int, _ node: Onnx_NodeProto) throws {
        guard node.domain.isEmpty || node.domain == "ai.onnx" else {
            throw ONNXImportError.unsupportedOp(file: file, node: node.name, op: "\(node.domain).\(node.opType)")
        }
        let a = ONNXAttributes(node)
        let ins = node.input
        // Everything constant: evaluate now (shape arithmetic, folded weights).
        if node.opType == "Shape" {
            try shapeOf(node)
            return
        }
        if node.opType == "Constant" {
            guard let t = a.tensor("value") else {
                let kinds = a.names.joined(separator: ", ")
                throw ONNXReason("only a tensor `value` is supported (found \(kinds))")
            }
            do { constants[node.output[0]] = try ONNXConstant(t) } catch { throw error }
            return
        }
        if !ins.filter({ !$0.isEmpty }).isEmpty, ins.allSatisfy({ $0.isEmpty || constants[$0] != nil }),
           let folded = try fold(node, a) {
            for (name, c) in zip(node.output, folded) { constants[name] = c }
            return
        }
        switch node.opType {
        case "Identity", "Dropout":
            if node.output.count > 1, !(readers[node.output[1]] ?? []).isEmpty {
                throw ONNXReason("its mask output is read; only the data output of Dropout is supported")
            }
            values[node.output[0]] = try value(ins[0])
        case "Conv": try conv(i, node, a)
        case "BatchNormalization": try batchNorm(i, node, a)
        case "Relu": try layer(i, node, ReLU(name: engineName(node, index: i)))
        case "Clip": try clip(i, node, a)
        case "LeakyRelu": try layer(i, node, ActivationLayer(name: engineName(node, index: i), kind: .leakyRelu(alpha: a.float("alpha", 0.01))))
        case "Sigmoid": try layer(i, node, ActivationLayer(name: engineName(node, index: i), kind: .sigmoid))
        case "Tanh": try layer(i, node, ActivationLayer(name: engineName(node, index: i), kind: .tanh))
        case "HardSigmoid":
            try layer(i, node, ActivationLayer(name: engineName(node, index: i),
                                               kind: .hardSigmoid(alpha: a.float("alpha", 0.2), beta: a.float("beta", 0.5))))
        case "HardSwish": try layer(i, node, ActivationLayer(name: engineName(node, index: i), kind: .hardSwish))
        case "Add", "Sub", "Mul", "Div": try binary(i, node)
        case "MaxPool", "AveragePool": try pool(i, node, a)
        case "GlobalAveragePool": try globalAveragePool(i, node)
        case "ReduceMean": try reduceMean(i, node, a)
        case "Gemm", "MatMul": try dense(i, node, a)
        case "Flatten":
            let x = try value(ins[0])
            let axis = a.int("axis", 1)
            guard axis == 1 || (axis == -x.rank + 1 && x.rank > 1) else {
                throw ONNXReason("axis \(axis): only flattening everything but the batch (axis 1) is supported")
            }
            values[node.output[0]] = try reshape(x, to: [1, x.shape.dropFirst().reduce(1, *)], name: engineName(node, index: i),
                                                 readers: readers[node.output[0]] ?? [])
        case "Reshape":
            let x = try value(ins[0])
            let target = try resolveShape(try constant(ins[1], "shape").ints ?? [], of: x, allowZero: a.int("allowzero", 0) == 1)
            values[node.output[0]] = try reshape(x, to: target, name: engineName(node, index: i), readers: readers[node.output[0]] ?? [])
        case "Squeeze", "Unsqueeze":
            let x = try value(ins[0])
            let axes = try a.ints("axes") ?? (Self.input(node, 1).isEmpty ? nil : constant(ins[1], "axes").ints?.map { Int($0) })
            let target = try squeezed(x.shape, axes: axes, unsqueeze: node.opType == "Unsqueeze")
            values[node.output[0]] = try reshape(x, to: target, name: engineName(node, index: i), readers: readers[node.output[0]] ?? [])
        case "Transpose":
            var x = try materializeFeatures(try value(ins[0]), name: engineName(node, index: i))
            let q = a.ints("perm") ?? Array((0..<x.rank).reversed())
            guard q.count == x.rank, q.sorted() == Array(0..<x.rank), q[0] == 0 else {
                throw ONNXReason("perm \(q) moves the batch axis or does not fit rank \(x.rank)")
            }
            // No data moves: the storage stays, its meaning is relabelled.
            let inverse = (0..<q.count).map { q.firstIndex(of: $0)! }
            x.perm = x.perm.map { inverse[$0] }
            x.shape = q.map { x.shape[$0] }
            values[node.output[0]] = x
        case "Concat": try concat(i, node, a)
        case "Split": try split(i, node, a)
        case "Slice": try slice(i, node)
        case "Pad": try pad(i, node, a)
        case "Softmax":
            guard outputs.contains(node.output[0]) else {
                throw ONNXReason("a Softmax inside the graph is not supported (only a final one, which training drops)")
            }
            let x = try value(ins[0])
            let axis = a.int("axis", -1)
            guard x.rank == 2, axis == 1 || axis == -1 else { throw ONNXReason("softmax over axis \(axis) of \(x.shape)") }
            interface.outputSoftmax = true
            values[node.output[0]] = x
        default:
            throw ONNXImportError.unsupportedOp(file: file, node: node.name, op: node.opType)
        }
    }

    // MARK: - Layers

    /// A one-input element-wise layer: the permutation passes through.
    mutating func layer(_ i: Int, _ node: Onnx_NodeProto, _ module: Module) throws {
        var x = try materializeFeatures(try value(node.input[0]), name: module.name)
        x.id = try builder.layer(module, x.id)
        values[node.output[0]] = x
    }

    mutating func clip(_ i: Int, _ node: Onnx_NodeProto, _ a: ONNXAttributes) throws {
        func bound(_ k: Int, _ attr: String, _ fallback: Float) throws -> Float {
            let name = Self.input(node, k)
            if name.isEmpty { return a.float(attr, fallback) }
            let t = try constant(name, attr).tensor
            guard t.count == 1 else { throw ONNXReason("its \(attr) must be a scalar, got \(t.shape)") }
            return t.scalars[0]
        }
        let lower = try bound(1, "min", -.infinity), upper = try bound(2, "max", .infinity)
        let name = engineName(node, index: i)
        if lower == 0 && upper == .infinity {
            try layer(i, node, ReLU(name: name))
        } else {
            try layer(i, node, ActivationLayer(name: name, kind: .clip(min: lower, max: upper)))
        }
    }

    mutating func conv(_ i: Int, _ node: Onnx_NodeProto, _ a: ONNXAttributes) throws {
        var x = try value(node.input[0])
        guard x.rank == 4 else { throw ONNXReason("input \(x.shape): only 2-D convolutions of [N, C, H, W] are supported") }
        let w = try constant(node.input[1], "weight").tensor
        guard w.rank == 4 else { throw ONNXReason("weight \(w.shape) is not [O, I/groups, kH, kW]") }
        let groups = a.int("group", 1)
        guard a.ints("dilations").map({ $0.allSatisfy { $0 == 1 } }) ?? true else {
            throw ONNXReason("dilations \(a.ints("dilations")!): only dilation 1 is supported")
        }
        let (o, ipg, kh, kw) = (w.shape[0], w.shape[1], w.shape[2], w.shape[3])
        guard ipg * groups == x.shape[1], o % groups == 0 else {
            throw ONNXReason("weight \(w.shape) with \(groups) groups does not fit an input of \(x.shape[1]) channels")
        }
        let strides = a.ints("strides") ?? [1, 1]
        guard strides.count == 2, strides.allSatisfy({ $0 > 0 }) else { throw ONNXReason("strides \(strides)") }
        var pads = try windowPads(a, input: x, kernel: (kh, kw), strides: (strides[0], strides[1]))
        if let pending = x.pendingPads {
            pads = Padding2D(top: pads.top + pending.top, bottom: pads.bottom + pending.bottom,
                             left: pads.left + pending.left, right: pads.right + pending.right)
            x.pendingPads = nil
        }
        var bias: Tensor?
        if !Self.input(node, 2).isEmpty {
            bias = try constant(node.input[2], "bias").tensor
            guard bias!.count == o else { throw ONNXReason("bias \(bias!.shape) for \(o) output channels") }
            bias = bias!.reshaped([o])
        }
        // OIHW → HWIO.
        var kernel = Tensor(uninitializedShape: [kh, kw, ipg, o])
        w.withUnsafeBufferPointer { src in kernel.withUnsafeMutableBufferPointer { dst in
            for oc in 0..<o { for ic in 0..<ipg { for y in 0..<kh { for z in 0..<kw {
                dst[((y * kw + z) * ipg + ic) * o + oc] = src[((oc * ipg + ic) * kh + y) * kw + z]
            } } } }
        } }
        let name = engineName(node, index: i)
        x = try arrange(x, Self.channelsLast(4), name: name)
        let module = Conv2D(name: name, kernel: kernel, bias: bias, stride: strides[0], strideWidth: strides[1], pads: pads,
                            groups: groups)
        let id = try builder.layer(module, x.id)
        let s = builder.shape(id)
        values[node.output[0]] = ImportedValue(id: id, shape: [s[0], s[3], s[1], s[2]], perm: Self.channelsLast(4))
    }

    /// The explicit pads of a convolution or pooling window (`pads`, or `auto_pad`).
    func windowPads(_ a: ONNXAttributes, input x: ImportedValue, kernel: (Int, Int), strides: (Int, Int)) throws -> Padding2D {
        switch a.string("auto_pad", "NOTSET") {
        case "NOTSET":
            let p = a.ints("pads") ?? [0, 0, 0, 0]
            guard p.count == 4, p.allSatisfy({ $0 >= 0 }) else { throw ONNXReason("pads \(p)") }
            return Padding2D(onnx: p)
        case "VALID":
            return .zero
        case let mode where mode == "SAME_UPPER" || mode == "SAME_LOWER":
            func split(_ size: Int, _ k: Int, _ s: Int) -> (Int, Int) {
                let total = max(((size + s - 1) / s - 1) * s + k - size, 0)
                let small = total / 2
                return mode == "SAME_UPPER" ? (small, total - small) : (total - small, small)
            }
            let (t, b) = split(x.shape[2], kernel.0, strides.0), (l, r) = split(x.shape[3], kernel.1, strides.1)
            return Padding2D(top: t, bottom: b, left: l, right: r)
        case let mode:
            throw ONNXReason("auto_pad \(mode)")
        }
    }

    mutating func batchNorm(_ i: Int, _ node: Onnx_NodeProto, _ a: ONNXAttributes) throws {
        guard a.int("training_mode", 0) == 0, node.output.count == 1 || node.output.dropFirst().allSatisfy({ (readers[$0] ?? []).isEmpty }) else {
            throw ONNXReason("a BatchNormalization exported in training mode; export the model in eval mode")
        }
        var x = try value(node.input[0])
        guard x.rank == 4 || x.rank == 2 else { throw ONNXReason("input \(x.shape): only [N, C, H, W] or [N, C]") }
        let c = x.shape[1]
        let parts = try (1...4).map { k -> [Float] in
            let t = try constant(node.input[k], ["scale", "bias", "mean", "variance"][k - 1]).tensor
            guard t.count == c else { throw ONNXReason("\(["scale", "bias", "mean", "variance"][k - 1]) \(t.shape) for \(c) channels") }
            return t.scalars
        }
        let name = engineName(node, index: i)
        x = try arrange(x, Self.channelsLast(x.rank), name: name)
        let bn = BatchNorm(name: name, channels: c, momentum: a.float("momentum", 0.9), epsilon: a.float("epsilon", 1e-5))
        for (p, v) in zip([bn.gamma, bn.beta, bn.movingMean, bn.movingVariance], parts) { p.value = Tensor(shape: [c], scalars: v) }
        x.id = try builder.layer(bn, x.id)
        values[node.output[0]] = x
    }

    mutating func pool(_ i: Int, _ node: Onnx_NodeProto, _ a: ONNXAttributes) throws {
        var x = try value(node.input[0])
        guard x.rank == 4, let k = a.ints("kernel_shape"), k.count == 2 else {
            throw ONNXReason("only 2-D pooling of [N, C, H, W] with a 2-D kernel_shape is supported (input \(x.shape))")
        }
        guard a.ints("dilations").map({ $0.allSatisfy { $0 == 1 } }) ?? true, a.int("storage_order", 0) == 0 else {
            throw ONNXReason("dilations or storage_order other than the defaults")
        }
        let strides = a.ints("strides") ?? [1, 1]
        var pads = try windowPads(a, input: x, kernel: (k[0], k[1]), strides: (strides[0], strides[1]))
        let average = node.opType == "AveragePool", includePad = a.int("count_include_pad", 0) == 1
        if let pending = x.pendingPads {
            guard average && includePad else { throw ONNXReason("a zero Pad before \(node.opType) cannot fold into it") }
            pads = Padding2D(top: pads.top + pending.top, bottom: pads.bottom + pending.bottom,
                             left: pads.left + pending.left, right: pads.right + pending.right)
            x.pendingPads = nil
        }
        let window = PoolWindow(kernelHeight: k[0], kernelWidth: k[1], strideHeight: strides[0], strideWidth: strides[1],
                                pads: pads, ceilMode: a.int("ceil_mode", 0) == 1)
        let name = engineName(node, index: i)
        x = try arrange(x, Self.channelsLast(4), name: name)
        let module: Module = average ? AvgPool(name: name, window: window, countIncludePad: includePad)
                                     : MaxPool(name: name, window: window)
        if let problem = module.inputProblem(builder.shape(x.id)) { throw ONNXReason(problem) }
        let id = try builder.layer(module, x.id)
        let s = builder.shape(id)
        values[node.output[0]] = ImportedValue(id: id, shape: [s[0], s[3], s[1], s[2]], perm: Self.channelsLast(4))
    }

    mutating func globalAveragePool(_ i: Int, _ node: Onnx_NodeProto, keepDims: Bool = true) throws {
        var x = try value(node.input[0])
        guard x.rank == 4 else { throw ONNXReason("input \(x.shape) is not [N, C, H, W]") }
        let name = engineName(node, index: i)
        x = try arrange(x, Self.channelsLast(4), name: name)
        let c = x.shape[1]
        var id = try builder.layer(GlobalAvgPool(name: name), x.id)
        if keepDims {
            id = try builder.reshape(id, to: [1, 1, c], name: unique(name + "/keepdims"))
            values[node.output[0]] = ImportedValue(id: id, shape: [1, c, 1, 1], perm: Self.channelsLast(4))
        } else {
            values[node.output[0]] = ImportedValue(id: id, shape: [1, c], perm: [0, 1])
        }
    }

    mutating func reduceMean(_ i: Int, _ node: Onnx_NodeProto, _ a: ONNXAttributes) throws {
        let x = try value(node.input[0])
        let axes = try a.ints("axes") ?? (Self.input(node, 1).isEmpty ? nil : constant(node.input[1], "axes").ints?.map { Int($0) })
        let normalized = Set((axes ?? []).map { $0 < 0 ? $0 + x.rank : $0 })
        guard x.rank == 4, normalized == [2, 3] else {
            throw ONNXReason("only the mean over the spatial axes [2, 3] of [N, C, H, W] (global average pooling) is supported, got axes \(axes ?? [])")
        }
        try globalAveragePool(i, node, keepDims: a.int("keepdims", 1) == 1)
    }

    /// Gemm, or MatMul by a constant (with the following bias Add folded in).
    mutating func dense(_ i: Int, _ node: Onnx_NodeProto, _ a: ONNXAttributes) throws {
        let x = try value(node.input[0])
        guard x.rank == 2 else { throw ONNXReason("input \(x.shape): only [N, features] inputs are supported") }
        var w = try constant(node.input[1], "weight").tensor
        guard w.rank == 2 else { throw ONNXReason("weight \(w.shape) is not a matrix") }
        var outputName = node.output[0]
        var bias: Tensor?
        if node.opType == "Gemm" {
            guard a.int("transA", 0) == 0 else { throw ONNXReason("transA = 1 is not supported") }
            if a.int("transB", 0) == 1 { w = Self.transposed(w) }
            let alpha = a.float("alpha", 1)
            if alpha != 1 { w = Tensor(shape: w.shape, scalars: w.scalars.map { $0 * alpha }) }
            if !Self.input(node, 2).isEmpty {
                let c = try constant(node.input[2], "bias C").tensor, beta = a.float("beta", 1)
                guard c.count == w.shape[1] || c.count == 1 else { throw ONNXReason("bias \(c.shape) for \(w.shape[1]) outputs") }
                bias = Tensor(shape: [w.shape[1]], scalars: c.count == 1 ? [Float](repeating: c.scalars[0] * beta, count: w.shape[1])
                                                                          : c.scalars.map { $0 * beta })
            }
        } else if let reader = (readers[outputName] ?? []).first, readers[outputName]!.count == 1, !outputs.contains(outputName) {
            // MatMul + Add(constant [M]) is a dense layer with a bias (tf2onnx's Keras Dense).
            let add = graph.node[reader]
            let other = add.input[0] == outputName ? add.input[1] : add.input[0]
            if add.opType == "Add", let c = constants[other]?.tensor, c.count == w.shape[1] {
                bias = c.reshaped([w.shape[1]])
                outputName = add.output[0]
                consumed.insert(reader)
            }
        }
        guard w.shape[0] == x.shape[1] else { throw ONNXReason("weight \(w.shape) for \(x.shape[1]) input features") }
        if let order = x.featureOrder {
            // Storage feature j is ONNX feature order[j]: weight row j must be row order[j].
            let n = w.shape[1]
            w = w.withUnsafeBufferPointer { src in
                Tensor(shape: w.shape, scalars: order.flatMap { r in Array(src[(r * n)..<((r + 1) * n)]) })
            }
        }
        let name = engineName(node, index: i)
        let module = Dense(name: name, weight: w, bias: bias)
        let id = try builder.layer(module, x.id)
        values[outputName] = ImportedValue(id: id, shape: [1, w.shape[1]], perm: [0, 1])
    }

    static func transposed(_ m: Tensor) -> Tensor {
        let (r, c) = (m.shape[0], m.shape[1])
        return m.withUnsafeBufferPointer { s in Tensor(shape: [c, r], scalars: (0..<(c * r)).map { s[($0 % r) * c + $0 / r] }) }
    }
}
