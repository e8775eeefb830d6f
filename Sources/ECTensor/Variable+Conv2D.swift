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

    /// The convolution of geometry `g`: the direct grouped kernel (`usesDirectKernel`), the
    /// engine's convolution kernels (`FP32Conv`: AVX-512 and AVX2), else im2col + sgemm.
    ///
    /// `activation` is applied on the output (fused epilogue); its gradient is applied to `dy`
    /// before the products of the backward pass.
    func conv2d(weight: Variable, bias: Variable?, geometry g: Conv2DGeometry, activation: Activation) -> Variable {
        if g.usesDirectKernel { return directConv2d(weight: weight, bias: bias, geometry: g, activation: activation) }
        if FP32Conv.runs(g) { return kernelConv2d(weight: weight, bias: bias, geometry: g, activation: activation) }
        return gemmConv2d(weight: weight, bias: bias, geometry: g, activation: activation)
    }

    /// The convolution of geometry `g` by im2col + sgemm, group by group (one group: one GEMM).
    ///
    /// With `col` the `[N·OH·OW, kh·kw·Cin]` patch matrix (group after group) and `col_g`,
    /// `W_g`, `y_g` group `g`'s column blocks: `y_g = col_g · W_g + b_g`,
    /// `dW_g = col_gᵀ · dy_g`, `db = Σ dy`, `dx = col2im(dy_g · W_gᵀ for each g)` (skipped when x
    /// needs no gradient). The patch matrix is kept for `dW` when the weight needs a gradient;
    /// otherwise patches are built and multiplied a cache-sized chunk of images at a time.
    func gemmConv2d(weight: Variable, bias: Variable?, geometry g: Conv2DGeometry, activation: Activation) -> Variable {
        let x = value, w = weight.value
        g.check(input: x, kernel: w, bias: bias?.value)
        var y = Tensor(uninitializedShape: [g.batch, g.outHeight, g.outWidth, g.outChannels])
        let patches = g.gemmForward(x, w, bias: bias?.value, into: &y, keepPatches: weight.tape != nil)
        activation.apply(&y)
        let input = self
        let output = y
        return Variable.result(y, inputs: self, weight, bias) { upstream in
            let dy = activation.backward(upstream, output: output)
            if weight.requiresGrad {
                var dw = Tensor(uninitializedShape: w.shape)
                g.gemmWeightGradient(patches: patches, dy, into: &dw)
                weight.accumulate(dw)
            }
            if let bias, bias.requiresGrad { bias.accumulate(dy.columnSums()) }
            guard input.requiresGrad else { return }
            var dx = Tensor(uninitializedShape: x.shape)
            g.gemmInputGradient(dy, w, into: &dx)
            input.accumulate(dx)
        }
    }
}

extension Conv2DGeometry {
    func check(input x: Tensor, kernel w: Tensor, bias: Tensor?) {
        precondition(x.shape == [batch, height, width, inChannels], "conv2d: input \(x.shape) does not fit its geometry")
        precondition(w.shape == [kernelHeight, kernelWidth, groupInChannels, outChannels],
                     "conv2d: kernel \(w.shape) does not fit its geometry")
        if let b = bias { precondition(b.shape == [outChannels], "conv2d: bias \(b.shape) does not fit \(outChannels) channels") }
    }

    /// `y[rows, cout] (+)= col[rows, patch] · W`, group g on its column blocks.
    func multiplyPatches(_ col: UnsafePointer<Float>, _ w: UnsafePointer<Float>, rows: Int, beta: Float,
                         into y: UnsafeMutablePointer<Float>) {
        for group in 0..<groups {
            BLAS.sgemm(m: rows, n: groupOutChannels, k: groupPatch, a: col + group * groupPatch, b: w + group * groupOutChannels,
                       beta: beta, c: y + group * groupOutChannels, lda: patch, ldb: outChannels, ldc: outChannels)
        }
    }

