import ECNN
import ECTensor
import Foundation

extension ONNXImportState {
    // MARK: - Element-wise

    /// Add/Sub/Mul/Div of two values, or of a value and a constant (held in the graph).
    mutating func binary(_ i: Int, _ node: Onnx_NodeProto) throws {
        let op: NodeOp = ["Add": .add, "Sub": .sub, "Mul": .mul, "Div": .div][node.opType]!
        let name = engineName(node, index: i)
        let (l, r) = (node.input[0], node.input[1])
        var result: ImportedValue
        if let c = constants[l] ?? constants[r] {
            var x = try value(constants[l] == nil ? l : r)
            let k = try constantOperand(c.tensor, like: &x, name: name)
            let id = constants[l] == nil ? try builder.binary(op, x.id, k, name: name) : try builder.binary(op, k, x.id, name: name)
            result = x
            result.id = id
            result.shape = try broadcastONNX(x.shape, c.shape)
        } else {
            var a = try materializeFeatures(try value(l), name: name), b = try materializeFeatures(try value(r), name: name)
            guard a.rank == b.rank else {
                throw ONNXReason("operands of ranks \(a.rank) and \(b.rank): only equal ranks (or a constant operand) are supported")
            }
            let target = a.rank == 4 ? Self.channelsLast(4) : a.perm
            a = try arrange(a, target, name: name + "/lhs")
            b = try arrange(b, target, name: name + "/rhs")
            result = a
            result.id = try builder.binary(op, a.id, b.id, name: name)
            result.shape = try broadcastONNX(a.shape, b.shape)
        }
        values[node.output[0]] = result
    }

    /// The ONNX broadcast shape, or the reason it has none.
    func broadcastONNX(_ a: [Int], _ b: [Int]) throws -> [Int] {
        guard let s = GraphBuilder.broadcast(a, b) else { throw ONNXReason("shapes \(a) and \(b) do not broadcast") }
        return s
    }

    /// A graph constant holding `c` arranged to broadcast against `x` in storage order.
    mutating func constantOperand(_ c: Tensor, like x: inout ImportedValue, name: String) throws -> Int {
        guard c.rank <= x.rank else { throw ONNXReason("a constant \(c.shape) of higher rank than its operand \(x.shape)") }
        var full = [Int](repeating: 1, count: x.rank - c.rank) + c.shape
        var k = c.reshaped(full)
        if x.featureOrder != nil, full.last! > 1 {
            x = try materializeFeatures(x, name: name)
        }
        if x.perm != Array(0..<x.rank) {
            let p = x.perm
            let storage = p.map { full[$0] }
            k = Self.permute(k, p)
            full = storage
        }
        // No batch dimension in a constant: a leading 1 broadcasts.
        let parameter = Parameter(name: unique(name + "/constant"), role: .constant, value: k.reshaped(full))
        return try builder.constant(parameter)
    }

    /// `t` with its axes permuted: output axis i is input axis `p[i]`.
    static func permute(_ t: Tensor, _ p: [Int]) -> Tensor {
        let shape = t.shape, out = p.map { shape[$0] }
        var strides = [Int](repeating: 1, count: shape.count)
        for d in stride(from: shape.count - 2, through: 0, by: -1) { strides[d] = strides[d + 1] * shape[d + 1] }
        let count = t.count
        return t.withUnsafeBufferPointer { s in
            Tensor(shape: out, scalars: (0..<count).map { flat in
                var rest = flat, offset = 0
                for d in stride(from: out.count - 1, through: 0, by: -1) {
                    offset += (rest % out[d]) * strides[p[d]]
                    rest /= out[d]
                }
                return s[offset]
            })
        }
    }

    // MARK: - Joining and cutting

    mutating func concat(_ i: Int, _ node: Onnx_NodeProto, _ a: ONNXAttributes) throws {
        let name = engineName(node, index: i)
        var parts = try node.input.map { try materializeFeatures(try value($0), name: name) }
        let rank = parts[0].rank
        var axis = a.int("axis", 1)
        if axis < 0 { axis += rank }
        guard axis > 0, axis < rank, parts.allSatisfy({ $0.rank == rank }) else {
            throw ONNXReason("axis \(a.int("axis", 1)) of rank-\(rank) inputs (the batch axis cannot be joined)")
        }
        let target = rank == 4 ? Self.channelsLast(4) : parts[0].perm
        parts = try parts.enumerated().map { try arrange($1, target, name: name + "/input\($0)") }
        let storageAxis = target.firstIndex(of: axis)!
        let id = try builder.concat(parts.map(\.id), axis: storageAxis, name: name)
        var shape = parts[0].shape
        shape[axis] = parts.reduce(0) { $0 + $1.shape[axis] }
        values[node.output[0]] = ImportedValue(id: id, shape: shape, perm: target)
    }

