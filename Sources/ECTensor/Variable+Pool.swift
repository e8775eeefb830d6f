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
        // Which window position won, per output element (0 ..< size², row-major in the window).
        var winners = [UInt8](repeating: 0, count: tape != nil ? n * oh * ow * c : 0)
        let recording = tape != nil
        precondition(size * size <= 256, "maxPool2d: window \(size)×\(size) too large")
        x.withUnsafeBufferPointer { xp in y.withUnsafeMutableBufferPointer { yp in winners.withUnsafeMutableBufferPointer { wp in
            let xb = xp.baseAddress!, yb = yp.baseAddress!, wb = wp.baseAddress
            Parallel.forEach(n * oh, costPerItem: ow * c * size * size) { rows in
                for row in rows {
                    let b = row / oh, oy = row % oh
                    for ox in 0..<ow {
                        let o = ((b * oh + oy) * ow + ox) * c
                        let first = ((b * h + oy * stride) * w + ox * stride) * c
                        let out = yb + o
                        out.update(from: xb + first, count: c)
                        if recording { (wb! + o).update(repeating: 0, count: c) }
                        for ky in 0..<size {
                            for kx in 0..<size where ky != 0 || kx != 0 {
                                let src = xb + ((b * h + oy * stride + ky) * w + ox * stride + kx) * c
                                if recording {
                                    let code = UInt8(ky * size + kx), win = wb! + o
                                    for ch in 0..<c where src[ch] > out[ch] {
                                        out[ch] = src[ch]
                                        win[ch] = code
                                    }
                                } else {
                                    for ch in 0..<c { out[ch] = max(out[ch], src[ch]) }
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
                let gb = g.baseAddress!, db = d.baseAddress!, ab = a.baseAddress!
                // Overlapping windows (stride < size) scatter into shared inputs: stay serial.
                Parallel.forEach(n * oh, costPerItem: stride >= size ? ow * c : 0) { rows in
                    for row in rows {
                        let b = row / oh, oy = row % oh
                        for ox in 0..<ow {
                            let o = ((b * oh + oy) * ow + ox) * c
                            for ch in 0..<c {
                                let code = Int(ab[o + ch]), ky = code / size, kx = code % size
                                db[((b * h + oy * stride + ky) * w + ox * stride + kx) * c + ch] += gb[o + ch]
                            }
                        }
                    }
                }
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
