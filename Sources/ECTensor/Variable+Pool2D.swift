/// The geometry of a 2-D max or average pooling over NHWC input (ONNX `MaxPool`/`AveragePool`
/// with dilation 1): a `kh × kw` window, a stride per axis, explicit zero padding, `ceilMode`.
///
/// Output size `⌊(in + before + after − k) / s⌋ + 1`, or with `ceilMode` `⌈…⌉ + 1` minus one
/// when the last window would start in the end padding (ONNX and PyTorch: such a window is
/// not produced). With `ceilMode` the last window may reach past the padded input.
public struct Pool2DGeometry: Equatable, Sendable {
    public let batch, height, width, channels: Int
    public let kernelHeight, kernelWidth, strideHeight, strideWidth: Int
    public let padTop, padBottom, padLeft, padRight: Int
    public let outHeight, outWidth: Int

    /// Each pad must be smaller than the window along its axis, so that every window holds at
    /// least one input position.
    public init(input: [Int], kernelHeight: Int, kernelWidth: Int, strideHeight: Int, strideWidth: Int,
                pads: Padding2D = .zero, ceilMode: Bool = false) {
        precondition(input.count == 4, "pool2d needs NHWC input, got \(input)")
        precondition(kernelHeight > 0 && kernelWidth > 0 && strideHeight > 0 && strideWidth > 0,
                     "pool2d: window \(kernelHeight)×\(kernelWidth) and strides \(strideHeight)×\(strideWidth) must be > 0")
        precondition(pads.top < kernelHeight && pads.bottom < kernelHeight && pads.left < kernelWidth && pads.right < kernelWidth,
                     "pool2d: pads \(pads) must be smaller than the window \(kernelHeight)×\(kernelWidth)")
        (batch, height, width, channels) = (input[0], input[1], input[2], input[3])
        (self.kernelHeight, self.kernelWidth, self.strideHeight, self.strideWidth) = (kernelHeight, kernelWidth, strideHeight, strideWidth)
        (padTop, padBottom, padLeft, padRight) = (pads.top, pads.bottom, pads.left, pads.right)
        func size(_ n: Int, _ k: Int, _ s: Int, _ before: Int, _ after: Int) -> Int {
            let span = n + before + after - k
            precondition(span >= 0, "pool2d: padded input \(n + before + after) smaller than the window \(k)")
            var out = (ceilMode ? (span + s - 1) / s : span / s) + 1
            if ceilMode && (out - 1) * s >= n + before { out -= 1 }
            return out
        }
        outHeight = size(height, kernelHeight, strideHeight, padTop, padBottom)
        outWidth = size(width, kernelWidth, strideWidth, padLeft, padRight)
    }

    /// The input rows (`ky` offsets) of output row `oy`'s window that lie inside the image.
    @inline(__always)
    func rowsInside(_ oy: Int) -> Range<Int> { Conv2DGeometry.insideTaps(start: oy * strideHeight - padTop, kernel: kernelHeight, size: height) }
    @inline(__always)
    func columnsInside(_ ox: Int) -> Range<Int> { Conv2DGeometry.insideTaps(start: ox * strideWidth - padLeft, kernel: kernelWidth, size: width) }

    /// The divisor of an average: the window positions inside the padded input (the whole
    /// window, except where `ceilMode` lets it reach past the end padding) with
    /// `countIncludePad`, else the positions inside the image.
    @inline(__always)
    func divisor(_ oy: Int, _ ox: Int, countIncludePad: Bool) -> Int {
        guard countIncludePad else { return rowsInside(oy).count * columnsInside(ox).count }
        let y0 = oy * strideHeight - padTop, x0 = ox * strideWidth - padLeft
        return (min(y0 + kernelHeight, height + padBottom) - y0) * (min(x0 + kernelWidth, width + padRight) - x0)
    }

    @inline(__always)
    func inputOffset(_ n: Int, _ iy: Int, _ ix: Int) -> Int { ((n * height + iy) * width + ix) * channels }

    /// Max of each window of output row `row` (= image·outHeight + oy) over its in-image positions.
    @inline(__always)
    func maxRow(_ row: Int, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>) {
        let n = row / outHeight, oy = row % outHeight, c = channels
        let rows = rowsInside(oy), y0 = oy * strideHeight - padTop
        for ox in 0..<outWidth {
            let out = y + (row * outWidth + ox) * c
            let cols = columnsInside(ox), x0 = ox * strideWidth - padLeft
            let first = x + inputOffset(n, y0 + rows.lowerBound, x0 + cols.lowerBound)
            for ch in 0..<c { out[ch] = first[ch] }
            for ky in rows {
                for kx in cols {
                    let src = x + inputOffset(n, y0 + ky, x0 + kx)
                    for ch in 0..<c { out[ch] = max(out[ch], src[ch]) }
                }
            }
        }
    }

