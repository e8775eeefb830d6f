import ECTensor
import Foundation

extension ONNXImportState {
    /// The outputs of a node whose inputs are all constants, evaluated now; nil when the op is
    /// not one the importer evaluates (it is then imported as usual).
    func fold(_ node: Onnx_NodeProto, _ a: ONNXAttributes) throws -> [ONNXConstant]? {
        let c = node.input.map { $0.isEmpty ? nil : constants[$0] }
        func ints(_ k: Int) throws -> [Int64] {
            guard k < c.count, let v = c[k]?.ints else { throw ONNXReason("input \(k) is not an integer constant") }
            return v
        }
        switch node.opType {
        case "Identity", "Cast":
            return [c[0]!]
        case "Shape":
            return nil  // of a constant: rare; of a value: handled in `shapeOf`
        case "Gather":
            guard case let .ints(data, shape)? = c[0], shape.count <= 1, a.int("axis", 0) == 0 else { return nil }
            let idx = try ints(1)
            var picked: [Int64] = []
            for i in idx {
                let k = Int(i < 0 ? i + Int64(data.count) : i)
                guard data.indices.contains(k) else { throw ONNXReason("index \(i) of a \(data.count)-element shape") }
                picked.append(data[k])
            }
            return [.ints(picked, shape: c[1]!.shape)]
        case "Unsqueeze", "Squeeze":
            guard case let .ints(data, shape)? = c[0] else { return nil }
            let axes = try a.ints("axes") ?? (c.count > 1 ? ints(1).map { Int($0) } : nil)
            return [.ints(data, shape: try squeezed(shape, axes: axes, unsqueeze: node.opType == "Unsqueeze"))]
        case "Concat":
            guard c.allSatisfy({ if case .ints? = $0 { return true } else { return false } }) else { return nil }
            let all = try (0..<c.count).flatMap { try ints($0) }
            return [.ints(all, shape: [all.count])]
        case "Add", "Sub", "Mul", "Div":
            if case let .ints(x, xs)? = c[0], case let .ints(y, ys)? = c[1], x.count == y.count || y.count == 1 || x.count == 1 {
                let n = max(x.count, y.count)
                let op = node.opType
                func f(_ p: Int64, _ q: Int64) -> Int64 {
                    switch op {
                    case "Add": return p &+ q
                    case "Sub": return p &- q
                    case "Mul": return p &* q
                    default: return q == 0 ? 0 : p / q
                    }
                }
                let out = (0..<n).map { i -> Int64 in
                    let (p, q) = (x[x.count == 1 ? 0 : i], y[y.count == 1 ? 0 : i])
                    return p == ONNXConstant.batch || q == ONNXConstant.batch ? ONNXConstant.batch : f(p, q)
                }
                return [.ints(out, shape: xs.count >= ys.count ? xs : ys)]
            }
            let (x, y) = (c[0]!.tensor, c[1]!.tensor)
            guard x.shape == y.shape || y.count == 1 || x.count == 1 else { return nil }
            let op = node.opType
            func f(_ p: Float, _ q: Float) -> Float {
                switch op {
                case "Add": return p + q
                case "Sub": return p - q
                case "Mul": return p * q
                default: return p / q
                }
            }
            let n = max(x.count, y.count), xv = x.scalars, yv = y.scalars
            return [.floats(Tensor(shape: x.count >= y.count ? x.shape : y.shape,
                                   scalars: (0..<n).map { f(xv[xv.count == 1 ? 0 : $0], yv[yv.count == 1 ? 0 : $0]) }))]
        case "Reshape":
            let data = c[0]!, target = try ints(1)
            let total = data.shape.reduce(1, *)
            var dims = target.enumerated().map { k, d in d == 0 ? (k < data.shape.count ? data.shape[k] : 0) : Int(d) }
            if let k = dims.firstIndex(of: -1) { dims[k] = total / max(1, dims.enumerated().filter { $0.offset != k }.reduce(1) { $0 * $1.element }) }
            guard dims.reduce(1, *) == total else { return nil }
            switch data {
            case let .ints(v, _): return [.ints(v, shape: dims)]
            case let .floats(t): return [.floats(t.reshaped(dims))]
            }
        case "Transpose":
            let t = c[0]!.tensor
            let permuted = Self.permute(t, a.ints("perm") ?? Array((0..<t.rank).reversed()))
            if case .ints = c[0]! { return [.ints(permuted.scalars.map { Int64($0) }, shape: permuted.shape)] }
            return [.floats(permuted)]
        case "ConstantOfShape":
            let dims = try ints(0).map { Int($0) }
            guard dims.allSatisfy({ $0 >= 0 }) else { return nil }
            let fill = try a.tensor("value").map { try ONNXConstant($0) } ?? .floats(Tensor(shape: [1], scalars: [0]))
            let count = dims.reduce(1, *)
            switch fill {
            case let .ints(v, _): return [.ints([Int64](repeating: v.first ?? 0, count: count), shape: dims)]
            case let .floats(t): return [.floats(Tensor(shape: dims, repeating: t.scalars.first ?? 0))]
            }
        case "Slice":
            return try sliceConstant(c[0]!, starts: ints(1), ends: ints(2), axes: c.count > 3 && c[3] != nil ? ints(3) : nil,
                                     steps: c.count > 4 && c[4] != nil ? ints(4) : nil).map { [$0] }
        default:
            return nil
        }
    }

