extension Variable {
    /// 2-D convolution (cross-correlation, as in TensorFlow) `y = conv(x, W) + b` with
    /// TensorFlow's `.same`/`.valid` padding and one stride for both axes.
    ///
    /// `x: [N, H, W, Cin]`, `W: [kh, kw, Cin/groups, Cout]`, `b: [Cout]` → `y: [N, OH, OW, Cout]`.
    /// See `conv2d(weight:bias:strideHeight:strideWidth:pads:groups:activation:)`.
    public func conv2d(weight: Variable, bias: Variable?, stride: Int = 1, padding: Padding = .same, groups: Int = 1,
                       activation: Activation = .identity) -> Variable {
        let g = Conv2DGeometry(input: value.shape, kernel: weight.shape, stride: stride, padding: padding, groups: groups)
        return conv2d(weight: weight, bias: bias, geometry: g, activation: activation)
    }

    /// 2-D convolution with explicit (possibly asymmetric) zero padding, a stride per axis and
    /// channel groups (ONNX `Conv` with dilation 1).
    ///
    /// `x: [N, H, W, Cin]`, `W: [kh, kw, Cin/groups, Cout]`, `b: [Cout]` → `y: [N, OH, OW, Cout]`
    /// with `OH = ⌊(H + top + bottom − kh) / strideHeight⌋ + 1` (and likewise `OW`). Group `g`
    /// reads input channels `g·Cin/groups ..<` and writes output channels `g·Cout/groups ..<`.
    /// Depthwise (any channel multiplier) and groups of up to 4 input channels run a direct
    /// kernel (`Conv2DGeometry.usesDirectKernel`); otherwise im2col + one sgemm per group.
    public func conv2d(weight: Variable, bias: Variable?, strideHeight: Int = 1, strideWidth: Int = 1, pads: Padding2D,
                       groups: Int = 1, activation: Activation = .identity) -> Variable {
        let g = Conv2DGeometry(input: value.shape, kernel: weight.shape, strideHeight: strideHeight, strideWidth: strideWidth,
                               pads: pads, groups: groups)
        return conv2d(weight: weight, bias: bias, geometry: g, activation: activation)
    }

    /// The convolution of geometry `g` by im2col + sgemm, group by group (one group: one GEMM).
    ///
    /// With `col` the `[N·OH·OW, kh·kw·Cin]` patch matrix (group after group) and `col_g`,
    /// `W_g`, `y_g` group `g`'s column blocks: `y_g = col_g · W_g + b_g`,
    /// `dW_g = col_gᵀ · dy_g`, `db = Σ dy`, `dx = col2im(dy_g · W_gᵀ for each g)` (skipped when x
    /// needs no gradient).
    ///
    /// `activation` is applied in place on the output (fused epilogue); its gradient is applied
    /// to `dy` before the GEMMs of the backward pass.
    func conv2d(weight: Variable, bias: Variable?, geometry g: Conv2DGeometry, activation: Activation) -> Variable {
        if g.usesDirectKernel { return directConv2d(weight: weight, bias: bias, geometry: g, activation: activation) }
        let x = value, w = weight.value
        precondition(x.shape == [g.batch, g.height, g.width, g.inChannels], "conv2d: input \(x.shape) does not fit its geometry")
        let cout = g.outChannels, groups = g.groups, coutG = g.groupOutChannels, patchG = g.groupPatch
        if let b = bias?.value { precondition(b.shape == [cout], "conv2d: bias \(b.shape) does not fit \(cout) channels") }
        // y[rows, cout] (+)= col[rows, patch] · W, group g on its column blocks.
        func multiply(_ col: UnsafePointer<Float>, _ wb: UnsafePointer<Float>, rows: Int, beta: Float, into y: UnsafeMutablePointer<Float>) {
            for group in 0..<groups {
                BLAS.sgemm(m: rows, n: coutG, k: patchG, a: col + group * patchG, b: wb + group * coutG, beta: beta,
                           c: y + group * coutG, lda: g.patch, ldb: cout, ldc: cout)
            }
        }
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
                multiply(xb, wb, rows: g.rows, beta: beta, into: yb)
            } else if keepPatches {
                col = Tensor(uninitializedShape: [g.rows, g.patch])
                col.withUnsafeMutableBufferPointer { cp in
                    let cb = cp.baseAddress!
                    Parallel.forEach(g.batch, costPerItem: g.outHeight * g.outWidth * g.patch) { g.im2col(xb, cb, images: $0) }
                    multiply(cb, wb, rows: g.rows, beta: beta, into: yb)
                }
            } else {
                g.forEachChunk { images, rowsPerImage in
                    var chunk = Tensor(uninitializedShape: [images.count * rowsPerImage, g.patch])
                    chunk.withUnsafeMutableBufferPointer { cp in
                        g.im2col(xb, cp.baseAddress!, images: images, firstImage: images.lowerBound)
                        multiply(cp.baseAddress!, wb, rows: images.count * rowsPerImage, beta: beta,
                                 into: yb + images.lowerBound * rowsPerImage * cout)
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
                    for group in 0..<groups {
                        BLAS.sgemm(transA: true, m: patchG, n: coutG, k: g.rows, a: cp.baseAddress! + group * patchG,
                                   b: gp.baseAddress! + group * coutG, c: d.baseAddress! + group * coutG,
                                   lda: g.patch, ldb: cout, ldc: cout)
                    }
                } } }
                weight.accumulate(dw)
            }
            if let bias, bias.requiresGrad { bias.accumulate(dy.columnSums()) }
            guard input.requiresGrad else { return }
            // dcol[rows, patch] = dy · Wᵀ, group g on its column blocks.
            func multiplyTransposed(_ gb: UnsafePointer<Float>, _ wb: UnsafePointer<Float>, rows: Int, into dcol: UnsafeMutablePointer<Float>) {
                for group in 0..<groups {
                    BLAS.sgemm(transB: true, m: rows, n: patchG, k: coutG, a: gb + group * coutG, b: wb + group * coutG,
                               c: dcol + group * patchG, lda: cout, ldb: cout, ldc: g.patch)
                }
            }
            var dx = Tensor(uninitializedShape: x.shape)
            dy.withUnsafeBufferPointer { gp in w.withUnsafeBufferPointer { wp in dx.withUnsafeMutableBufferPointer { d in
                let gb = gp.baseAddress!, wb = wp.baseAddress!, db = d.baseAddress!
                if g.isPointwise {
                    multiplyTransposed(gb, wb, rows: g.rows, into: db)
                    return
                }
                // dx = col2im(dy · Wᵀ), a cache-sized chunk of images at a time.
                g.forEachChunk { images, rowsPerImage in
                    var dcol = Tensor(uninitializedShape: [images.count * rowsPerImage, g.patch])
                    dcol.withUnsafeMutableBufferPointer { cp in
                        multiplyTransposed(gb + images.lowerBound * rowsPerImage * cout, wb, rows: images.count * rowsPerImage,
                                           into: cp.baseAddress!)
                        g.col2im(cp.baseAddress!, db, images: images, firstImage: images.lowerBound)
                    }
                }
            } } }
            input.accumulate(dx)
        }
    }
}
