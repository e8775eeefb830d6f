import Foundation

/// An element-wise function and its derivative. Ops pass one as a generic parameter, so the
/// loops of `Variable.elementwise` are specialised for it (a direct, inlinable call per
/// element — no closure, no allocation).
protocol ElementwiseFunction {
    func value(_ x: Float) -> Float
    /// `dy/dx` at input `x` whose output is `y`.
    func derivative(x: Float, y: Float) -> Float
}

extension Variable {
    /// `y = f(x)` element by element; backward `dx = dy · f′(x)`.
    func elementwise<F: ElementwiseFunction>(_ f: F) -> Variable {
        let x = value
        var y = Tensor(uninitializedShape: x.shape)
        x.withUnsafeBufferPointer { xp in y.withUnsafeMutableBufferPointer { yp in
            let xb = xp.baseAddress!, yb = yp.baseAddress!
            Parallel.forEach(x.count, costPerItem: 2) { r in
                for i in r { yb[i] = f.value(xb[i]) }
            }
        } }
        let input = self, output = y
        return Variable.result(y, inputs: self) { dy in
            var dx = Tensor(uninitializedShape: x.shape)
            x.withUnsafeBufferPointer { xp in output.withUnsafeBufferPointer { yp in
                dy.withUnsafeBufferPointer { gp in dx.withUnsafeMutableBufferPointer { dp in
                    let (xb, yb, gb, db) = (xp.baseAddress!, yp.baseAddress!, gp.baseAddress!, dp.baseAddress!)
                    Parallel.forEach(x.count, costPerItem: 2) { r in
                        for i in r { db[i] = gb[i] * f.derivative(x: xb[i], y: yb[i]) }
                    }
                } }
            } }
            input.accumulate(dx)
        }
    }

    /// `min(max(x, min), max)` (ONNX `Clip`; ReLU6 is `clip(min: 0, max: 6)`).
    ///
    /// Backward passes the gradient where `min < x < max` strictly and gives 0 elsewhere,
    /// including at the bounds — PyTorch's `Hardtanh`/`ReLU6` convention, and the one a fused
    /// `Activation.relu6` follows (it sees only the output).
    public func clip(min lower: Float = -.infinity, max upper: Float = .infinity) -> Variable {
        precondition(lower <= upper, "clip: min \(lower) > max \(upper)")
        return elementwise(Clip(lower: lower, upper: upper))
    }

    /// `x` where `x > 0`, else `alpha·x` (ONNX `LeakyRelu`, default alpha 0.01). Backward: 1
    /// where `x > 0`, `alpha` elsewhere (at 0 too, as PyTorch).
    public func leakyRelu(alpha: Float = 0.01) -> Variable { elementwise(LeakyRelu(alpha: alpha)) }

    /// `1 / (1 + e^−x)`; backward `y·(1 − y)`.
    public func sigmoid() -> Variable { elementwise(Sigmoid()) }

    /// `max(0, min(1, alpha·x + beta))` (ONNX `HardSigmoid`; PyTorch's `Hardsigmoid` is alpha
    /// 1/6, beta 0.5). Backward: `alpha` where `0 < alpha·x + beta < 1`, 0 elsewhere.
    public func hardSigmoid(alpha: Float = 0.2, beta: Float = 0.5) -> Variable {
        elementwise(HardSigmoid(alpha: alpha, beta: beta))
    }

    /// `x · max(0, min(1, x/6 + 1/2))` (ONNX `HardSwish`, PyTorch `Hardswish`). Backward as
    /// PyTorch: 0 for `x < −3`, `x/3 + 1/2` for `−3 ≤ x ≤ 3`, 1 above.
    public func hardSwish() -> Variable { elementwise(HardSwish()) }

    /// `tanh(x)`; backward `1 − y²`.
    public func tanh() -> Variable { elementwise(Tanh()) }

    /// `−x`.
    public func neg() -> Variable { elementwise(Negate()) }

    /// `√x`; backward `1 / (2·√x)` (infinite at 0, as PyTorch).
    public func sqrt() -> Variable { elementwise(SquareRoot()) }

    /// `1 / x`; backward `−1 / x²`.
    public func reciprocal() -> Variable { elementwise(Reciprocal()) }
}

struct Clip: ElementwiseFunction {
    let lower, upper: Float
    @inline(__always) func value(_ x: Float) -> Float { x < lower ? lower : (x > upper ? upper : x) }
    @inline(__always) func derivative(x: Float, y: Float) -> Float { x > lower && x < upper ? 1 : 0 }
}

struct LeakyRelu: ElementwiseFunction {
    let alpha: Float
    @inline(__always) func value(_ x: Float) -> Float { x > 0 ? x : alpha * x }
    @inline(__always) func derivative(x: Float, y: Float) -> Float { x > 0 ? 1 : alpha }
}

struct Sigmoid: ElementwiseFunction {
    @inline(__always) func value(_ x: Float) -> Float { 1 / (1 + Foundation.exp(-x)) }
    @inline(__always) func derivative(x: Float, y: Float) -> Float { y * (1 - y) }
}

struct HardSigmoid: ElementwiseFunction {
    let alpha, beta: Float
    @inline(__always) func value(_ x: Float) -> Float { max(0, min(1, alpha * x + beta)) }
    @inline(__always) func derivative(x: Float, y: Float) -> Float {
        let t = alpha * x + beta
        return t > 0 && t < 1 ? alpha : 0
    }
}

struct HardSwish: ElementwiseFunction {
    @inline(__always) func value(_ x: Float) -> Float { x * max(0, min(1, x * (1 / 6) + 0.5)) }
    @inline(__always) func derivative(x: Float, y: Float) -> Float { x < -3 ? 0 : (x <= 3 ? x * (1 / 3) + 0.5 : 1) }
}

struct Tanh: ElementwiseFunction {
    @inline(__always) func value(_ x: Float) -> Float { Foundation.tanh(x) }
    @inline(__always) func derivative(x: Float, y: Float) -> Float { 1 - y * y }
}

struct Negate: ElementwiseFunction {
    @inline(__always) func value(_ x: Float) -> Float { -x }
    @inline(__always) func derivative(x: Float, y: Float) -> Float { -1 }
}

struct SquareRoot: ElementwiseFunction {
    @inline(__always) func value(_ x: Float) -> Float { x.squareRoot() }
    @inline(__always) func derivative(x: Float, y: Float) -> Float { 0.5 / y }
}

struct Reciprocal: ElementwiseFunction {
    @inline(__always) func value(_ x: Float) -> Float { 1 / x }
    @inline(__always) func derivative(x: Float, y: Float) -> Float { -y * y }
}
