extension Variable {
    /// Depthwise convolution (one input channel per group, channel multiplier `M = Cout / Cin`)
    /// by a direct NHWC kernel: the innermost loop runs over contiguous channels, so it
    /// vectorises, where im2col + a GEMM with `k = kh·kw` per group would not.
    ///
    /// `x: [N, H, W, C]`, `W: [kh, kw, 1, C·M]`, `b: [C·M]` → `y: [N, OH, OW, C·M]` with
    /// `y[n, oy, ox, c·M + j] = b[c·M + j] + Σ_{ky,kx} x[n, oy·sh − top + ky, ox·sw − left + kx, c] · W[ky, kx, 0, c·M + j]`
    /// (taps in the padding contribute 0).
    ///
    /// Backward, image by image (one thread owns an image, so no result depends on the thread
    /// count): `dx` scatters `dy · W` back onto each tap's input pixel; `dW` sums `dy · x` per
    /// image, then over images in order; `db = Σ dy`.
    func depthwiseConv2d(weight: Variable, bias: Variable?, geometry g: Conv2DGeometry, activation: Activation) -> Variable {
        let x = value, w = weight.value
        precondition(x.shape == [g.batch, g.height, g.width, g.inChannels], "conv2d: input \(x.shape) does not fit its geometry")
        precondition(g.isDepthwise, "depthwiseConv2d: \(g.groups) groups over \(g.inChannels) channels is not depthwise")
        let cout = g.outChannels, taps = g.kernelHeight * g.kernelWidth
        if let b = bias?.value { precondition(b.shape == [cout], "conv2d: bias \(b.shape) does not fit \(cout) channels") }
        var y = Tensor(uninitializedShape: [g.batch, g.outHeight, g.outWidth, cout])
        x.withUnsafeBufferPointer { xp in w.withUnsafeBufferPointer { wp in y.withUnsafeMutableBufferPointer { yp in
            let xb = xp.baseAddress!, wb = wp.baseAddress!, yb = yp.baseAddress!
            func run(_ bb: UnsafePointer<Float>?) {
                Parallel.forEach(g.batch * g.outHeight, costPerItem: g.outWidth * taps * cout) { rows in
                    for row in rows { g.depthwiseForwardRow(row, xb, wb, bb, yb) }
                }
            }
            if let b = bias?.value { b.withUnsafeBufferPointer { run($0.baseAddress!) } } else { run(nil) }
        } } }
        activation.apply(&y)
        let input = self
        let output = y
        return Variable.result(y, inputs: self, weight, bias) { upstream in
            let dy = activation.backward(upstream, output: output)
            if let bias, bias.requiresGrad { bias.accumulate(dy.columnSums()) }
            let wantsInput = input.requiresGrad, wantsWeight = weight.requiresGrad
            guard wantsInput || wantsWeight else { return }
            var dx = Tensor(uninitializedShape: wantsInput ? x.shape : [0])
            var partials = Tensor(shape: wantsWeight ? [g.batch, taps * cout] : [0], repeating: 0)
            x.withUnsafeBufferPointer { xp in w.withUnsafeBufferPointer { wp in dy.withUnsafeBufferPointer { gp in
                dx.withUnsafeMutableBufferPointer { dp in partials.withUnsafeMutableBufferPointer { pp in
                    let (xb, wb, gb) = (xp.baseAddress!, wp.baseAddress!, gp.baseAddress!)
                    let db = wantsInput ? dp.baseAddress : nil, pb = wantsWeight ? pp.baseAddress : nil
                    Parallel.forEach(g.batch, costPerItem: g.outHeight * g.outWidth * taps * cout) { images in
                        for n in images { g.depthwiseBackwardImage(n, xb, wb, gb, dx: db, weightPartial: pb.map { $0 + n * taps * cout }) }
                    }
                } }
            } } }
            if wantsWeight {
                // dW = Σ_n partial[n], image after image.
                var dw = Tensor(shape: w.shape, repeating: 0)
                partials.withUnsafeBufferPointer { pp in dw.withUnsafeMutableBufferPointer { d in
                    for n in 0..<g.batch {
                        let part = pp.baseAddress! + n * d.count
                        for i in 0..<d.count { d[i] += part[i] }
                    }
                } }
                weight.accumulate(dw)
            }
            if wantsInput { input.accumulate(dx) }
        }
    }
}

