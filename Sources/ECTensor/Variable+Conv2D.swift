extension Variable {
    /// 2-D convolution (cross-correlation, as in TensorFlow) `y = conv(x, W) + b` by im2col + sgemm.
    ///
    /// `x: [N, H, W, Cin]`, `W: [kh, kw, Cin, Cout]`, `b: [Cout]` → `y: [N, OH, OW, Cout]`.
    /// With `col` the `[N·OH·OW, kh·kw·Cin]` patch matrix: `y = col · W + b`,
    /// `dW = colᵀ · dy`, `db = Σ dy`, `dx = col2im(dy · Wᵀ)` (skipped when x needs no gradient).
    ///
    /// `activation` is applied in place on the output (fused epilogue); its gradient is applied
    /// to `dy` before the GEMMs of the backward pass.
    public func conv2d(weight: Variable, bias: Variable?, stride: Int = 1, padding: Padding = .same,
                       activation: Activation = .identity) -> Variable {
        let x = value, w = weight.value
        let g = Conv2DGeometry(input: x.shape, kernel: w.shape, stride: stride, padding: padding)
        let cout = g.outChannels
        if let b = bias?.value { precondition(b.shape == [cout], "conv2d: bias \(b.shape) does not fit \(cout) channels") }
        // The weight gradient needs the whole patch matrix; without it (inference), patches are
        // built and multiplied a cache-sized chunk of images at a time.
        let keepPatches = weight.tape != nil
        var col = Tensor(shape: [0])
        var y = Tensor(uninitializedShape: [g.batch, g.outHeight, g.outWidth, cout])
        x.withUnsafeBufferPointer { xp in w.withUnsafeBufferPointer { wp in y.withUnsafeMutableBufferPointer { yp in
            let xb = xp.baseAddress!, wb = wp.baseAddress!, yb = yp.baseAddress!
            if let b = bias?.value {
                b.withUnsafeBufferPointer { bp in
                    for r in 0..<g.rows { (yb + r * cout).update(from: bp.baseAddress!, count: cout) }
                }
            }
            let beta: Float = bias == nil ? 0 : 1
            if g.isPointwise {
                BLAS.sgemm(m: g.rows, n: cout, k: g.patch, a: xb, b: wb, beta: beta, c: yb)
            } else if keepPatches {
                col = Tensor(uninitializedShape: [g.rows, g.patch])
                col.withUnsafeMutableBufferPointer { cp in
                    let cb = cp.baseAddress!
                    Parallel.forEach(g.batch, costPerItem: g.outHeight * g.outWidth * g.patch) { g.im2col(xb, cb, images: $0) }
                    BLAS.sgemm(m: g.rows, n: cout, k: g.patch, a: cb, b: wb, beta: beta, c: yb)
                }
            } else {
                g.forEachChunk { images, rowsPerImage in
                    var chunk = Tensor(uninitializedShape: [images.count * rowsPerImage, g.patch])
                    chunk.withUnsafeMutableBufferPointer { cp in
                        g.im2col(xb, cp.baseAddress!, images: images, firstImage: images.lowerBound)
                        BLAS.sgemm(m: images.count * rowsPerImage, n: cout, k: g.patch, a: cp.baseAddress!, b: wb,
                                   beta: beta, c: yb + images.lowerBound * rowsPerImage * cout)
                    }
                }
            }
        } } }
        activation.apply(&y)
        let input = self
        let patches = g.isPointwise ? x.reshaped([g.rows, g.patch]) : col
        let output = y
        return Variable.result(y, inputs: self, weight, bias) { upstream in
            let dy = activation.backward(upstream, output: output)
            if weight.requiresGrad {
                var dw = Tensor(uninitializedShape: w.shape)
                patches.withUnsafeBufferPointer { cp in dy.withUnsafeBufferPointer { gp in dw.withUnsafeMutableBufferPointer { d in
                    BLAS.sgemm(transA: true, m: g.patch, n: cout, k: g.rows, a: cp.baseAddress!, b: gp.baseAddress!,
                               c: d.baseAddress!)
                } } }
                weight.accumulate(dw)
            }
            if let bias, bias.requiresGrad { bias.accumulate(dy.columnSums()) }
            guard input.requiresGrad else { return }
            var dx = Tensor(uninitializedShape: x.shape)
            dy.withUnsafeBufferPointer { gp in w.withUnsafeBufferPointer { wp in dx.withUnsafeMutableBufferPointer { d in
                let gb = gp.baseAddress!, wb = wp.baseAddress!, db = d.baseAddress!
                if g.isPointwise {
                    BLAS.sgemm(transB: true, m: g.rows, n: g.patch, k: cout, a: gb, b: wb, c: db)
                    return
                }
                // dx = col2im(dy · Wᵀ), a cache-sized chunk of images at a time.
                g.forEachChunk { images, rowsPerImage in
                    var dcol = Tensor(uninitializedShape: [images.count * rowsPerImage, g.patch])
                    dcol.withUnsafeMutableBufferPointer { cp in
                        BLAS.sgemm(transB: true, m: images.count * rowsPerImage, n: g.patch, k: cout,
                                   a: gb + images.lowerBound * rowsPerImage * cout, b: wb, c: cp.baseAddress!)
                        g.col2im(cp.baseAddress!, db, images: images, firstImage: images.lowerBound)
                    }
                }
            } } }
            input.accumulate(dx)
        }
    }
}
