/// A binary element-wise function, passed as a generic parameter so the broadcasting loops
/// are specialised for it (no closure call per element).
protocol BinaryFunction {
    static func apply(_ a: Float, _ b: Float) -> Float
}

enum Add: BinaryFunction { @inline(__always) static func apply(_ a: Float, _ b: Float) -> Float { a + b } }
enum Subtract: BinaryFunction { @inline(__always) static func apply(_ a: Float, _ b: Float) -> Float { a - b } }
enum Multiply: BinaryFunction { @inline(__always) static func apply(_ a: Float, _ b: Float) -> Float { a * b } }
enum Divide: BinaryFunction { @inline(__always) static func apply(_ a: Float, _ b: Float) -> Float { a / b } }

extension Tensor {
    /// `F(a, b)` element by element with NumPy/ONNX broadcasting.
    ///
    /// Fast paths: equal shapes are one flat loop; otherwise the axes are collapsed
    /// (`BroadcastLayout`) and each row runs one of four inner loops — both operands
    /// contiguous, or one of them a single value repeated (`[N,H,W,C] ⊙ [C]`, the
    /// squeeze-excitation `[N,H,W,C] ⊙ [N,1,1,C]`, scalars, NCHW `[N,C,H,W] ⊙ [1,C,1,1]`).
    static func broadcasting<F: BinaryFunction>(_: F.Type, _ a: Tensor, _ b: Tensor) -> Tensor {
        guard let shape = Tensor.broadcastShape(a.shape, b.shape) else {
            preconditionFailure("broadcast: shapes \(a.shape) and \(b.shape) do not broadcast")
        }
        var y = Tensor(uninitializedShape: shape)
        a.withUnsafeBufferPointer { ap in b.withUnsafeBufferPointer { bp in y.withUnsafeMutableBufferPointer { yp in
            let ab = ap.baseAddress!, bb = bp.baseAddress!, yb = yp.baseAddress!
            if a.shape == b.shape {
                Parallel.forEach(yp.count, costPerItem: 1) { r in
                    for i in r { yb[i] = F.apply(ab[i], bb[i]) }
                }
                return
            }
            let layout = BroadcastLayout(output: shape, a.shape, b.shape)
            let inner = layout.inner, last = layout.dims.count - 1
            let spansA = layout.strideA[last] != 0, spansB = layout.strideB[last] != 0
            Parallel.forEach(layout.rows, costPerItem: inner) { range in
                layout.forEachRow(range) { o, oa, ob in
                    let x = ab + oa, z = bb + ob, out = yb + o
                    switch (spansA, spansB) {
                    case (true, true): for i in 0..<inner { out[i] = F.apply(x[i], z[i]) }
                    case (true, false): let v = z[0]; for i in 0..<inner { out[i] = F.apply(x[i], v) }
                    case (false, true): let v = x[0]; for i in 0..<inner { out[i] = F.apply(v, z[i]) }
                    case (false, false): let v = F.apply(x[0], z[0]); for i in 0..<inner { out[i] = v }
                    }
                }
            }
        } } }
        return y
    }
}

extension Variable {
    /// Element-wise `a + b` with NumPy/ONNX broadcasting (right-aligned shapes, dimensions equal
    /// or 1): the residual add, a bias add `[N,H,W,C] + [C]`, a scalar. Backward: `dy` summed
    /// over each operand's broadcast axes.
    public static func + (lhs: Variable, rhs: Variable) -> Variable {
        let y = Tensor.broadcasting(Add.self, lhs.value, rhs.value)
        return Variable.result(y, inputs: lhs, rhs) { dy in
            if lhs.requiresGrad { lhs.accumulate(dy.summed(toShape: lhs.shape)) }
            if rhs.requiresGrad { rhs.accumulate(dy.summed(toShape: rhs.shape)) }
        }
    }

    /// Element-wise `a − b` with broadcasting. Backward: `dy` and `−dy`, each summed over the
    /// operand's broadcast axes.
    public static func - (lhs: Variable, rhs: Variable) -> Variable {
        let y = Tensor.broadcasting(Subtract.self, lhs.value, rhs.value)
        return Variable.result(y, inputs: lhs, rhs) { dy in
            if lhs.requiresGrad { lhs.accumulate(dy.summed(toShape: lhs.shape)) }
            if rhs.requiresGrad { rhs.accumulate(dy.summed(toShape: rhs.shape, alpha: -1)) }
        }
    }

    /// Element-wise `a · b` with broadcasting (e.g. the squeeze-excitation scale
    /// `[N,H,W,C] · [N,1,1,C]`). Backward: `dy·b` and `dy·a`, each summed over the operand's
    /// broadcast axes.
    public static func * (lhs: Variable, rhs: Variable) -> Variable {
        let a = lhs.value, b = rhs.value
        let y = Tensor.broadcasting(Multiply.self, a, b)
        return Variable.result(y, inputs: lhs, rhs) { dy in
            if lhs.requiresGrad { lhs.accumulate(Tensor.broadcasting(Multiply.self, dy, b).summed(toShape: a.shape)) }
            if rhs.requiresGrad { rhs.accumulate(Tensor.broadcasting(Multiply.self, dy, a).summed(toShape: b.shape)) }
        }
    }

    /// Element-wise `a / b` with broadcasting. Backward: `dy / b` and `−dy·a / b² = −dy·y / b`,
    /// each summed over the operand's broadcast axes.
    public static func / (lhs: Variable, rhs: Variable) -> Variable {
        let b = rhs.value
        let y = Tensor.broadcasting(Divide.self, lhs.value, b)
        let output = y
        return Variable.result(y, inputs: lhs, rhs) { dy in
            if lhs.requiresGrad { lhs.accumulate(Tensor.broadcasting(Divide.self, dy, b).summed(toShape: lhs.shape)) }
            if rhs.requiresGrad {
                let dyY = Tensor.broadcasting(Multiply.self, dy, output)
                rhs.accumulate(Tensor.broadcasting(Divide.self, dyY, b).summed(toShape: b.shape, alpha: -1))
            }
        }
    }
}
