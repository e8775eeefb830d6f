extension Variable {
    /// `max(x, 0)`. Backward passes the gradient where the output is positive.
    public func relu() -> Variable {
        var y = value
        Activation.relu.apply(&y)
        let input = self
        let out = y
        return Variable.result(y, inputs: self) { dy in
            input.accumulate(Activation.relu.backward(dy, output: out))
        }
    }

    /// The same elements with another shape (no copy).
    public func reshaped(_ shape: [Int]) -> Variable {
        let inputShape = value.shape
        let input = self
        return Variable.result(value.reshaped(shape), inputs: self) { dy in
            input.accumulate(dy.reshaped(inputShape))
        }
    }

    /// `[N, ...] → [N, prod(...)]`; NHWC activations flatten in H, W, C order (as TensorFlow).
    public func flattened() -> Variable {
        let n = shape.first ?? 1
        return reshaped([n, n == 0 ? 0 : value.count / n])
    }

    /// Sum of all elements as a scalar (used by gradient checks).
    public func sum() -> Variable {
        let s = Tensor(scalar: Float(value.sum()))
        let input = self
        return Variable.result(s, inputs: self) { dy in
            input.accumulate(Tensor(shape: input.shape, repeating: dy.scalarValue))
        }
    }
}

extension Tensor {
    /// Element-wise product with a tensor of the same element count.
    public func multiplied(by other: Tensor) -> Tensor {
        precondition(count == other.count, "multiply: \(shape) and \(other.shape) differ")
        var out = Tensor(uninitializedShape: shape)
        withUnsafeBufferPointer { a in other.withUnsafeBufferPointer { b in out.withUnsafeMutableBufferPointer { o in
            for i in 0..<o.count { o[i] = a[i] * b[i] }
        } } }
        return out
    }

    /// Every element times `factor`.
    public func scaled(by factor: Float) -> Tensor {
        var out = Tensor(uninitializedShape: shape)
        withUnsafeBufferPointer { a in out.withUnsafeMutableBufferPointer { o in
            for i in 0..<o.count { o[i] = a[i] * factor }
        } }
        return out
    }

    /// In place: `self += alpha · other`.
    public mutating func addScaled(_ other: Tensor, alpha: Float = 1) {
        precondition(count == other.count, "addScaled: \(shape) and \(other.shape) differ")
        withUnsafeMutableBufferPointer { a in other.withUnsafeBufferPointer { b in
            for i in 0..<a.count { a[i] += alpha * b[i] }
        } }
    }
}
