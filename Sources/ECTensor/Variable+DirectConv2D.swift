extension Conv2DGeometry {
    /// Whether the direct kernel runs this convolution instead of im2col + one GEMM per group:
    /// several groups of at most `directGroupInChannels` input channels each — depthwise (one)
    /// and narrow ResNeXt-style groups, whose per-group GEMMs are too thin to repay the im2col.
    public var usesDirectKernel: Bool { groups > 1 && groupInChannels <= Conv2DGeometry.directGroupInChannels }

    /// The most input channels per group the direct kernel takes. Measured on 3×3 convolutions
    /// of [64, 14, 14, C] (release, 2 threads, forward + backward): 2 per group 22 ms direct vs
    /// 119 ms GEMM, 4 per group 51 vs 122 ms, 8 per group 80 vs 69 ms. Tests change it to run
    /// the same problem through both paths.
    nonisolated(unsafe) static var directGroupInChannels = 4
}

extension Variable {
    /// Grouped convolution by a direct NHWC kernel (depthwise included): every loop over
    /// channels is contiguous and vectorises, where im2col + per-group GEMMs with `k = kh·kw·ci`
    /// would be thin.
    ///
    /// `x: [N, H, W, C]`, `W: [kh, kw, ci, Co]` with `ci = C/groups`, `b: [Co]` → `[N, OH, OW, Co]`.
    /// Each image is first widened to `x̃[p, i, o] = x[p, group(o)·ci + i]` (`[H·W, ci, Co]`, the
    /// layout of one kernel tap `W[ky, kx]`), so that
    /// `y[o] = b[o] + Σ_{taps, i} x̃[pixel(tap), i, o] · W[tap, i, o]` runs over whole `ci·Co` rows.
    /// Depthwise without a multiplier (`x̃ = x`) skips the widening.
    ///
    /// Backward, image by image (one thread owns an image, so no result depends on the thread
    /// count): `dx̃` scatters `dy · W` onto each tap's pixel and folds back
    /// (`dx[p, g·ci + i] = Σ_{o ∈ g} dx̃[p, i, o]`); `dW` sums `dy · x̃` per image, then over images
    /// in order; `db = Σ dy`.
    func directConv2d(weight: Variable, bias: Variable?, geometry g: Conv2DGeometry, activation: Activation) -> Variable {
        let x = value, w = weight.value
        precondition(x.shape == [g.batch, g.height, g.width, g.inChannels], "conv2d: input \(x.shape) does not fit its geometry")
        let cout = g.outChannels, ci = g.groupInChannels, taps = g.kernelHeight * g.kernelWidth
        if let b = bias?.value { precondition(b.shape == [cout], "conv2d: bias \(b.shape) does not fit \(cout) channels") }
        let widens = !(ci == 1 && g.groupOutChannels == 1)
        let pixels = g.height * g.width, imageIn = pixels * g.inChannels, imageWide = pixels * ci * cout
        let imageOut = g.outHeight * g.outWidth * cout, imageCost = g.outHeight * g.outWidth * taps * ci * cout
        var y = Tensor(uninitializedShape: [g.batch, g.outHeight, g.outWidth, cout])
        x.withUnsafeBufferPointer { xp in w.withUnsafeBufferPointer { wp in y.withUnsafeMutableBufferPointer { yp in
            let xb = xp.baseAddress!, wb = wp.baseAddress!, yb = yp.baseAddress!
            func run(_ bb: UnsafePointer<Float>?) {
                if !widens {
                    Parallel.forEach(g.batch * g.outHeight, costPerItem: imageCost / max(1, g.outHeight)) { rows in
                        for row in rows {
                            let n = row / g.outHeight
                            g.directForwardRow(row % g.outHeight, xb + n * imageIn, wb, bb, yb + n * imageOut)
                        }
                    }
                    return
                }
                Parallel.forEach(g.batch, costPerItem: imageCost) { images in
                    withUnsafeTemporaryAllocation(of: Float.self, capacity: imageWide) { wide in
                        for n in images {
                            g.widen(xb + n * imageIn, into: wide.baseAddress!)
                            for oy in 0..<g.outHeight { g.directForwardRow(oy, wide.baseAddress!, wb, bb, yb + n * imageOut) }
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
            var partials = Tensor(shape: wantsWeight ? [g.batch, w.count] : [0], repeating: 0)
            x.withUnsafeBufferPointer { xp in w.withUnsafeBufferPointer { wp in dy.withUnsafeBufferPointer { gp in
                dx.withUnsafeMutableBufferPointer { dp in partials.withUnsafeMutableBufferPointer { pp in
                    let (xb, wb, gb) = (xp.baseAddress!, wp.baseAddress!, gp.baseAddress!)
                    let db = wantsInput ? dp.baseAddress : nil, pb = wantsWeight ? pp.baseAddress : nil
                    Parallel.forEach(g.batch, costPerItem: imageCost) { images in
                        if !widens {
                            for n in images {
                                g.directBackwardImage(xb + n * imageIn, wb, gb + n * imageOut, dx: db.map { $0 + n * imageIn },
                                                      weightPartial: pb.map { $0 + n * w.count })
                            }
                            return
                        }
                        withUnsafeTemporaryAllocation(of: Float.self, capacity: 2 * imageWide) { scratch in
                            let wide = scratch.baseAddress!, wideGrad = wide + imageWide
                            for n in images {
                                if wantsWeight { g.widen(xb + n * imageIn, into: wide) }
                                g.directBackwardImage(wide, wb, gb + n * imageOut, dx: db == nil ? nil : wideGrad,
                                                      weightPartial: pb.map { $0 + n * w.count })
                                if let db { g.fold(wideGrad, into: db + n * imageIn) }
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

extension Conv2DGeometry {
    /// The kernel taps `low..<high` of a window starting at input coordinate `start` that fall
    /// inside `0..<size` (empty when the window lies wholly in the padding).
    @inline(__always)
    static func insideTaps(start: Int, kernel: Int, size: Int) -> Range<Int> {
        let low = max(0, -start)
        return low..<max(low, min(kernel, size - start))
    }

    /// One image widened for the direct kernel: `wide[p, i, o] = x[p, group(o)·ci + i]`.
    func widen(_ x: UnsafePointer<Float>, into wide: UnsafeMutablePointer<Float>) {
        let ci = groupInChannels, co = groupOutChannels, cout = outChannels
        for p in 0..<(height * width) {
            let pixel = x + p * inChannels, to = wide + p * ci * cout
            for i in 0..<ci {
                let row = to + i * cout
                for group in 0..<groups {
                    let v = pixel[group * ci + i], block = row + group * co
                    for o in 0..<co { block[o] = v }
                }
            }
        }
    }

    /// The input gradient of one image from its widened gradient: `dx[p, g·ci + i] = Σ_{o ∈ g} dx̃[p, i, o]`.
    func fold(_ wideGrad: UnsafePointer<Float>, into dx: UnsafeMutablePointer<Float>) {
        let ci = groupInChannels, co = groupOutChannels, cout = outChannels
        for p in 0..<(height * width) {
            let from = wideGrad + p * ci * cout, pixel = dx + p * inChannels
            for i in 0..<ci {
                for group in 0..<groups {
                    let block = from + i * cout + group * co
                    var s: Float = 0
                    for o in 0..<co { s += block[o] }
                    pixel[group * ci + i] = s
                }
            }
        }
    }

    /// Output row `oy` of one image from its widened input `x` (`[H·W, ci·Co]`; for depthwise
    /// without a multiplier, the image itself): bias, then each tap's `ci·Co` products in
    /// `(ky, kx, i)` order.
    @inline(__always)
    func directForwardRow(_ oy: Int, _ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>, _ bias: UnsafePointer<Float>?,
                          _ y: UnsafeMutablePointer<Float>) {
        let cout = outChannels, ci = groupInChannels, pixel = ci * cout
        let iy0 = oy * strideHeight - padTop
        let rowsInside = Conv2DGeometry.insideTaps(start: iy0, kernel: kernelHeight, size: height)
        for ox in 0..<outWidth {
            let out = y + (oy * outWidth + ox) * cout
            if let bias { out.update(from: bias, count: cout) } else { out.update(repeating: 0, count: cout) }
            let ix0 = ox * strideWidth - padLeft
            let columnsInside = Conv2DGeometry.insideTaps(start: ix0, kernel: kernelWidth, size: width)
            for ky in rowsInside {
                for kx in columnsInside {
                    let src = x + ((iy0 + ky) * width + ix0 + kx) * pixel, wk = w + (ky * kernelWidth + kx) * pixel
                    for i in 0..<ci {
                        let s = src + i * cout, k = wk + i * cout
                        for o in 0..<cout { out[o] += s[o] * k[o] }
                    }
                }
            }
        }
    }

    /// Backward of one image (widened input `x`, its `dy`): `dx` (widened, when given) is
    /// overwritten with the scatter of `dy · W`, and `weightPartial` (the kernel's shape, when
    /// given, zeroed) accumulates `dy · x`.
    @inline(__always)
    func directBackwardImage(_ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>, _ dy: UnsafePointer<Float>,
                             dx: UnsafeMutablePointer<Float>?, weightPartial: UnsafeMutablePointer<Float>?) {
        let cout = outChannels, ci = groupInChannels, pixel = ci * cout
        dx?.update(repeating: 0, count: height * width * pixel)
        for oy in 0..<outHeight {
            let iy0 = oy * strideHeight - padTop
            let rowsInside = Conv2DGeometry.insideTaps(start: iy0, kernel: kernelHeight, size: height)
            for ox in 0..<outWidth {
                let g = dy + (oy * outWidth + ox) * cout
                let ix0 = ox * strideWidth - padLeft
                let columnsInside = Conv2DGeometry.insideTaps(start: ix0, kernel: kernelWidth, size: width)
                for ky in rowsInside {
                    for kx in columnsInside {
                        let at = ((iy0 + ky) * width + ix0 + kx) * pixel, tap = (ky * kernelWidth + kx) * pixel
                        for i in 0..<ci {
                            if let dx {
                                let d = dx + at + i * cout, k = w + tap + i * cout
                                for o in 0..<cout { d[o] += g[o] * k[o] }
                            }
                            if let weightPartial {
                                let pw = weightPartial + tap + i * cout, s = x + at + i * cout
                                for o in 0..<cout { pw[o] += g[o] * s[o] }
                            }
                        }
                    }
                }
            }
        }
    }
}