    /// The im2col route's forward pass (bias, no activation) into `y`; returns the patch matrix
    /// `[rows, patch]` when `keepPatches` (the input itself for a pointwise convolution), else
    /// an empty tensor.
    package func gemmForward(_ x: Tensor, _ w: Tensor, bias: Tensor?, into y: inout Tensor, keepPatches: Bool) -> Tensor {
        let cout = outChannels
        var col = Tensor(shape: [0])
        x.withUnsafeBufferPointer { xp in w.withUnsafeBufferPointer { wp in y.withUnsafeMutableBufferPointer { yp in
            let xb = xp.baseAddress!, wb = wp.baseAddress!, yb = yp.baseAddress!
            if let bias {
                bias.withUnsafeBufferPointer { bp in
                    for r in 0..<rows { (yb + r * cout).update(from: bp.baseAddress!, count: cout) }
                }
            }
            let beta: Float = bias == nil ? 0 : 1
            if isPointwise {
                multiplyPatches(xb, wb, rows: rows, beta: beta, into: yb)
            } else if keepPatches {
                col = Tensor(uninitializedShape: [rows, patch])
                col.withUnsafeMutableBufferPointer { cp in
                    let cb = cp.baseAddress!
                    Parallel.forEach(batch, costPerItem: outHeight * outWidth * patch) { im2col(xb, cb, images: $0) }
                    multiplyPatches(cb, wb, rows: rows, beta: beta, into: yb)
                }
            } else {
                forEachChunk { images, rowsPerImage in
                    var chunk = Tensor(uninitializedShape: [images.count * rowsPerImage, patch])
                    chunk.withUnsafeMutableBufferPointer { cp in
                        im2col(xb, cp.baseAddress!, images: images, firstImage: images.lowerBound)
                        multiplyPatches(cp.baseAddress!, wb, rows: images.count * rowsPerImage, beta: beta,
                                        into: yb + images.lowerBound * rowsPerImage * cout)
                    }
                }
            }
        } } }
        return isPointwise && keepPatches ? x.reshaped([rows, patch]) : col
    }

    /// `dW_g = col_gᵀ · dy_g` for each group from the patch matrix (`dw` overwritten).
    package func gemmWeightGradient(patches: Tensor, _ dy: Tensor, into dw: inout Tensor) {
        patches.withUnsafeBufferPointer { cp in dy.withUnsafeBufferPointer { gp in dw.withUnsafeMutableBufferPointer { d in
            for group in 0..<groups {
                BLAS.sgemm(transA: true, m: groupPatch, n: groupOutChannels, k: rows, a: cp.baseAddress! + group * groupPatch,
                           b: gp.baseAddress! + group * groupOutChannels, c: d.baseAddress! + group * groupOutChannels,
                           lda: patch, ldb: outChannels, ldc: outChannels)
            }
        } } }
    }

    /// `dx = col2im(dy_g · W_gᵀ for each g)`, a cache-sized chunk of images at a time (`dx` overwritten).
    package func gemmInputGradient(_ dy: Tensor, _ w: Tensor, into dx: inout Tensor) {
        let cout = outChannels
        dy.withUnsafeBufferPointer { gp in w.withUnsafeBufferPointer { wp in dx.withUnsafeMutableBufferPointer { d in
            let gb = gp.baseAddress!, wb = wp.baseAddress!, db = d.baseAddress!
            // dcol[rows, patch] = dy · Wᵀ, group g on its column blocks.
            func multiplyTransposed(_ gb: UnsafePointer<Float>, rows: Int, into dcol: UnsafeMutablePointer<Float>) {
                for group in 0..<groups {
                    BLAS.sgemm(transB: true, m: rows, n: groupPatch, k: groupOutChannels, a: gb + group * groupOutChannels,
                               b: wb + group * groupOutChannels, c: dcol + group * groupPatch, lda: cout, ldb: cout, ldc: patch)
                }
            }
            if isPointwise {
                multiplyTransposed(gb, rows: rows, into: db)
                return
            }
            if groups == 1 && inChannels <= Self.narrowInputChannels {
                narrowInputGradient(gb, wb, into: db)
                return
            }
            forEachChunk { images, rowsPerImage in
                var dcol = Tensor(uninitializedShape: [images.count * rowsPerImage, patch])
                dcol.withUnsafeMutableBufferPointer { cp in
                    multiplyTransposed(gb + images.lowerBound * rowsPerImage * cout, rows: images.count * rowsPerImage,
                                       into: cp.baseAddress!)
                    col2im(cp.baseAddress!, db, images: images, firstImage: images.lowerBound)
                }
            }
        } } }
    }

