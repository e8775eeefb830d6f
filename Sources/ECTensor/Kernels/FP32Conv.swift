import CKernels

/// The engine's own FP32 convolution kernels (Sources/CKernels/conv.c) on the GEMM kernels'
/// paths (`FP32Kernels.active`: AVX-512 or AVX2; the portable path and OpenBLAS keep im2col +
/// `BLAS.sgemm`):
///
/// - forward: an implicit GEMM whose micro-kernels read each pixel's window straight from the
///   input (no im2col matrix), starting from the bias and applying ReLU / ReLU6 before the
///   store, optionally 2×2-max-pooling the result (inference; in training also recording each
///   pooled value's winner, from which `unpool` writes the conv output's gradient);
/// - weight gradient: column micro-kernels reading each tile's patch rows in place from the
///   padded image, or im2col a few hundred pixels at a time (in cache) where a window's
///   contiguous run is too short;
/// - input gradient of a stride-1 convolution: the forward kernel on `dy` with the kernel
///   flipped and its channel axes swapped (no `dcol` matrix, no col2im).
///
/// The forward pass and the weight gradient equal im2col + `BLAS.sgemm` on the same path bit
/// for bit (the same chain of fused multiply-adds per element); the input gradient sums the
/// same products in one chain per element (the im2col route: a chain per tap, then adds), so
/// it agrees within the rounding bound the tests derive. No result depends on the thread count.
package enum FP32Conv {
    /// Whether the active FP32 path has these kernels (AVX-512, AVX2).
    package static var isAvailable: Bool { FP32Kernels.active.kernel.map { ec_conv2d_supported($0) != 0 } ?? false }

    /// Tests and benchmarks turn the kernels off to compare with im2col + sgemm on one path.
    package nonisolated(unsafe) static var enabled = true

    /// Whether `g` runs on the kernels (everything but the direct grouped kernel's cases and
    /// pointwise convolutions, which are plain GEMMs already).
    package static func runs(_ g: Conv2DGeometry) -> Bool { enabled && isAvailable && !g.usesDirectKernel && !g.isPointwise }

    static func shape(_ g: Conv2DGeometry) -> ec_conv2d_shape {
        ec_conv2d_shape(batch: g.batch, height: g.height, width: g.width, channels: g.inChannels,
                        kernel_height: g.kernelHeight, kernel_width: g.kernelWidth, out_channels: g.outChannels,
                        groups: g.groups, stride_height: g.strideHeight, stride_width: g.strideWidth,
                        pad_top: g.padTop, pad_bottom: g.padBottom, pad_left: g.padLeft, pad_right: g.padRight,
                        out_height: g.outHeight, out_width: g.outWidth)
    }

    static func code(_ activation: Activation) -> Int32 {
        switch activation {
        case .identity: return Int32(EC_ACT_NONE)
        case .relu: return Int32(EC_ACT_RELU)
        case .relu6: return Int32(EC_ACT_RELU6)
        }
    }

    /// `y = activation(conv(x, w) + bias)` (`y` `[N, OH, OW, Cout]`), or with `poolFloor` that
    /// max-pooled over 2×2 windows with stride 2 (`[N, ⌊OH/2⌋, ⌊OW/2⌋, Cout]`), each pooled value
    /// `max(max(max(z00, z01), max(z10, z11)), poolFloor)` — `maxPool2d(size: 2, stride: 2)`,
    /// with its fused ReLU for a floor of 0. On `Parallel.workers` threads.
    package static func forward(_ g: Conv2DGeometry, _ x: Tensor, _ w: Tensor, bias: Tensor?, activation: Activation,
                                poolFloor: Float? = nil, into y: inout Tensor) {
        var s = shape(g)
        let path = FP32Kernels.active.kernel!, threads = Int32(Parallel.workers), act = code(activation)
        x.withUnsafeBufferPointer { xp in w.withUnsafeBufferPointer { wp in y.withUnsafeMutableBufferPointer { yp in
            func run(_ bias: UnsafePointer<Float>?) {
                if var floor = poolFloor {
                    ec_conv2d_forward(path, threads, &s, xp.baseAddress!, wp.baseAddress!, bias, yp.baseAddress!, act, &floor)
                } else {
                    ec_conv2d_forward(path, threads, &s, xp.baseAddress!, wp.baseAddress!, bias, yp.baseAddress!, act, nil)
                }
            }
            if let bias { bias.withUnsafeBufferPointer { run($0.baseAddress!) } } else { run(nil) }
        } } }
    }

    /// The pooled forward pass of training's conv → (ReLU →) 2×2 max pool (no activation of
    /// the convolution's own), recording each pooled value's winner (`ec_conv2d_forward_pool_winners`).
    package static func forward(_ g: Conv2DGeometry, _ x: Tensor, _ w: Tensor, bias: Tensor?, poolFloor: Float,
                                winners: inout [UInt8], into y: inout Tensor) {
        var s = shape(g)
        let path = FP32Kernels.active.kernel!, threads = Int32(Parallel.workers)
        x.withUnsafeBufferPointer { xp in w.withUnsafeBufferPointer { wp in y.withUnsafeMutableBufferPointer { yp in
            winners.withUnsafeMutableBufferPointer { win in
                func run(_ bias: UnsafePointer<Float>?) {
                    ec_conv2d_forward_pool_winners(path, threads, &s, xp.baseAddress!, wp.baseAddress!, bias, yp.baseAddress!,
                                                   Int32(EC_ACT_NONE), poolFloor, win.baseAddress!)
                }
                if let bias { bias.withUnsafeBufferPointer { run($0.baseAddress!) } } else { run(nil) }
            }
        } } }
    }

    /// The convolution's output gradient `dz` (its shape `[N, H, W, C]`, overwritten) from the
    /// pooled gradient `dy` and the recorded winners; with `columnSums`, also `dz.columnSums()`
    /// (bit for bit), returned.
    package static func unpool(_ dy: Tensor, winners: [UInt8], into dz: inout Tensor, columnSums: Bool) -> Tensor? {
        let (n, h, w, c) = (dz.shape[0], dz.shape[1], dz.shape[2], dz.shape[3])
        var sums: Tensor? = columnSums ? Tensor(uninitializedShape: [c]) : nil
        dy.withUnsafeBufferPointer { gp in dz.withUnsafeMutableBufferPointer { dp in winners.withUnsafeBufferPointer { win in
            if sums != nil {
                sums!.withUnsafeMutableBufferPointer { sp in
                    ec_maxpool2x2_unpool(FP32Kernels.active.kernel!, Int32(Parallel.workers), n, h, w, c, win.baseAddress!, gp.baseAddress!, dp.baseAddress!,
                                         sp.baseAddress!)
                }
            } else {
                ec_maxpool2x2_unpool(FP32Kernels.active.kernel!, Int32(Parallel.workers), n, h, w, c, win.baseAddress!, gp.baseAddress!, dp.baseAddress!, nil)
            }
        } } }
        return sums
    }

    /// `dw = colᵀ · dy` group by group (`dw` overwritten).
    package static func weightGradient(_ g: Conv2DGeometry, _ x: Tensor, _ dy: Tensor, into dw: inout Tensor) {
        var s = shape(g)
        x.withUnsafeBufferPointer { xp in dy.withUnsafeBufferPointer { gp in dw.withUnsafeMutableBufferPointer { d in
            ec_conv2d_weight_gradient(FP32Kernels.active.kernel!, Int32(Parallel.workers), &s, xp.baseAddress!, gp.baseAddress!,
                                      d.baseAddress!)
        } } }
    }

    /// Whether `inputGradient` computes `g`: strides 1, pads smaller than the kernel, and more
    /// than `Conv2DGeometry.narrowInputChannels` input channels per group. `dx` is then a
    /// convolution whose outputs are the input channels, and a vector of output channels per
    /// tile would be mostly empty for 1–4 (an image's input gradient — e.g. to learn its LSQ
    /// step — took 16% of a QAT step); those take `gemmInputGradient`.
    package static func computesInputGradient(_ g: Conv2DGeometry) -> Bool {
        guard g.inChannels / g.groups > Conv2DGeometry.narrowInputChannels else { return false }
        var s = shape(g)
        return ec_conv2d_input_gradient_supported(FP32Kernels.active.kernel!, &s) != 0
    }

    /// The input gradient for the output gradient `dy` (`dx` overwritten).
    package static func inputGradient(_ g: Conv2DGeometry, _ dy: Tensor, _ w: Tensor, into dx: inout Tensor) {
        var s = shape(g)
        dy.withUnsafeBufferPointer { gp in w.withUnsafeBufferPointer { wp in dx.withUnsafeMutableBufferPointer { d in
            ec_conv2d_input_gradient(FP32Kernels.active.kernel!, Int32(Parallel.workers), &s, gp.baseAddress!, wp.baseAddress!,
                                     d.baseAddress!)
        } } }
    }
}

extension FP32Conv {
    /// The backward of `maxPool2d(size: 2, stride: 2, relu:)` on the kernels' vector paths
    /// (`dx` overwritten; the same values as the Swift loop, which runs when this returns false).
    static func maxPool2x2Backward(input x: UnsafePointer<Float>, shape: [Int], pooled: UnsafePointer<Float>,
                                   dy: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>, relu: Bool) -> Bool {
        guard enabled, isAvailable else { return false }
        ec_maxpool2x2_backward(FP32Kernels.active.kernel!, Int32(Parallel.workers), shape[0], shape[1], shape[2], shape[3],
                               x, pooled, dy, dx, relu ? 1 : 0)
        return true
    }
}