    /// Mean of each window of output row `row`: the in-image sum over `divisor`.
    @inline(__always)
    func averageRow(_ row: Int, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, countIncludePad: Bool) {
        let n = row / outHeight, oy = row % outHeight, c = channels
        let rows = rowsInside(oy), y0 = oy * strideHeight - padTop
        for ox in 0..<outWidth {
            let out = y + (row * outWidth + ox) * c
            let cols = columnsInside(ox), x0 = ox * strideWidth - padLeft
            out.update(repeating: 0, count: c)
            for ky in rows {
                for kx in cols {
                    let src = x + inputOffset(n, y0 + ky, x0 + kx)
                    for ch in 0..<c { out[ch] += src[ch] }
                }
            }
            let scale = 1 / Float(divisor(oy, ox, countIncludePad: countIncludePad))
            for ch in 0..<c { out[ch] *= scale }
        }
    }

    /// Image `n`'s max-pooling gradient (its part of `dx` overwritten): each output's gradient
    /// goes to the first in-image window position (row-major) equal to the maximum.
    ///
    /// Eight channels at a time, the gradient still to route (`left`) stays in a register
    /// across the window's positions: cleared once a position takes it, so later equal
    /// positions get nothing.
    @inline(__always)
    func maxBackwardImage(_ n: Int, _ x: UnsafePointer<Float>, _ pooled: UnsafePointer<Float>, _ dy: UnsafePointer<Float>,
                          _ dx: UnsafeMutablePointer<Float>) {
        let c = channels, vectorEnd = c - c % 8
        (dx + inputOffset(n, 0, 0)).update(repeating: 0, count: height * width * c)
        for oy in 0..<outHeight {
            let rows = rowsInside(oy), y0 = oy * strideHeight - padTop
            for ox in 0..<outWidth {
                let o = ((n * outHeight + oy) * outWidth + ox) * c
                let cols = columnsInside(ox), x0 = ox * strideWidth - padLeft
                var ch = 0
                while ch < vectorEnd {
                    var left = load8(dy + o + ch)
                    let peak = load8(pooled + o + ch)
                    for ky in rows {
                        for kx in cols {
                            let at = inputOffset(n, y0 + ky, x0 + kx) + ch
                            let hit = load8(x + at) .== peak
                            store8(load8(dx + at) + left.replacing(with: 0, where: .!hit), dx + at)
                            left = left.replacing(with: 0, where: hit)
                        }
                    }
                    ch += 8
                }
                for ch in vectorEnd..<c {
                    var left = dy[o + ch]
                    let peak = pooled[o + ch]
                    for ky in rows {
                        for kx in cols {
                            let at = inputOffset(n, y0 + ky, x0 + kx) + ch
                            if x[at] == peak { dx[at] += left; left = 0 }
                        }
                    }
                }
            }
        }
    }

    /// Image `n`'s average-pooling gradient (its part of `dx` overwritten): `dy / divisor` to
    /// every in-image position of the window.
    @inline(__always)
    func averageBackwardImage(_ n: Int, _ dy: UnsafePointer<Float>, _ dx: UnsafeMutablePointer<Float>, countIncludePad: Bool) {
        let c = channels
        (dx + inputOffset(n, 0, 0)).update(repeating: 0, count: height * width * c)
        for oy in 0..<outHeight {
            let rows = rowsInside(oy), y0 = oy * strideHeight - padTop
            for ox in 0..<outWidth {
                let g = dy + ((n * outHeight + oy) * outWidth + ox) * c
                let cols = columnsInside(ox), x0 = ox * strideWidth - padLeft
                let scale = 1 / Float(divisor(oy, ox, countIncludePad: countIncludePad))
                for ky in rows {
                    for kx in cols {
                        let dst = dx + inputOffset(n, y0 + ky, x0 + kx)
                        for ch in 0..<c { dst[ch] += g[ch] * scale }
                    }
                }
            }
        }
    }
}