    /// Input channels up to which (one group) `gemmInputGradient` takes `narrowInputGradient`.
    static let narrowInputChannels = 4

    /// `dx` for a convolution on a few input channels (an image): `dcolᵀ = W · dyᵀ`, a row per
    /// kernel position `(ky, kx, ci)` and a column per output pixel, then each row added onto
    /// `dx` shifted by its kernel position — runs along output rows, contiguous for one channel
    /// and stride 1. (`dy · Wᵀ` would have rows of only kh·kw·cin columns, and col2im an add of
    /// cin floats per kernel position and pixel.) Each dx element sums its terms in kernel
    /// position order; a chunk of images at a time (`dx` overwritten).
    func narrowInputGradient(_ dy: UnsafePointer<Float>, _ w: UnsafePointer<Float>, into dx: UnsafeMutablePointer<Float>) {
        let c = inChannels, sw = strideWidth, pixels = outHeight * outWidth
        dx.update(repeating: 0, count: batch * height * width * c)
        let chunk = max(1, (1 << 20) / max(1, pixels * patch * MemoryLayout<Float>.stride))
        var dcolT = Tensor(uninitializedShape: [patch, min(batch, chunk) * pixels])
        dcolT.withUnsafeMutableBufferPointer { tp in
            let t = tp.baseAddress!
            var first = 0
            while first < batch {
                let images = first..<min(batch, first + chunk), columns = images.count * pixels
                BLAS.sgemm(transB: true, m: patch, n: columns, k: outChannels, a: w, b: dy + first * pixels * outChannels,
                           c: t, lda: outChannels, ldb: outChannels, ldc: columns)
                for ky in 0..<kernelHeight {
                    for kx in 0..<kernelWidth {
                        guard let (firstX, lastX) = outputColumns(inside: kx) else { continue }
                        let shift = padLeft - kx
                        for ci in 0..<c {
                            let row = t + ((ky * kernelWidth + kx) * c + ci) * columns
                            for n in images {
                                for oy in 0..<outHeight {
                                    let iy = oy * strideHeight - padTop + ky
                                    if iy < 0 || iy >= height { continue }
                                    let src = row + ((n - first) * outHeight + oy) * outWidth
                                    let dst = dx + ((n * height + iy) * width) * c + ci
                                    if c == 1 && sw == 1 {
                                        let d = dst - shift
                                        for ox in firstX...lastX { d[ox] += src[ox] }
                                    } else {
                                        for ox in firstX...lastX { dst[(ox * sw - shift) * c] += src[ox] }
                                    }
                                }
                            }
                        }
                    }
                }
                first = images.upperBound
            }
        }
    }
}

extension Variable {
    /// The convolution of geometry `g` on the engine's own convolution kernels (`FP32Conv`):
    /// forward without an im2col matrix (bias and activation in the kernels' epilogue);
    /// backward `dW` in place (or from im2col chunks in cache), `dx` as a convolution of `dy`
    /// with the flipped kernel (stride 1; otherwise `dy · Wᵀ` chunk by chunk and col2im). The
    /// forward value and `dW` equal `gemmConv2d`'s bit for bit; nothing beyond `x` is kept.
    func kernelConv2d(weight: Variable, bias: Variable?, geometry g: Conv2DGeometry, activation: Activation) -> Variable {
        let x = value, w = weight.value
        g.check(input: x, kernel: w, bias: bias?.value)
        var y = Tensor(uninitializedShape: [g.batch, g.outHeight, g.outWidth, g.outChannels])
        FP32Conv.forward(g, x, w, bias: bias?.value, activation: activation, into: &y)
        let input = self
        let output = y
        return Variable.result(y, inputs: self, weight, bias) { upstream in
            let dy = activation.backward(upstream, output: output)
            if let bias, bias.requiresGrad { bias.accumulate(dy.columnSums()) }
            input.kernelConv2dBackward(dy, weight: weight, geometry: g)
        }
    }