    mutating func split(_ i: Int, _ node: Onnx_NodeProto, _ a: ONNXAttributes) throws {
        let name = engineName(node, index: i)
        var x = try materializeFeatures(try value(node.input[0]), name: name)
        var axis = a.int("axis", 0)
        if axis < 0 { axis += x.rank }
        let sizes: [Int]
        if let given = a.ints("split") {
            sizes = given
        } else if !Self.input(node, 1).isEmpty {
            sizes = (try constant(node.input[1], "split").ints ?? []).map { Int($0) }
        } else {
            guard x.shape[axis] % node.output.count == 0 else {
                throw ONNXReason("\(x.shape[axis]) along axis \(axis) do not split evenly into \(node.output.count)")
            }
            sizes = [Int](repeating: x.shape[axis] / node.output.count, count: node.output.count)
        }
        guard axis > 0, sizes.count == node.output.count else { throw ONNXReason("split \(sizes) along axis \(axis)") }
        if x.rank == 4 { x = try arrange(x, Self.channelsLast(4), name: name) }
        let ids = try builder.split(x.id, axis: x.perm.firstIndex(of: axis)!, sizes: sizes, name: name)
        for (k, (out, id)) in zip(node.output, ids).enumerated() {
            var v = x
            v.id = id
            v.shape[axis] = sizes[k]
            values[out] = v
        }
    }

    /// Slice with constant starts/ends along one axis (others whole), step 1: a split whose
    /// middle part is kept.
    mutating func slice(_ i: Int, _ node: Onnx_NodeProto) throws {
        let name = engineName(node, index: i)
        var x = try materializeFeatures(try value(node.input[0]), name: name)
        let starts = try constant(node.input[1], "starts").ints ?? [], ends = try constant(node.input[2], "ends").ints ?? []
        let axes = try Self.input(node, 3).isEmpty ? Array(0..<starts.count).map { Int64($0) } : constant(node.input[3], "axes").ints ?? []
        let steps = try Self.input(node, 4).isEmpty ? [Int64](repeating: 1, count: starts.count) : constant(node.input[4], "steps").ints ?? []
        var cut: (axis: Int, start: Int, end: Int)?
        for k in 0..<starts.count {
            let axis = Int(axes[k] < 0 ? axes[k] + Int64(x.rank) : axes[k]), n = x.shape[axis]
            func clamp(_ v: Int64) -> Int { Int(max(0, min(Int64(n), v < 0 ? v + Int64(n) : v))) }
            let (s, e) = (clamp(starts[k]), clamp(ends[k]))
            guard steps[k] == 1 else { throw ONNXReason("step \(steps[k]): only step 1 is supported") }
            if s == 0 && e == n { continue }
            guard cut == nil, axis > 0, e > s else { throw ONNXReason("only a non-empty slice along one non-batch axis is supported") }
            cut = (axis, s, e)
        }
        guard let (axis, s, e) = cut else { values[node.output[0]] = x; return }
        if x.rank == 4 { x = try arrange(x, Self.channelsLast(4), name: name) }
        let sizes = [s, e - s, x.shape[axis] - e].filter { $0 > 0 }
        let ids = try builder.split(x.id, axis: x.perm.firstIndex(of: axis)!, sizes: sizes, name: name)
        x.id = ids[s > 0 ? 1 : 0]
        x.shape[axis] = e - s
        values[node.output[0]] = x
    }

    /// A constant zero Pad of the spatial axes, folded into the convolutions (or average
    /// pooling counting the padding) that read it.
    mutating func pad(_ i: Int, _ node: Onnx_NodeProto, _ a: ONNXAttributes) throws {
        var x = try value(node.input[0])
        let pads = try a.ints("pads") ?? constant(node.input[1], "pads").ints?.map { Int($0) } ?? []
        let value = Self.input(node, 2).isEmpty ? a.float("value", 0) : try constant(node.input[2], "constant_value").tensor.scalars.first ?? 0
        guard a.string("mode", "constant") == "constant", value == 0, x.rank == 4, pads.count == 8,
              pads[0] == 0, pads[1] == 0, pads[4] == 0, pads[5] == 0, pads.allSatisfy({ $0 >= 0 }) else {
            throw ONNXReason("only constant zero padding of the spatial axes is supported (pads \(pads))")
        }
        let readers = self.readers[node.output[0]] ?? []
        guard !readers.isEmpty, readers.allSatisfy({ ["Conv", "AveragePool"].contains(graph.node[$0].opType) }) else {
            throw ONNXReason("a Pad folds into the Conv or AveragePool that reads it; here it is read by "
                             + Set(readers.map { graph.node[$0].opType }).sorted().joined(separator: ", "))
        }
        x.pendingPads = Padding2D(top: pads[2], bottom: pads[6], left: pads[3], right: pads[7])
        values[node.output[0]] = x
    }

