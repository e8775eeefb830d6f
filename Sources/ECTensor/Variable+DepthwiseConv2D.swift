extension Variable {
    /// Depthwise convolution (one input channel per group, channel multiplier `M = Cout / Cin`)
    /// by a direct NHWC kernel: the innermost loop runs over contiguous channels, so it
    /// vectorises, where im2col + a GEMM with `k = kh·kw` per group would not.
    ///
    /// `x: [N, H, W, C]`, `W: [kh, kw, 1, C·M]`, `b: [C·M]` → `y: [N, OH, OW, C·M]` with
    /// `y[n, oy, ox, c·M + j] = b[c·M + j] + Σ_{ky,kx} x[n, oy·sh − top + ky, ox·sw − left + kx, c] · W[ky, kx, 0, c·M + j]`
    /// (taps in the padding contribute 0). With `M > 1` each image's channels are first
    /// repeated `M` times (`c → c·M + j`), which makes it a multiplier-1 problem over `C·M`
    /// channels; the input gradient is folded back (`dx[c] = Σ_j dx̃[c·M + j]`).
    ///
    /// Backward, image by image (one thread owns an image, so no result depends on the thread
    /// count): `dx` scatters `dy · W` back onto each tap's input pixel; `dW` sums `dy · x` per
    /// image, then over images in order; `db = Σ dy`.
    func depthwiseConv2d(weight: Variable, bias: Variable?, geometry g: Conv2DGeometry, activation: Activation) -> Variable {
        let x = value, w = weight.value
        precondition(x.shape == [g.batch, g.height, g.width, g.inChannels], "conv2d: input \(x.shape) does not fit its geometry")
        precondition(g.isDepthwise, "depthwiseConv2d: \(g.groups) groups over \(g.inChannels) channels is not depthwise")
        let cout = g.outChannels, taps = g.kernelHeight * g.kernelWidth, m = g.groupOutChannels
        if let b = bias?.value { precondition(b.shape == [cout], "conv2d: bias \(b.shape) does not fit \(cout) channels") }
        // One image with the channels repeated: the multiplier-1 problem the kernels solve (its
        // row kernel serves rows of any image: the kernels never read `batch`).
        let g1 = Conv2DGeometry(input: [1, g.height, g.width, cout], kernel: [g.kernelHeight, g.kernelWidth, 1, cout],
                                strideHeight: g.strideHeight, strideWidth: g.strideWidth, pads: g.pads, groups: cout)
        let imageIn = g.height * g.width * g.inChannels, imageWide = g.height * g.width * cout
        let imageOut = g.outHeight * g.outWidth * cout, imageCost = g.outHeight * g.outWidth * taps * cout
        var y = Tensor(uninitializedShape: [g.batch, g.outHeight, g.outWidth, cout])
        x.withUnsafeBufferPointer { xp in w.withUnsafeBufferPointer { wp in y.withUnsafeMutableBufferPointer { yp in
            let xb = xp.baseAddress!, wb = wp.baseAddress!, yb = yp.baseAddress!
            func run(_ bb: UnsafePointer<Float>?) {
                if m == 1 {
                    Parallel.forEach(g.batch * g.outHeight, costPerItem: imageCost / max(1, g.outHeight)) { rows in
                        for row in rows { g1.depthwiseForwardRow(row, xb, wb, bb, yb) }
                    }
                    return
                }
                Parallel.forEach(g.batch, costPerItem: imageCost) { images in
                    withUnsafeTemporaryAllocation(of: Float.self, capacity: imageWide) { wide in
                        for n in images {
                            repeatChannels(xb + n * imageIn, into: wide.baseAddress!, pixels: g.height * g.width, channels: g.inChannels, times: m)
                            for oy in 0..<g.outHeight { g1.depthwiseForwardRow(oy, wide.baseAddress!, wb, bb, yb + n * imageOut) }
                        }
                    }
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
                    Parallel.forEach(g.batch, costPerItem: imageCost) { images in
                        if m == 1 {
                            for n in images {
                                g1.depthwiseBackwardImage(xb + n * imageIn, wb, gb + n * imageOut, dx: db.map { $0 + n * imageIn },
                                                          weightPartial: pb.map { $0 + n * taps * cout })
                            }
                            return
                        }
                        withUnsafeTemporaryAllocation(of: Float.self, capacity: 2 * imageWide) { scratch in
                            let wide = scratch.baseAddress!, wideGrad = wide + imageWide
                            for n in images {
                                if wantsWeight {
                                    repeatChannels(xb + n * imageIn, into: wide, pixels: g.height * g.width, channels: g.inChannels, times: m)
                                }
                                g1.depthwiseBackwardImage(wide, wb, gb + n * imageOut, dx: db == nil ? nil : wideGrad,
                                                          weightPartial: pb.map { $0 + n * taps * cout })
                                if let db {
                                    // dx[c] = Σ_j dx̃[c·M + j]
                                    let to = db + n * imageIn
                                    for i in 0..<imageIn {
                                        var s: Float = 0
                                        for j in 0..<m { s += wideGrad[i * m + j] }
                                        to[i] = s
                                    }
                                }
                            }
                        }
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

/// `wide[p, c·times + j] = x[p, c]`: an image's channels each repeated `times` times.
private func repeatChannels(_ x: UnsafePointer<Float>, into wide: UnsafeMutablePointer<Float>, pixels: Int, channels: Int, times: Int) {
    for i in 0..<(pixels * channels) {
        let v = x[i], to = wide + i * times
        for j in 0..<times { to[j] = v }
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

    /// Multiplier-1 depthwise forward of output row `row` (= image·outHeight + oy): bias, then
    /// each tap's contribution in `(ky, kx)` order, vectorised over the channels.
    @inline(__always)
    func depthwiseForwardRow(_ row: Int, _ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>, _ bias: UnsafePointer<Float>?,
                             _ y: UnsafeMutablePointer<Float>) {
        let n = row / outHeight, oy = row % outHeight, c = inChannels
        let iy0 = oy * strideHeight - padTop
        let rowsInside = Conv2DGeometry.insideTaps(start: iy0, kernel: kernelHeight, size: height)
        for ox in 0..<outWidth {
            let out = y + (row * outWidth + ox) * c
            if let bias { out.update(from: bias, count: c) } else { out.update(repeating: 0, count: c) }
            let ix0 = ox * strideWidth - padLeft
            let columnsInside = Conv2DGeometry.insideTaps(start: ix0, kernel: kernelWidth, size: width)
            for ky in rowsInside {
                let pixelRow = x + ((n * height + iy0 + ky) * width) * c
                for kx in columnsInside {
                    let src = pixelRow + (ix0 + kx) * c, wk = w + (ky * kernelWidth + kx) * c
                    for ch in 0..<c { out[ch] += src[ch] * wk[ch] }
                }
            }
        }
    }

    /// Multiplier-1 depthwise backward of one image (`x`, `dy`, `dx` point at the image):
    /// `dx` (when given) is overwritten with the scatter of `dy · W`, and
    /// `weightPartial[tap, C]` (when given, zeroed) accumulates `dy · x`.
    @inline(__always)
    func depthwiseBackwardImage(_ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>, _ dy: UnsafePointer<Float>,
                                dx: UnsafeMutablePointer<Float>?, weightPartial: UnsafeMutablePointer<Float>?) {
        let c = inChannels
        dx?.update(repeating: 0, count: height * width * c)
        for oy in 0..<outHeight {
            let iy0 = oy * strideHeight - padTop
            let rowsInside = Conv2DGeometry.insideTaps(start: iy0, kernel: kernelHeight, size: height)
            for ox in 0..<outWidth {
                let g = dy + (oy * outWidth + ox) * c
                let ix0 = ox * strideWidth - padLeft
                let columnsInside = Conv2DGeometry.insideTaps(start: ix0, kernel: kernelWidth, size: width)
                for ky in rowsInside {
                    for kx in columnsInside {
                        let at = ((iy0 + ky) * width + ix0 + kx) * c, tap = (ky * kernelWidth + kx) * c
                        if let dx {
                            let d = dx + at, wk = w + tap
                            for ch in 0..<c { d[ch] += g[ch] * wk[ch] }
                        }
                        if let weightPartial {
                            let pw = weightPartial + tap, src = x + at
                            for ch in 0..<c { pw[ch] += g[ch] * src[ch] }
                        }
                    }
                }
            }
        }
    }
}