    /// `dW` and `dx` of a convolution on the kernels for the gradient `dy` of its output
    /// (before any activation).
    func kernelConv2dBackward(_ dy: Tensor, weight: Variable, geometry g: Conv2DGeometry) {
        let x = value, w = weight.value
        if weight.requiresGrad {
            var dw = Tensor(uninitializedShape: w.shape)
            FP32Conv.weightGradient(g, x, dy, into: &dw)
            weight.accumulate(dw)
        }
        guard requiresGrad else { return }
        var dx = Tensor(uninitializedShape: x.shape)
        if FP32Conv.computesInputGradient(g) {
            FP32Conv.inputGradient(g, dy, w, into: &dx)
        } else {
            g.gemmInputGradient(dy, w, into: &dx)
        }
        accumulate(dx)
    }
}

extension Variable {
    /// Whether `conv2dMaxPool` runs for `g`: the FP32 convolution kernels take the geometry
    /// (AVX-512/AVX2 paths), the output has at least 2×2 positions, and a recorded (training)
    /// pass has no activation before the pool.
    package static func conv2dMaxPoolRuns(_ g: Conv2DGeometry, activation: Activation, recording: Bool) -> Bool {
        FP32Conv.runs(g) && g.outHeight >= 2 && g.outWidth >= 2 && !(recording && activation != .identity)
    }

    /// `maxPool2d(size: 2, stride: 2, relu: poolReLU)` of this convolution (bias and
    /// `activation` included) as one op, bit for bit the two ops one after the other:
    ///
    /// - inference: the kernels pool each block of output rows while it is in cache, so the
    ///   full-size output never exists;
    /// - training (`activation` identity — the ReLU of conv → ReLU → pool is the pool's): the
    ///   same, recording for each pooled value which window position takes its gradient (what
    ///   the pool's backward would find again from the full-size output), so the backward
    ///   writes the convolution's output gradient from the pooled one, with the bias gradient
    ///   summed on the way.
    ///
    /// Nil where the fusion does not run (`conv2dMaxPoolRuns`): the caller runs the two ops.
    public func conv2dMaxPool(weight: Variable, bias: Variable?, strideHeight: Int = 1, strideWidth: Int = 1,
                              pads: Padding2D, groups: Int = 1, activation: Activation, poolReLU: Bool) -> Variable? {
        let g = Conv2DGeometry(input: value.shape, kernel: weight.shape, strideHeight: strideHeight, strideWidth: strideWidth,
                               pads: pads, groups: groups)
        let recording = Variable.tape(of: self, weight, bias) != nil
        guard Self.conv2dMaxPoolRuns(g, activation: activation, recording: recording) else { return nil }
        g.check(input: value, kernel: weight.value, bias: bias?.value)
        let pooledShape = [g.batch, g.outHeight / 2, g.outWidth / 2, g.outChannels]
        var y = Tensor(uninitializedShape: pooledShape)
        let floor: Float = poolReLU ? 0 : -.infinity
        guard recording else {
            FP32Conv.forward(g, value, weight.value, bias: bias?.value, activation: activation, poolFloor: floor, into: &y)
            return Variable(y)
        }
        var winners = [UInt8](repeating: 0, count: y.count)
        FP32Conv.forward(g, value, weight.value, bias: bias?.value, poolFloor: floor, winners: &winners, into: &y)
        let input = self
        return Variable.result(y, inputs: self, weight, bias) { upstream in
            var dz = Tensor(uninitializedShape: [g.batch, g.outHeight, g.outWidth, g.outChannels])
            let sums = FP32Conv.unpool(upstream, winners: winners, into: &dz, columnSums: bias?.requiresGrad == true)
            if let bias, let sums { bias.accumulate(sums) }
            input.kernelConv2dBackward(dz, weight: weight, geometry: g)
        }
    }
}
