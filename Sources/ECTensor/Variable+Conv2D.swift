/// Convolution padding, as in TensorFlow.
public enum Padding: String, Codable, Sendable {
    /// Output size `ceil(in / stride)`; zero padding split with the extra row/column at the end.
    case same
    /// No padding; output size `floor((in − k) / stride) + 1`.
    case valid
}

/// The geometry of one 2-D convolution over NHWC input with an HWIO kernel.
public struct Conv2DGeometry: Equatable, Sendable {
    public let batch, height, width, inChannels: Int
    public let kernelHeight, kernelWidth, outChannels, stride: Int
    public let outHeight, outWidth, padTop, padLeft: Int

    public init(input: [Int], kernel: [Int], stride: Int, padding: Padding) {
        precondition(input.count == 4 && kernel.count == 4, "conv2d: input \(input) must be NHWC and kernel \(kernel) HWIO")
        precondition(input[3] == kernel[2], "conv2d: input has \(input[3]) channels, kernel expects \(kernel[2])")
        precondition(stride > 0, "conv2d: stride must be > 0, got \(stride)")
        batch = input[0]; height = input[1]; width = input[2]; inChannels = input[3]
        kernelHeight = kernel[0]; kernelWidth = kernel[1]; outChannels = kernel[3]
        self.stride = stride
        switch padding {
        case .same:
            outHeight = (height + stride - 1) / stride
            outWidth = (width + stride - 1) / stride
            padTop = max((outHeight - 1) * stride + kernelHeight - height, 0) / 2
            padLeft = max((outWidth - 1) * stride + kernelWidth - width, 0) / 2
        case .valid:
            precondition(height >= kernelHeight && width >= kernelWidth,
                         "conv2d: valid padding needs input \(height)×\(width) ≥ kernel \(kernelHeight)×\(kernelWidth)")
            outHeight = (height - kernelHeight) / stride + 1
            outWidth = (width - kernelWidth) / stride + 1
            padTop = 0; padLeft = 0
        }
    }

    /// Rows of the im2col matrix (one per output pixel).
    public var rows: Int { batch * outHeight * outWidth }
    /// Columns of the im2col matrix (`kh·kw·cin`), the GEMM's inner dimension.
    public var patch: Int { kernelHeight * kernelWidth * inChannels }
    /// Whether the input itself is the im2col matrix (1×1 kernel, stride 1, no padding).
    public var isPointwise: Bool { kernelHeight == 1 && kernelWidth == 1 && stride == 1 }
    /// Multiply-adds of the forward pass.
    public var multiplyAdds: Int { rows * patch * outChannels }

    /// Writes the rows of the im2col matrix `[rows, patch]` of `x` that belong to `images`
    /// into `col` (zero where padded).
    func im2col(_ x: UnsafePointer<Float>, _ col: UnsafeMutablePointer<Float>, images: Range<Int>) {
        let c = inChannels, kw = kernelWidth
        for n in images {
            let image = x + n * height * width * c
            for oy in 0..<outHeight {
                for ox in 0..<outWidth {
                    var dst = col + ((n * outHeight + oy) * outWidth + ox) * patch
                    let iy0 = oy * stride - padTop, ix0 = ox * stride - padLeft
                    for ky in 0..<kernelHeight {
                        let iy = iy0 + ky
                        if iy < 0 || iy >= height {
                            dst.update(repeating: 0, count: kw * c)
                            dst += kw * c
                            continue
                        }
                        let rowBase = image + iy * width * c
                        if ix0 >= 0 && ix0 + kw <= width {
                            // The whole kernel row is inside: one contiguous copy of kw·c floats.
                            dst.update(from: rowBase + ix0 * c, count: kw * c)
                            dst += kw * c
                        } else {
                            for kx in 0..<kw {
                                let ix = ix0 + kx
                                if ix < 0 || ix >= width {
                                    dst.update(repeating: 0, count: c)
                                } else {
                                    dst.update(from: rowBase + ix * c, count: c)
                                }
                                dst += c
                            }
                        }
                    }
                }
            }
        }
    }

