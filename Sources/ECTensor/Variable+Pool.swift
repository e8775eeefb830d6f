extension Variable {
    /// Max pooling over NHWC input with a `size × size` window, `stride`, "valid" padding
    /// (TensorFlow's default): `[N, H, W, C] → [N, (H−size)/stride+1, (W−size)/stride+1, C]`.
    ///
    /// The forward pass records which input won each window; backward routes the gradient
    /// there (the first maximum on ties, as TensorFlow does).
    public func maxPool2d(size: Int = 2, stride: Int = 2) -> Variable {
        let x = value
        precondition(x.rank == 4, "maxPool2d needs NHWC input, got \(x.shape)")
        precondition(size > 0 && stride > 0, "maxPool2d: size \(size) and stride \(stride) must be > 0")
        let (n, h, w, c) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        precondition(h >= size && w >= size, "maxPool2d: input \(h)×\(w) smaller than window \(size)")
        let oh = (h - size) / stride + 1, ow = (w - size) / stride + 1
        var y = Tensor(uninitializedShape: [n, oh, ow, c])
        let recording = tape != nil
        var winners = recording ? [Int32](repeating: 0, count: n * oh * ow * c) : []
        x.withUnsafeBufferPointer { xp in y.withUnsafeMutableBufferPointer { yp in winners.withUnsafeMutableBufferPointer { wp in
            let xb = xp.baseAddress!
            for b in 0..<n {
                for oy in 0..<oh {
                    for ox in 0..<ow {
                        let o = ((b * oh + oy) * ow + ox) * c
                        let first = ((b * h + oy * stride) * w + ox * stride) * c
                        for ch in 0..<c {
                            yp[o + ch] = xb[first + ch]
                            if recording { wp[o + ch] = Int32(first + ch) }
                        }
                        for ky in 0..<size {
                            for kx in 0..<size where ky != 0 || kx != 0 {
                                let base = ((b * h + oy * stride + ky) * w + ox * stride + kx) * c
                                if recording {
                                    for ch in 0..<c where xb[base + ch] > yp[o + ch] {
                                        yp[o + ch] = xb[base + ch]
                                        wp[o + ch] = Int32(base + ch)
                                    }
                                } else {
                                    for ch in 0..<c { yp[o + ch] = max(yp[o + ch], xb[base + ch]) }
                                }
                            }
                        }
                    }
                }
            }
        } } }
        let input = self
        let argmax = winners
        return Variable.result(y, inputs: self) { dy in
            var dx = Tensor(shape: x.shape, repeating: 0)
            dy.withUnsafeBufferPointer { g in dx.withUnsafeMutableBufferPointer { d in argmax.withUnsafeBufferPointer { a in
                for i in 0..<g.count { d[Int(a[i])] += g[i] }
            } } }
            input.accumulate(dx)
        }
    }

    /// Global average pooling `[N, H, W, C] → [N, C]`.
    public func globalAvgPool() -> Variable {
        let x = value
        precondition(x.rank == 4, "globalAvgPool needs NHWC input, got \(x.shape)")
        let (n, hw, c) = (x.shape[0], x.shape[1] * x.shape[2], x.shape[3])
        var y = Tensor(shape: [n, c], repeating: 0)
        let inv = 1 / Float(hw)
        x.withUnsafeBufferPointer { xp in y.withUnsafeMutableBufferPointer { yp in
            for b in 0..<n {
                for p in 0..<hw {
                    let row = xp.baseAddress! + (b * hw + p) * c
                    for ch in 0..<c { yp[b * c + ch] += row[ch] }
                }
                for ch in 0..<c { yp[b * c + ch] *= inv }
            }
        } }
        let input = self
        return Variable.result(y, inputs: self) { dy in
            var dx = Tensor(uninitializedShape: x.shape)
            dy.withUnsafeBufferPointer { g in dx.withUnsafeMutableBufferPointer { d in
                for b in 0..<n {
                    for p in 0..<hw {
                        let row = d.baseAddress! + (b * hw + p) * c
                        for ch in 0..<c { row[ch] = g[b * c + ch] * inv }
                    }
                }
            } }
            input.accumulate(dx)
        }
    }
}