extension Conv2DGeometry {
    /// The kernel taps `low..<high` of a window starting at input coordinate `start` that fall
    /// inside `0..<size` (empty when the window lies wholly in the padding).
    @inline(__always)
    static func insideTaps(start: Int, kernel: Int, size: Int) -> Range<Int> {
        let low = max(0, -start)
        return low..<max(low, min(kernel, size - start))
    }

    /// Depthwise forward of output row `row` (= image·outHeight + oy): bias, then each tap's
    /// contribution in `(ky, kx)` order.
    @inline(__always)
    func depthwiseForwardRow(_ row: Int, _ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>, _ bias: UnsafePointer<Float>?,
                             _ y: UnsafeMutablePointer<Float>) {
        let n = row / outHeight, oy = row % outHeight, c = inChannels, m = groupOutChannels, cout = outChannels
        let iy0 = oy * strideHeight - padTop
        let rowsInside = Conv2DGeometry.insideTaps(start: iy0, kernel: kernelHeight, size: height)
        for ox in 0..<outWidth {
            let out = y + (row * outWidth + ox) * cout
            if let bias { out.update(from: bias, count: cout) } else { out.update(repeating: 0, count: cout) }
            let ix0 = ox * strideWidth - padLeft
            let columnsInside = Conv2DGeometry.insideTaps(start: ix0, kernel: kernelWidth, size: width)
            for ky in rowsInside {
                let pixelRow = x + ((n * height + iy0 + ky) * width) * c
                for kx in columnsInside {
                    let src = pixelRow + (ix0 + kx) * c, wk = w + (ky * kernelWidth + kx) * cout
                    if m == 1 {
                        for ch in 0..<c { out[ch] += src[ch] * wk[ch] }
                    } else {
                        for ch in 0..<c {
                            let v = src[ch], o = out + ch * m, k = wk + ch * m
                            for j in 0..<m { o[j] += v * k[j] }
                        }
                    }
                }
            }
        }
    }

    /// Depthwise backward of image `n`: `dx` (when given) is overwritten with the scatter of
    /// `dy · W`, and `weightPartial[tap, C·M]` (when given, zeroed) accumulates `dy · x`.
    @inline(__always)
    func depthwiseBackwardImage(_ n: Int, _ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>, _ dy: UnsafePointer<Float>,
                                dx: UnsafeMutablePointer<Float>?, weightPartial: UnsafeMutablePointer<Float>?) {
        let c = inChannels, m = groupOutChannels, cout = outChannels
        let imageSize = height * width * c
        dx?.advanced(by: n * imageSize).update(repeating: 0, count: imageSize)
        for oy in 0..<outHeight {
            let iy0 = oy * strideHeight - padTop
            let rowsInside = Conv2DGeometry.insideTaps(start: iy0, kernel: kernelHeight, size: height)
            for ox in 0..<outWidth {
                let g = dy + ((n * outHeight + oy) * outWidth + ox) * cout
                let ix0 = ox * strideWidth - padLeft
                let columnsInside = Conv2DGeometry.insideTaps(start: ix0, kernel: kernelWidth, size: width)
                for ky in rowsInside {
                    let pixelOffset = ((n * height + iy0 + ky) * width) * c
                    for kx in columnsInside {
                        let at = pixelOffset + (ix0 + kx) * c, tap = (ky * kernelWidth + kx) * cout
                        let wk = w + tap
                        if let dx {
                            let d = dx + at
                            if m == 1 {
                                for ch in 0..<c { d[ch] += g[ch] * wk[ch] }
                            } else {
                                for ch in 0..<c {
                                    var s: Float = 0
                                    for j in 0..<m { s += g[ch * m + j] * wk[ch * m + j] }
                                    d[ch] += s
                                }
                            }
                        }
                        if let weightPartial {
                            let pw = weightPartial + tap, src = x + at
                            if m == 1 {
                                for ch in 0..<c { pw[ch] += g[ch] * src[ch] }
                            } else {
                                for ch in 0..<c {
                                    let v = src[ch], o = pw + ch * m, gg = g + ch * m
                                    for j in 0..<m { o[j] += gg[j] * v }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