    /// Sums the im2col-shaped gradient `dcol` back onto the input gradient `dx` for the given
    /// images (their part of `dx` is zeroed first).
    func col2im(_ dcol: UnsafePointer<Float>, _ dx: UnsafeMutablePointer<Float>, images: Range<Int>) {
        let c = inChannels
        (dx + images.lowerBound * height * width * c).update(repeating: 0, count: images.count * height * width * c)
        for n in images {
            let image = dx + n * height * width * c
            for oy in 0..<outHeight {
                for ox in 0..<outWidth {
                    var src = dcol + ((n * outHeight + oy) * outWidth + ox) * patch
                    let iy0 = oy * stride - padTop, ix0 = ox * stride - padLeft
                    for ky in 0..<kernelHeight {
                        let iy = iy0 + ky
                        if iy < 0 || iy >= height { src += kernelWidth * c; continue }
                        let rowBase = image + iy * width * c
                        for kx in 0..<kernelWidth {
                            let ix = ix0 + kx
                            if ix >= 0 && ix < width {
                                let d = rowBase + ix * c
                                for j in 0..<c { d[j] += src[j] }
                            }
                            src += c
                        }
                    }
                }
            }
        }
    }
}

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
        var col: Tensor
        if g.isPointwise {
            col = x.reshaped([g.rows, g.patch])
        } else {
            col = Tensor(uninitializedShape: [g.rows, g.patch])
            x.withUnsafeBufferPointer { xp in col.withUnsafeMutableBufferPointer { cp in
                let xb = xp.baseAddress!, cb = cp.baseAddress!
                Parallel.forEach(g.batch, costPerItem: g.outHeight * g.outWidth * g.patch) { images in
                    g.im2col(xb, cb, images: images)
                }
            } }
        }
        var y = Tensor(uninitializedShape: [g.batch, g.outHeight, g.outWidth, cout])
        y.withUnsafeMutableBufferPointer { yp in
            if let b = bias?.value {
                precondition(b.shape == [cout], "conv2d: bias \(b.shape) does not fit \(cout) channels")
                b.withUnsafeBufferPointer { bp in
                    for r in 0..<g.rows { (yp.baseAddress! + r * cout).update(from: bp.baseAddress!, count: cout) }
                }
            }
            col.withUnsafeBufferPointer { cp in w.withUnsafeBufferPointer { wp in
                BLAS.sgemm(m: g.rows, n: cout, k: g.patch, a: cp.baseAddress!, b: wp.baseAddress!,
                           beta: bias == nil ? 0 : 1, c: yp.baseAddress!)
            } }
        }
        activation.apply(&y)
        let input = self
        let savedCol = (tape != nil || weight.tape != nil) ? col : Tensor(shape: [0])
        let output = y
        return Variable.result(y, inputs: self, weight, bias) { upstream in
            let dy = activation.backward(upstream, output: output)
            if weight.requiresGrad {
                var dw = Tensor(uninitializedShape: w.shape)
                savedCol.withUnsafeBufferPointer { cp in dy.withUnsafeBufferPointer { gp in dw.withUnsafeMutableBufferPointer { d in
                    BLAS.sgemm(transA: true, m: g.patch, n: cout, k: g.rows, a: cp.baseAddress!, b: gp.baseAddress!,
                               c: d.baseAddress!)
                } } }
                weight.accumulate(dw)
            }
            if let bias, bias.requiresGrad { bias.accumulate(dy.columnSums()) }
            if input.requiresGrad {
                var dcol = Tensor(uninitializedShape: [g.rows, g.patch])
                dy.withUnsafeBufferPointer { gp in w.withUnsafeBufferPointer { wp in dcol.withUnsafeMutableBufferPointer { d in
                    BLAS.sgemm(transB: true, m: g.rows, n: g.patch, k: cout, a: gp.baseAddress!, b: wp.baseAddress!,
                               c: d.baseAddress!)
                } } }
                if g.isPointwise {
                    input.accumulate(dcol.reshaped(x.shape))
                } else {
                    var dx = Tensor(uninitializedShape: x.shape)
                    dcol.withUnsafeBufferPointer { cp in dx.withUnsafeMutableBufferPointer { d in
                        let cb = cp.baseAddress!, db = d.baseAddress!
                        Parallel.forEach(g.batch, costPerItem: g.outHeight * g.outWidth * g.patch) { images in
                            g.col2im(cb, db, images: images)
                        }
                    } }
                    input.accumulate(dx)
                }
            }
        }
    }
}
