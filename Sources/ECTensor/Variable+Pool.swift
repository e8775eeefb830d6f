extension Variable {
    /// Max pooling over NHWC input with a `size × size` window, `stride`, "valid" padding
    /// (TensorFlow's default): `[N, H, W, C] → [N, (H−size)/stride+1, (W−size)/stride+1, C]`.
    ///
    /// Backward routes each output's gradient to the first window position (row-major) that
    /// holds the maximum, as TensorFlow does on ties; the winner is found again from the saved
    /// input and output, so the forward pass is a plain (vectorised) max with nothing recorded.
    ///
    /// With `relu`, computes `maxPool(relu(x)) = max(0, maxPool(x))` in the same pass — the
    /// fused form of the common conv → ReLU → pool sequence: the ReLU touches the pooled
    /// output instead of the 4× larger input, and its gradient (pass where the output is
    /// positive) is applied while routing, so no separate ReLU pass or tensor exists.
    public func maxPool2d(size: Int = 2, stride: Int = 2, relu: Bool = false) -> Variable {
        let x = value
        precondition(x.rank == 4, "maxPool2d needs NHWC input, got \(x.shape)")
        precondition(size > 0 && stride > 0, "maxPool2d: size \(size) and stride \(stride) must be > 0")
        let g = PoolGeometry(input: x.shape, size: size, stride: stride)
        var y = Tensor(uninitializedShape: [g.batch, g.outHeight, g.outWidth, g.channels])
        x.withUnsafeBufferPointer { xp in y.withUnsafeMutableBufferPointer { yp in
            let xb = xp.baseAddress!, yb = yp.baseAddress!
            Parallel.forEach(g.batch * g.outHeight, costPerItem: g.outWidth * g.channels * size * size) { rows in
                for row in rows {
                    if size == 2 && stride == 2 { g.forwardRow2x2(row, xb, yb, relu: relu) } else { g.forwardRow(row, xb, yb, relu: relu) }
                }
            }
        } }
        let input = self
        let pooled = y
        return Variable.result(y, inputs: self) { dy in
            var dx = Tensor(uninitializedShape: x.shape)
            x.withUnsafeBufferPointer { xp in pooled.withUnsafeBufferPointer { pp in
                dy.withUnsafeBufferPointer { gp in dx.withUnsafeMutableBufferPointer { dp in
                    let (xb, pb, gb, db) = (xp.baseAddress!, pp.baseAddress!, gp.baseAddress!, dp.baseAddress!)
                    if size == 2 && stride == 2,
                       FP32Conv.maxPool2x2Backward(input: xb, shape: x.shape, pooled: pb, dy: gb, dx: db, relu: relu) {
                        return
                    }
                    if stride < size {
                        // Overlapping windows share inputs: zero, then accumulate serially.
                        dp.update(repeating: 0)
                        for row in 0..<(g.batch * g.outHeight) { g.backwardRow(row, xb, pb, gb, db, relu: relu, accumulate: true) }
                    } else {
                        // Windows do not overlap: each writes its own inputs; inputs no window
                        // covers (odd edges, gaps) are zeroed.
                        if stride > size || g.height % stride != 0 || g.width % stride != 0 || g.outHeight * stride != g.height {
                            dp.update(repeating: 0)
                        }
                        Parallel.forEach(g.batch * g.outHeight, costPerItem: g.outWidth * g.channels * size * size) { rows in
                            for row in rows {
                                if size == 2 {
                                    g.backwardRow2x2(row, xb, pb, gb, db, relu: relu)
                                } else {
                                    g.backwardRow(row, xb, pb, gb, db, relu: relu, accumulate: false)
                                }
                            }
                        }
                    }
                } }
            } }
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

/// The geometry of a max pooling and its row kernels (one output row of one image each).
struct PoolGeometry {
    let batch, height, width, channels, size, stride, outHeight, outWidth: Int

    init(input: [Int], size: Int, stride: Int) {
        (batch, height, width, channels) = (input[0], input[1], input[2], input[3])
        precondition(height >= size && width >= size, "maxPool2d: input \(height)×\(width) smaller than window \(size)")
        self.size = size
        self.stride = stride
        outHeight = (height - size) / stride + 1
        outWidth = (width - size) / stride + 1
    }

    @inline(__always)
    func inputOffset(_ b: Int, _ iy: Int, _ ix: Int) -> Int { ((b * height + iy) * width + ix) * channels }

    /// Output row `row` (= image·outHeight + oy): the maximum of each window, then `max(·, 0)`.
    @inline(__always)
    func forwardRow(_ row: Int, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, relu: Bool) {
        let b = row / outHeight, oy = row % outHeight, c = channels
        for ox in 0..<outWidth {
            let out = y + (row * outWidth + ox) * c
            let first = x + inputOffset(b, oy * stride, ox * stride)
            for ch in 0..<c { out[ch] = relu ? max(first[ch], 0) : first[ch] }
            for ky in 0..<size {
                for kx in 0..<size where ky != 0 || kx != 0 {
                    let src = x + inputOffset(b, oy * stride + ky, ox * stride + kx)
                    for ch in 0..<c { out[ch] = max(out[ch], src[ch]) }
                }
            }
        }
    }

    /// `forwardRow` for the common non-overlapping 2×2 window: one vectorised pass per output.
    @inline(__always)
    func forwardRow2x2(_ row: Int, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, relu: Bool) {
        let b = row / outHeight, oy = row % outHeight, c = channels
        let floor: Float = relu ? 0 : -.infinity
        for ox in 0..<outWidth {
            let out = y + (row * outWidth + ox) * c
            let x0 = x + inputOffset(b, 2 * oy, 2 * ox), x1 = x0 + c
            let x2 = x + inputOffset(b, 2 * oy + 1, 2 * ox), x3 = x2 + c
            for ch in 0..<c { out[ch] = max(max(max(x0[ch], x1[ch]), max(x2[ch], x3[ch])), floor) }
        }
    }

    /// `backwardRow` for the common non-overlapping 2×2 window, branch-free so it vectorises.
    @inline(__always)
    func backwardRow2x2(_ row: Int, _ x: UnsafePointer<Float>, _ pooled: UnsafePointer<Float>, _ dy: UnsafePointer<Float>,
                        _ dx: UnsafeMutablePointer<Float>, relu: Bool) {
        let b = row / outHeight, oy = row % outHeight, c = channels
        for ox in 0..<outWidth {
            let o = (row * outWidth + ox) * c
            let p = pooled + o, g = dy + o
            let top = inputOffset(b, oy * stride, ox * stride), bottom = inputOffset(b, oy * stride + 1, ox * stride)
            let x0 = x + top, x1 = x0 + c, x2 = x + bottom  // the fourth position wins when none of these does
            let d0 = dx + top, d1 = d0 + c, d2 = dx + bottom, d3 = d2 + c
            for ch in 0..<c {
                let m = p[ch]
                let v = relu && m <= 0 ? 0 : g[ch]
                let h0 = x0[ch] == m
                let h1 = !h0 && x1[ch] == m
                let h2 = !h0 && !h1 && x2[ch] == m
                let h3 = !h0 && !h1 && !h2
                d0[ch] = h0 ? v : 0
                d1[ch] = h1 ? v : 0
                d2[ch] = h2 ? v : 0
                d3[ch] = h3 ? v : 0
            }
        }
    }

    /// Routes output row `row`'s gradient to the first window position equal to the maximum
    /// (nothing when `relu` and the output is 0); other positions get 0 unless `accumulate`.
    @inline(__always)
    func backwardRow(_ row: Int, _ x: UnsafePointer<Float>, _ pooled: UnsafePointer<Float>, _ dy: UnsafePointer<Float>,
                     _ dx: UnsafeMutablePointer<Float>, relu: Bool, accumulate: Bool) {
        let b = row / outHeight, oy = row % outHeight, c = channels
        withUnsafeTemporaryAllocation(of: Float.self, capacity: c) { left in
            for ox in 0..<outWidth {
                let o = (row * outWidth + ox) * c
                for ch in 0..<c { left[ch] = relu && pooled[o + ch] <= 0 ? 0 : dy[o + ch] }
                for ky in 0..<size {
                    for kx in 0..<size {
                        let at = inputOffset(b, oy * stride + ky, ox * stride + kx)
                        let src = x + at, dst = dx + at
                        for ch in 0..<c {
                            // The first position equal to the maximum takes the gradient; later
                            // equal ones see `left` already cleared.
                            let hit = src[ch] == pooled[o + ch]
                            let v = hit ? left[ch] : 0
                            left[ch] = hit ? 0 : left[ch]
                            if accumulate { dst[ch] += v } else { dst[ch] = v }
                        }
                    }
                }
            }
        }
    }
}