    // MARK: - Shapes

    /// `x` under ONNX shape `target` (batch first): free when the storage order allows it,
    /// a permuted flatten when only dense layers read it, a transpose then a reshape otherwise.
    mutating func reshape(_ x: ImportedValue, to target: [Int], name: String, readers: [Int] = []) throws -> ImportedValue {
        var x = try materializeFeatures(x, name: name)
        guard target != x.shape else { return x }
        guard target.reduce(1, *) == x.shape.reduce(1, *), target.first == 1 else {
            throw ONNXReason("a reshape of \(x.shape) to \(target) must keep the batch and the element count")
        }
        // The order of the non-unit axes in storage; if it is ONNX's, the reshape is a view.
        let storageOrder = x.perm.filter { x.shape[$0] != 1 }, onnxOrder = x.shape.indices.filter { x.shape[$0] != 1 }
        if storageOrder != onnxOrder, target.count == 2,
           !readers.isEmpty, readers.allSatisfy({ ["Gemm", "MatMul"].contains(graph.node[$0].opType) && constants[graph.node[$0].input[1]] != nil }) {
            // Flatten in storage order; the dense layer's rows follow (`featureOrder`).
            let id = try builder.reshape(x.id, to: [target[1]], name: unique(name))
            var strides = [Int](repeating: 1, count: x.rank)
            for d in stride(from: x.rank - 2, through: 0, by: -1) { strides[d] = strides[d + 1] * x.shape[d + 1] }
            let storageShape = x.storageShape
            let order = (0..<target[1]).map { j -> Int in
                var rest = j, onnx = 0
                for d in stride(from: x.rank - 1, through: 1, by: -1) {
                    onnx += (rest % storageShape[d]) * strides[x.perm[d]]
                    rest /= storageShape[d]
                }
                return onnx
            }
            return ImportedValue(id: id, shape: target, perm: [0, 1], featureOrder: order)
        }
        if storageOrder != onnxOrder { x = try materialize(x, name: name) }
        let id = try builder.reshape(x.id, to: Array(target.dropFirst()), name: unique(name))
        // Unit axes may sit anywhere in storage; the new value is stored in ONNX order.
        return ImportedValue(id: id, shape: target, perm: Array(0..<target.count))
    }

    /// A Reshape's target (0 copies the input's dimension unless `allowZero`, −1 infers, the
    /// batch symbol or the file's fixed batch size is the batch), batch 1.
    func resolveShape(_ raw: [Int64], of x: ImportedValue, allowZero: Bool) throws -> [Int] {
        var out = raw.enumerated().map { k, d -> Int in
            if d == ONNXConstant.batch { return 1 }
            if d == 0 && !allowZero { return k < x.rank ? x.shape[k] : 0 }
            return Int(d)
        }
        guard let first = raw.first, first == ONNXConstant.batch || (first == 0 && !allowZero) || first == -1
                || (fixedBatch != nil && Int(first) == fixedBatch!) else {
            throw ONNXReason("shape \(raw.map { $0 == ONNXConstant.batch ? "N" : "\($0)" }) does not keep the batch dimension first")
        }
        out[0] = 1
        let total = x.shape.reduce(1, *)
        if let k = out.firstIndex(of: -1) {
            let known = out.enumerated().filter { $0.offset != k }.reduce(1) { $0 * $1.element }
            guard known > 0, total % known == 0 else { throw ONNXReason("cannot infer -1 in \(raw) for \(x.shape)") }
            out[k] = total / known
        }
        return out
    }

    /// The shape after Squeeze (drop `axes`, or every 1) or Unsqueeze (insert 1s at `axes`).
    func squeezed(_ shape: [Int], axes: [Int]?, unsqueeze: Bool) throws -> [Int] {
        if unsqueeze {
            guard let axes else { throw ONNXReason("Unsqueeze without axes") }
            let rank = shape.count + axes.count
            let normalized = Set(axes.map { $0 < 0 ? $0 + rank : $0 })
            var rest = shape.makeIterator()
            return (0..<rank).map { normalized.contains($0) ? 1 : rest.next()! }
        }
        let normalized = Set((axes ?? shape.indices.filter { shape[$0] == 1 && $0 > 0 }).map { $0 < 0 ? $0 + shape.count : $0 })
        guard !normalized.contains(0), normalized.allSatisfy({ shape[$0] == 1 }) else {
            throw ONNXReason("squeeze axes \(axes ?? []) of \(shape)")
        }
        return shape.indices.filter { !normalized.contains($0) }.map { shape[$0] }
    }
}