    /// `Shape(x)` of a computed value: its ONNX shape with the batch as a symbol.
    mutating func shapeOf(_ node: Onnx_NodeProto) throws {
        let x = try value(node.input[0])
        var dims = x.shape.map { Int64($0) }
        dims[0] = ONNXConstant.batch
        let a = ONNXAttributes(node)
        let start = a.int("start", 0), end = a.int("end", dims.count)
        func clamp(_ v: Int) -> Int { max(0, min(dims.count, v < 0 ? v + dims.count : v)) }
        let part = Array(dims[clamp(start)..<max(clamp(start), clamp(end))])
        constants[node.output[0]] = .ints(part, shape: [part.count])
    }

    /// ONNX Slice of a constant (any rank, any axes, negative steps), nil for a float tensor of
    /// more than one axis (weights are not sliced at import).
    func sliceConstant(_ data: ONNXConstant, starts: [Int64], ends: [Int64], axes: [Int64]?, steps: [Int64]?) throws -> ONNXConstant? {
        let shape = data.shape, rank = shape.count
        guard rank >= 1 else { return nil }
        var ranges = shape.map { Array(0..<$0) }
        for k in starts.indices {
            let axis = Int(axes.map { $0[k] < 0 ? $0[k] + Int64(rank) : $0[k] } ?? Int64(k))
            guard (0..<rank).contains(axis) else { throw ONNXReason("slice axis \(axes?[k] ?? Int64(k)) of rank \(rank)") }
            let n = Int64(shape[axis]), step = steps?[k] ?? 1
            guard step != 0 else { throw ONNXReason("slice step 0") }
            func clamp(_ v: Int64, _ lo: Int64, _ hi: Int64) -> Int64 { max(lo, min(hi, v < 0 ? v + n : v)) }
            var picked: [Int] = []
            if step > 0 {
                var i = clamp(starts[k], 0, n)
                let e = clamp(ends[k], 0, n)
                while i < e { picked.append(Int(i)); i += step }
            } else {
                var i = clamp(starts[k], -1, n - 1)
                let e = ends[k] < -n ? -1 : clamp(ends[k], -1, n - 1)
                while i > e { picked.append(Int(i)); i += step }
            }
            ranges[axis] = picked
        }
        let outShape = ranges.map(\.count)
        var strides = [Int](repeating: 1, count: rank)
        for d in stride(from: rank - 2, through: 0, by: -1) { strides[d] = strides[d + 1] * shape[d + 1] }
        var offsets = [0]
        for d in 0..<rank { offsets = offsets.flatMap { o in ranges[d].map { o + $0 * strides[d] } } }
        switch data {
        case let .ints(v, _): return .ints(offsets.map { v[$0] }, shape: outShape)
        case let .floats(t): let s = t.scalars; return .floats(Tensor(shape: outShape, scalars: offsets.map { s[$0] }))
        }
    }
}
