import ECNN
import ECTensor

/// One quantized Conv2D / Dense layer in integer form: int8 weight codes with their step
/// size(s), the input activation's step size and grid, the FP32 bias.
///
/// Forward (`Int8Model`): the input is quantized to 8-bit codes `q_x = level(x/s_a)` (UInt8
/// for an unsigned grid, Int8 for a signed one), multiplied with `q_w` in Int32
/// (`Int8GEMM`), and dequantized `y[·, c] = acc·(s_a·s_w[c]) + bias[c]`, then the fused ReLU.
/// Since LSQ's fake-quantized operands are exactly `q_x·s_a` and `q_w·s_w`, this is the
/// fake-quant model's product up to the Float rounding of its sums.
public struct Int8Layer: Equatable, Sendable {
    /// The layer's scope (`conv1`).
    public let name: String
    /// `Conv2D` or `MatMul`.
    public let opType: String
    /// The kernel's shape: HWIO `[kh, kw, cin, cout]` or `[in, out]`.
    public let weightShape: [Int]
    /// `q_w = level(w/s_w)`, row-major in `weightShape`, each in `[−Qn, Qp]` of `weightRange`.
    public let weights: [Int8]
    /// `s_w`: one step (`[1]`), or one per output channel (`[C]`, the kernel's last axis).
    public let weightScale: [Float]
    public let weightRange: QuantRange
    /// `s_a`, the input activation's step.
    public let inputScale: Float
    public let inputRange: QuantRange
    /// The FP32 bias `[C]`, if the layer has one.
    public let bias: [Float]?
    /// With `post_quant`: the output's step and grid (fake-quantized after the ReLU).
    public let output: (scale: Float, range: QuantRange)?
    /// `q_w` transposed to `[C, kPadded]` Int16 rows for `Int8GEMM`.
    let packed: [Int16]
    /// The same weights packed for the VNNI kernel, when this CPU has it.
    let vnniWeights: Int8GEMM.VNNIWeights?

    /// - Precondition: shapes agree (`weights.count` = product of `weightShape`, `weightScale`
    ///   of count 1 or C, `bias` of count C), steps are positive, codes lie in the grids, and
    ///   the input grid has at most 8 bits.
    public init(name: String, opType: String, weightShape: [Int], weights: [Int8], weightScale: [Float],
                weightRange: QuantRange, inputScale: Float, inputRange: QuantRange, bias: [Float]?,
                output: (scale: Float, range: QuantRange)? = nil) {
        let c = weightShape.last ?? 0
        precondition(weights.count == Tensor.elementCount(weightShape) && c > 0,
                     "\(name): \(weights.count) weight codes do not fit shape \(weightShape)")
        precondition(weightScale.count == 1 || weightScale.count == c, "\(name): \(weightScale.count) weight scales for \(c) channels")
        precondition(bias.map { $0.count == c } ?? true, "\(name): bias of \(bias?.count ?? 0) for \(c) channels")
        precondition((weightScale + [inputScale]).allSatisfy { $0 > 0 && $0.isFinite }, "\(name): steps must be positive and finite")
        precondition(weights.allSatisfy { Float($0) >= -weightRange.qn && Float($0) <= weightRange.qp },
                     "\(name): weight codes outside \(weightRange)")
        self.name = name
        self.opType = opType
        self.weightShape = weightShape
        self.weights = weights
        self.weightScale = weightScale
        self.weightRange = weightRange
        self.inputScale = inputScale
        self.inputRange = inputRange
        self.bias = bias
        self.output = output
        let k = weights.count / c, kp = Int8GEMM.padded(k)
        var packed = [Int16](repeating: 0, count: c * kp)
        for r in 0..<k {
            for j in 0..<c { packed[j * kp + r] = Int16(weights[r * c + j]) }
        }
        self.packed = packed
        vnniWeights = Int8GEMM.vnni ? Int8GEMM.packVNNI(packed, n: c, kp: kp) : nil
    }

    public static func == (a: Int8Layer, b: Int8Layer) -> Bool {
        a.name == b.name && a.opType == b.opType && a.weightShape == b.weightShape && a.weights == b.weights
            && a.weightScale == b.weightScale && a.weightRange == b.weightRange && a.inputScale == b.inputScale
            && a.inputRange == b.inputRange && a.bias == b.bias
            && a.output?.scale == b.output?.scale && a.output?.range == b.output?.range
    }

    /// The codes `level(w/s_w)` of a float kernel (per tensor, or per channel of its last axis).
    public static func quantizeWeights(_ w: Tensor, scale: [Float], range: QuantRange) -> [Int8] {
        let c = w.shape.last ?? 1
        return w.withUnsafeBufferPointer { p in
            p.indices.map { Int8(range.level(p[$0] / scale[scale.count == 1 ? 0 : $0 % c])) }
        }
    }