extension Variable {
    /// Max pooling with a `kh × kw` window, strides per axis, explicit pads and `ceilMode`
    /// (ONNX `MaxPool`, dilation 1): `[N, H, W, C] → [N, OH, OW, C]` (see `Pool2DGeometry`).
    /// Padded positions are ignored (−∞). Backward routes each output's gradient to the first
    /// window position (row-major) holding the maximum, image by image.
    ///
    /// The common 2×2 window with stride 2, no padding and no extra ceil-mode window runs the
    /// existing `maxPool2d(size:stride:)` 2×2 kernels (the same results).
    public func maxPool2d(kernelHeight: Int, kernelWidth: Int, strideHeight: Int, strideWidth: Int,
                          pads: Padding2D = .zero, ceilMode: Bool = false) -> Variable {
        let x = value
        let g = Pool2DGeometry(input: x.shape, kernelHeight: kernelHeight, kernelWidth: kernelWidth, strideHeight: strideHeight,
                               strideWidth: strideWidth, pads: pads, ceilMode: ceilMode)
        if kernelHeight == 2 && kernelWidth == 2 && strideHeight == 2 && strideWidth == 2 && pads.isZero
            && g.outHeight == g.height / 2 && g.outWidth == g.width / 2 {
            return maxPool2d(size: 2, stride: 2)
        }
        var y = Tensor(uninitializedShape: [g.batch, g.outHeight, g.outWidth, g.channels])
        let windowCost = g.outWidth * g.channels * kernelHeight * kernelWidth
        x.withUnsafeBufferPointer { xp in y.withUnsafeMutableBufferPointer { yp in
            let xb = xp.baseAddress!, yb = yp.baseAddress!
            Parallel.forEach(g.batch * g.outHeight, costPerItem: windowCost) { rows in
                for row in rows { g.maxRow(row, xb, yb) }
            }
        } }
        let input = self, pooled = y
        return Variable.result(y, inputs: self) { dy in
            var dx = Tensor(uninitializedShape: x.shape)
            x.withUnsafeBufferPointer { xp in pooled.withUnsafeBufferPointer { pp in
                dy.withUnsafeBufferPointer { gp in dx.withUnsafeMutableBufferPointer { dp in
                    let (xb, pb, gb, db) = (xp.baseAddress!, pp.baseAddress!, gp.baseAddress!, dp.baseAddress!)
                    Parallel.forEach(g.batch, costPerItem: g.outHeight * windowCost) { images in
                        for n in images { g.maxBackwardImage(n, xb, pb, gb, db) }
                    }
                } }
            } }
            input.accumulate(dx)
        }
    }

    /// Average pooling with a `kh × kw` window, strides per axis, explicit pads, `ceilMode`
    /// and `countIncludePad` (ONNX `AveragePool`, dilation 1): `[N, H, W, C] → [N, OH, OW, C]`.
    ///
    /// Each output is the sum of its window's in-image inputs over a divisor: with
    /// `countIncludePad` the window's positions inside the padded input (`kh·kw` except for a
    /// ceil-mode window reaching past the end padding, as PyTorch), otherwise its in-image
    /// positions. Backward spreads `dy / divisor` over the same positions.
    public func avgPool2d(kernelHeight: Int, kernelWidth: Int, strideHeight: Int, strideWidth: Int,
                          pads: Padding2D = .zero, ceilMode: Bool = false, countIncludePad: Bool = false) -> Variable {
        let x = value
        let g = Pool2DGeometry(input: x.shape, kernelHeight: kernelHeight, kernelWidth: kernelWidth, strideHeight: strideHeight,
                               strideWidth: strideWidth, pads: pads, ceilMode: ceilMode)
        var y = Tensor(uninitializedShape: [g.batch, g.outHeight, g.outWidth, g.channels])
        let windowCost = g.outWidth * g.channels * kernelHeight * kernelWidth
        x.withUnsafeBufferPointer { xp in y.withUnsafeMutableBufferPointer { yp in
            let xb = xp.baseAddress!, yb = yp.baseAddress!
            Parallel.forEach(g.batch * g.outHeight, costPerItem: windowCost) { rows in
                for row in rows { g.averageRow(row, xb, yb, countIncludePad: countIncludePad) }
            }
        } }
        let input = self
        return Variable.result(y, inputs: self) { dy in
            var dx = Tensor(uninitializedShape: x.shape)
            dy.withUnsafeBufferPointer { gp in dx.withUnsafeMutableBufferPointer { dp in
                let gb = gp.baseAddress!, db = dp.baseAddress!
                Parallel.forEach(g.batch, costPerItem: g.outHeight * windowCost) { images in
                    for n in images { g.averageBackwardImage(n, gb, db, countIncludePad: countIncludePad) }
                }
            } }
            input.accumulate(dx)
        }
    }

    /// Global max pooling `[N, H, W, C] → [N, C]` (ONNX `GlobalMaxPool`, then a reshape);
    /// backward to the first maximum in row-major order.
    public func globalMaxPool() -> Variable {
        precondition(value.rank == 4, "globalMaxPool needs NHWC input, got \(shape)")
        let (n, h, w, c) = (shape[0], shape[1], shape[2], shape[3])
        return maxPool2d(kernelHeight: h, kernelWidth: w, strideHeight: 1, strideWidth: 1).reshaped([n, c])
    }
}

@inline(__always) private func load8(_ p: UnsafePointer<Float>) -> SIMD8<Float> {
    UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self)
}

@inline(__always) private func load8(_ p: UnsafeMutablePointer<Float>) -> SIMD8<Float> { load8(UnsafePointer(p)) }

@inline(__always) private func store8(_ v: SIMD8<Float>, _ p: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD8<Float>.self)
}
