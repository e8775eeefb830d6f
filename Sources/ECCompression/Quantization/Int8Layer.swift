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
    /// processed in chunks of at most `chunkImages` images to bound im2col.
    ///
    /// The pooling runs on the Int32 sums, before dequantization, on a quarter of the values
    /// for 2×2 pooling. It is exact: dequantization (`acc·s_a·s_w[c] + b[c]` with a positive
    /// scale), ReLU and the post-quant rounding are non-decreasing per channel, so they commute
    /// with the max — the result is bit for bit that of pooling the dequantized output.
    func forward(_ x: Tensor, stride: Int, padding: Padding, relu: Bool, pool: (size: Int, stride: Int)? = nil,
                 chunkImages: Int = 64) -> Tensor {
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
        let g = Conv2DGeometry(input: x.shape, kernel: weightShape, stride: stride, padding: padding)
        let pixels = g.outHeight * g.outWidth
        var acc = [Int32](repeating: 0, count: g.batch * pixels * c)
        acc.withUnsafeMutableBufferPointer { out in
            var first = 0
            while first < g.batch {
                let images = first..<min(g.batch, first + chunkImages)
                let into = out.baseAddress! + first * pixels * c
                if vnniWeights != nil {
                    multiply(Int8GEMM.im2colBytes(codes, signed: signed, geometry: g, images: images), rows: images.count * pixels, into: into)
                } else {
                    multiply(Int8GEMM.im2col(codes, signed: signed, geometry: g, images: images), rows: images.count * pixels, into: into)
                }
                first = images.upperBound
            }
        }
        let shape = [g.batch, g.outHeight, g.outWidth, c]
        guard let pool else { return dequantize(acc, shape: shape, relu: relu) }
        let (pooled, pooledShape) = Self.maxPool(acc, shape: shape, size: pool.size, stride: pool.stride)
        return dequantize(pooled, shape: pooledShape, relu: relu)
    }

    /// Max pooling (`valid`) of NHWC Int32 sums.
    static func maxPool(_ acc: [Int32], shape: [Int], size: Int, stride: Int) -> ([Int32], [Int]) {
        let (n, h, w, c) = (shape[0], shape[1], shape[2], shape[3])
        precondition(h >= size && w >= size, "maxPool: \(h)×\(w) is smaller than the \(size)×\(size) window")
        let oh = (h - size) / stride + 1, ow = (w - size) / stride + 1
        var out = [Int32](repeating: .min, count: n * oh * ow * c)
        acc.withUnsafeBufferPointer { a in out.withUnsafeMutableBufferPointer { o in
            Parallel.forEach(n * oh, costPerItem: ow * c * size * size) { range in
                for item in range {
                    let img = item / oh, oy = item % oh
                    if size == 2 && stride == 2 && c % 16 == 0 {  // the common case, 16 lanes at a time
                        for ox in 0..<ow {
                            let dst = ((img * oh + oy) * ow + ox) * c
                            let r0 = ((img * h + 2 * oy) * w + 2 * ox) * c, r1 = r0 + w * c
                            var ch = 0
                            while ch < c {
                                let m0 = pointwiseMax(load16(a, r0 + ch), load16(a, r0 + c + ch))
                                let m1 = pointwiseMax(load16(a, r1 + ch), load16(a, r1 + c + ch))
                                UnsafeMutableRawPointer(o.baseAddress! + dst + ch).storeBytes(of: pointwiseMax(m0, m1),
                                                                                              as: SIMD16<Int32>.self)
                                ch += 16
                            }
                        }
                        continue
                    }
                    for ox in 0..<ow {
                        let dst = ((img * oh + oy) * ow + ox) * c
                        for ky in 0..<size {
                            for kx in 0..<size {
                                let src = ((img * h + oy * stride + ky) * w + ox * stride + kx) * c
                                for ch in 0..<c { o[dst + ch] = max(o[dst + ch], a[src + ch]) }
                            }
                        }
                    }
                }
            }
        } }
        return (out, [n, oh, ow, c])
    }

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
        let c = shape.last!
        let scale = (0..<c).map { inputScale * weightScale[weightScale.count == 1 ? 0 : $0] }
        let b = bias ?? [Float](repeating: 0, count: c)
        var y = Tensor(uninitializedShape: shape)
        let floor: Float = relu ? 0 : -.infinity
        y.withUnsafeMutableBufferPointer { yp in acc.withUnsafeBufferPointer { ap in
            scale.withUnsafeBufferPointer { sp in b.withUnsafeBufferPointer { bp in
                // Row by row (one output pixel or sample): no division per element, vectorised.
                for r in 0..<(yp.count / c) {
                    let o = r * c
                    for j in 0..<c { yp[o + j] = max(Float(ap[o + j]) * sp[j] + bp[j], floor) }
                }
            } }
            if let output {
                for i in yp.indices { yp[i] = output.range.level(yp[i] / output.scale) * output.scale }
            }
        } }
        return y
    }
}