    /// `q_w·s_w`: the fake-quantized kernel these codes stand for.
    public var dequantizedWeights: Tensor {
        let c = weightShape.last!
        return Tensor(shape: weightShape, scalars: weights.indices.map {
            Float(weights[$0]) * weightScale[weightScale.count == 1 ? 0 : $0 % c]
        })
    }

    /// The layer's output for `x` (`[N, H, W, cin]` for Conv2D, `[N, in]` for MatMul), with
    /// `relu` applied, then — for a Conv2D followed by max pooling — pooled with `pool`;
    /// processed in chunks of `chunkImages` images, each through every stage while in cache.
    ///
    /// The pooling runs on the Int32 sums, before dequantization, on a quarter of the values
    /// for 2×2 pooling. It is exact: dequantization (`acc·s_a·s_w[c] + b[c]` with a positive
    /// scale), ReLU and the post-quant rounding are non-decreasing per channel, so they commute
    /// with the max — the result is bit for bit that of pooling the dequantized output.
    func forward(_ x: Tensor, stride: Int, padding: Padding, relu: Bool, pool: (size: Int, stride: Int)? = nil,
                 chunkImages: Int = 8) -> Tensor {
        forward(x, geometry: { Conv2DGeometry(input: $0, kernel: weightShape, stride: stride, padding: padding) }, relu: relu,
                pool: pool, chunkImages: chunkImages)
    }

    /// `forward` for a convolution of any geometry (explicit pads, a stride per axis; one group).
    func forward(_ x: Tensor, geometry: ([Int]) -> Conv2DGeometry, relu: Bool, pool: (size: Int, stride: Int)? = nil,
                 chunkImages: Int = 8) -> Tensor {
        let codes = Int8GEMM.quantize(x, step: inputScale, range: inputRange)
        let c = weightShape.last!, signed = inputRange.signed
        if opType == "MatMul" {
            precondition(x.rank == 2 && x.shape[1] == weightShape[0], "\(name): input \(x.shape) does not fit kernel \(weightShape)")
            let rows = x.shape[0]
            var acc = [Int32](repeating: 0, count: rows * c)
            acc.withUnsafeMutableBufferPointer { out in
                if vnniWeights != nil {
                    multiply(Int8GEMM.packRowsBytes(codes, rows: rows, k: weightShape[0], signed: signed), rows: rows, into: out.baseAddress!)
                } else {
                    multiply(Int8GEMM.packRows(codes, rows: rows, k: weightShape[0], signed: signed), rows: rows, into: out.baseAddress!)
                }
            }
            return dequantize(acc, shape: [rows, c], relu: relu)
        }
        let g = geometry(x.shape)
        precondition(g.groups == 1, "\(name): the integer kernel runs one group, the convolution has \(g.groups)")
        let pixels = g.outHeight * g.outWidth
        let pooledGeometry = pool.map { (size: $0.size, stride: $0.stride,
                                         height: (g.outHeight - $0.size) / $0.stride + 1, width: (g.outWidth - $0.size) / $0.stride + 1) }
        if let p = pooledGeometry {
            precondition(g.outHeight >= p.size && g.outWidth >= p.size, "\(name): \(g.outHeight)×\(g.outWidth) output is smaller than the pool")
        }
        let outPixels = pooledGeometry.map { $0.height * $0.width } ?? pixels
        var y = Tensor(uninitializedShape: [g.batch, pooledGeometry?.height ?? g.outHeight, pooledGeometry?.width ?? g.outWidth, c])
        let chunk = min(chunkImages, g.batch)
        // One chunk of images at a time, each through every stage while it is in cache; the
        // sums' buffers are reused from chunk to chunk.
        var acc = [Int32](unsafeUninitializedCapacity: chunk * pixels * c) { _, n in n = chunk * pixels * c }
        var pooled = [Int32](unsafeUninitializedCapacity: pooledGeometry == nil ? 0 : chunk * outPixels * c) { _, n in
            n = pooledGeometry == nil ? 0 : chunk * outPixels * c
        }
        y.withUnsafeMutableBufferPointer { yp in acc.withUnsafeMutableBufferPointer { ap in pooled.withUnsafeMutableBufferPointer { pp in
            var first = 0
            while first < g.batch {
                let images = first..<min(g.batch, first + chunk)
                if vnniWeights != nil {
                    multiply(Int8GEMM.im2colBytes(codes, signed: signed, geometry: g, images: images), rows: images.count * pixels,
                             into: ap.baseAddress!)
                } else {
                    multiply(Int8GEMM.im2col(codes, signed: signed, geometry: g, images: images), rows: images.count * pixels,
                             into: ap.baseAddress!)
                }
                var sums = UnsafeBufferPointer(start: ap.baseAddress!, count: images.count * pixels * c)
                if let p = pooledGeometry {
                    Self.maxPool(sums, images: images.count, height: g.outHeight, width: g.outWidth, channels: c,
                                 size: p.size, stride: p.stride, into: pp.baseAddress!)
                    sums = UnsafeBufferPointer(start: pp.baseAddress!, count: images.count * outPixels * c)
                }
                dequantize(sums, relu: relu, into: yp.baseAddress! + first * outPixels * c)
                first = images.upperBound
            }
        } } }
        return y
    }

    /// Max pooling (`valid`) of NHWC Int32 sums `[images, height, width, channels]` into `out`.
    static func maxPool(_ a: UnsafeBufferPointer<Int32>, images n: Int, height h: Int, width w: Int, channels c: Int,
                        size: Int, stride: Int, into o: UnsafeMutablePointer<Int32>) {
        let oh = (h - size) / stride + 1, ow = (w - size) / stride + 1
        Parallel.forEach(n * oh, costPerItem: ow * c * size * size) { range in
            for item in range {
                let img = item / oh, oy = item % oh
                if size == 2 && stride == 2 && c % 16 == 0 {  // the common case, 16 lanes at a time
                    for ox in 0..<ow {
                        let dst = ((img * oh + oy) * ow + ox) * c
                        let r0 = ((img * h + 2 * oy) * w + 2 * ox) * c, r1 = r0 + w * c
                        var ch = 0
                        while ch < c {
                            let m0 = max16(load16(a, r0 + ch), load16(a, r0 + c + ch))
                            let m1 = max16(load16(a, r1 + ch), load16(a, r1 + c + ch))
                            UnsafeMutableRawPointer(o + dst + ch).storeBytes(of: max16(m0, m1), as: SIMD16<Int32>.self)
                            ch += 16
                        }
                    }
                    continue
                }
                for ox in 0..<ow {
                    let dst = ((img * oh + oy) * ow + ox) * c
                    for ch in 0..<c { o[dst + ch] = .min }
                    for ky in 0..<size {
                        for kx in 0..<size {
                            let src = ((img * h + oy * stride + ky) * w + ox * stride + kx) * c
                            for ch in 0..<c { o[dst + ch] = max(o[dst + ch], a[src + ch]) }
                        }
                    }
                }
            }
        }
    }

    /// Lane-wise max, written out so it inlines (the generic `pointwiseMax` did not).
    @inline(__always)
    private static func max16(_ x: SIMD16<Int32>, _ y: SIMD16<Int32>) -> SIMD16<Int32> { x.replacing(with: y, where: y .> x) }

    @inline(__always)
    private static func load16(_ p: UnsafeBufferPointer<Int32>, _ i: Int) -> SIMD16<Int32> {
        UnsafeRawPointer(p.baseAddress! + i).loadUnaligned(as: SIMD16<Int32>.self)
    }

    /// The VNNI kernel on rows in its byte form.
    private func multiply(_ a: [UInt8], rows: Int, into c: UnsafeMutablePointer<Int32>) {
        a.withUnsafeBufferPointer {
            Int8GEMM.multiplyVNNI(bytes: $0.baseAddress!, rows: rows, signed: inputRange.signed, weights: vnniWeights!, into: c)
        }
    }

    /// The portable kernel (no VNNI on this CPU).
    private func multiply(_ a: [Int16], rows: Int, into c: UnsafeMutablePointer<Int32>) {
        a.withUnsafeBufferPointer { ap in packed.withUnsafeBufferPointer { bp in
            Int8GEMM.multiply(a: ap.baseAddress!, rows: rows, b: bp.baseAddress!, n: weightShape.last!,
                              kPadded: Int8GEMM.padded(weights.count / weightShape.last!), into: c)
        } }
    }

    /// `y = acc·(s_a·s_w[c]) + bias[c]`, then ReLU and the post-quant output grid.
    private func dequantize(_ acc: [Int32], shape: [Int], relu: Bool) -> Tensor {
        var y = Tensor(uninitializedShape: shape)
        y.withUnsafeMutableBufferPointer { yp in acc.withUnsafeBufferPointer { dequantize($0, relu: relu, into: yp.baseAddress!) } }
        return y
    }

    /// `dequantize` of the sums `acc` (rows of C channels) into `y`.
    private func dequantize(_ acc: UnsafeBufferPointer<Int32>, relu: Bool, into y: UnsafeMutablePointer<Float>) {
        let c = weightShape.last!
        let scale = (0..<c).map { inputScale * weightScale[weightScale.count == 1 ? 0 : $0] }
        let b = bias ?? [Float](repeating: 0, count: c)
        let floor: Float = relu ? 0 : -.infinity
        scale.withUnsafeBufferPointer { sp in b.withUnsafeBufferPointer { bp in
            // Row by row (one output pixel or sample): no division per element, vectorised.
            for r in 0..<(acc.count / c) {
                let o = r * c
                for j in 0..<c { y[o + j] = max(Float(acc[o + j]) * sp[j] + bp[j], floor) }
            }
        } }
        if let output {
            for i in 0..<acc.count { y[i] = output.range.level(y[i] / output.scale) * output.scale }
        }
    }
}
