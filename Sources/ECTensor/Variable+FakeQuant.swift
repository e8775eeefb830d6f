import CKernels
import Foundation

extension Variable {
    /// LSQ fake quantization (Esser et al., "Learned Step Size Quantization", ICLR 2020):
    /// quantize and dequantize in one step, with gradients for the values and the step size.
    ///
    /// Forward, element-wise with `x = v/s`: `v̂ = level(x)·s`, `level(x) = round(clip(x, −Qn, Qp))`
    /// rounding half to even (binary grid: the sign; see `QuantRange.level(_:)`).
    ///
    /// Backward (eq. 3, the straight-through estimator for `round`):
    /// - `∂L/∂v = ∂L/∂v̂` where `−Qn ≤ x ≤ Qp` (bounds included), else 0;
    /// - `∂L/∂s = g · Σ ∂L/∂v̂ · ∂v̂/∂s` over the elements sharing `s`, with
    ///   `∂v̂/∂s = level(x) − x` inside the range, `−Qn` below it and `Qp` above it
    ///   (the level in both cases: `∂v̂/∂s = level(x) − (inside ? x : 0)`);
    /// - `g = gradScale ?? 1/√(N·Qp)` (eq. 4–5), N the number of elements sharing `s`, which puts
    ///   the step's update on the scale of the weights' updates. When this pass holds part of a
    ///   batch that several passes share (thread replicas, ranks), `globalCount` is the element
    ///   count of the whole batch's tensor and N is counted from it, so that the passes' summed
    ///   gradient is the one pass over the whole batch would give.
    ///
    /// Shapes: `stepSize` is `[]` or `[1]` (one step; `channelAxisSize` nil), or `[C]` with
    /// `channelAxisSize == C == shape.last` (per output channel: element `e` uses `s[e % C]`, the
    /// last axis of HWIO conv kernels and `[in, out]` dense kernels). Every step must be positive
    /// and finite (the quantizer keeps them so; a precondition here).
    ///
    /// `∂L/∂s` is summed in Double over blocks fixed by the shape, not by the thread count, so it
    /// is bit-identical whatever the number of workers.
    public func fakeQuantLSQ(stepSize: Variable, range: QuantRange, channelAxisSize: Int? = nil,
                             gradScale: Float? = nil, globalCount: Int? = nil) -> Variable {
        let v = value, s = stepSize.value
        let layout = FakeQuantLayout(valueShape: v.shape, stepShape: s.shape, channelAxisSize: channelAxisSize)
        s.withUnsafeBufferPointer { sp in
            for (c, step) in sp.enumerated() {
                precondition(step > 0 && step.isFinite, "fakeQuantLSQ: step size \(c) is \(step), must be positive and finite")
            }
        }
        let steps = layout.laneSteps(s)
        var y = Tensor(uninitializedShape: v.shape)
        v.withUnsafeBufferPointer { vp in steps.withUnsafeBufferPointer { sp in y.withUnsafeMutableBufferPointer { yp in
            let kernel = FakeQuantKernel(values: vp.baseAddress!, laneSteps: sp.baseAddress!, range: range, width: layout.width)
            let out = yp.baseAddress!
            Parallel.forEach(layout.rows, costPerItem: layout.width) { kernel.forward(rows: $0, lanes: layout.width, into: out) }
            kernel.forward(rows: layout.tailRow, lanes: layout.tail, into: out)
        } } }

        let input = self
        return Variable.result(y, inputs: self, stepSize) { dy in
            // One pass computes both gradients, even when only one is needed.
            var dv = Tensor(uninitializedShape: v.shape)
            var sums = [Double](repeating: 0, count: (layout.blocks + 1) * layout.width)  // per block, then the tail
            v.withUnsafeBufferPointer { vp in steps.withUnsafeBufferPointer { sp in dy.withUnsafeBufferPointer { gp in
                dv.withUnsafeMutableBufferPointer { dp in sums.withUnsafeMutableBufferPointer { sums in
                    let kernel = FakeQuantKernel(values: vp.baseAddress!, laneSteps: sp.baseAddress!, range: range,
                                                 width: layout.width)
                    let g = gp.baseAddress!, d = dp.baseAddress!, acc = sums.baseAddress!
                    Parallel.forEach(layout.blocks, costPerItem: max(1, v.count / layout.blocks)) { blocks in
                        for b in blocks {
                            kernel.backward(rows: layout.rowRange(ofBlock: b), lanes: layout.width, outputGrad: g,
                                            inputGrad: d, stepSums: acc + b * layout.width)
                        }
                    }
                    kernel.backward(rows: layout.tailRow, lanes: layout.tail, outputGrad: g, inputGrad: d,
                                    stepSums: acc + layout.blocks * layout.width)
                } }
            } } }
            if input.requiresGrad { input.accumulate(dv) }
            guard stepSize.requiresGrad else { return }

            var lanes = [Double](repeating: 0, count: layout.width)
            for b in 0...layout.blocks {
                for j in 0..<layout.width { lanes[j] += sums[b * layout.width + j] }
            }
            let perStep = v.count / layout.channels
            let sharing = (globalCount ?? v.count) / layout.channels
            let scale = gradScale.map(Double.init) ?? 1 / (Double(sharing) * Double(range.qp)).squareRoot()
            let ds: [Float] = perStep == 0 ? Array(repeating: 0, count: layout.channels)
                : layout.channels == 1 ? [Float(scale * lanes.reduce(0, +))] : lanes.map { Float(scale * $0) }
            stepSize.accumulate(Tensor(shape: s.shape, scalars: ds))
        }
    }
}

extension QuantRange {
    /// The integer level of a scaled value `x = v/s`: `round(clip(x, −Qn, Qp))`, rounding half
    /// to even (0.5 → 0, 1.5 → 2, 2.5 → 2, −0.5 → 0, −1.5 → −2) as `torch.round`, `tf.round` and
    /// the LSQ reference code do; never −0. Binary grid: `x ≥ 0 ? +1 : −1`. NaN stays NaN.
    ///
    /// Rounding adds and subtracts `1.5·2²³`: after clipping |x| ≤ 255 < 2²², where the sum's
    /// Float rounding (nearest, ties to even) lands on an integer. Unlike
    /// `rounded(.toNearestOrEven)` (a `rintf` call per element on baseline x86-64) it vectorizes.
    /// Inlinable: the int8 path's quantization loops in other modules vectorize it too.
    @inlinable
    public func level(_ x: Float) -> Float {
        isBinary ? QuantRange.binaryLevel(x) : QuantRange.roundedLevel(x, lowest: -qn, highest: qp)
    }

    @inlinable @inline(__always)
    static func binaryLevel(_ x: Float) -> Float {
        let sign: Float = x >= 0 ? 1 : -1
        return x.isNaN ? x : sign  // two flat selects: vectorizes, unlike a nested ternary
    }

    @inlinable @inline(__always)
    static func roundedLevel(_ x: Float, lowest: Float, highest: Float) -> Float {
        let magic: Float = 12_582_912  // 1.5·2²³
        return (min(max(x, lowest), highest) + magic) - magic
    }
}

extension Tensor {
    /// LSQ's initial step size `s = 2·mean(|v|)/√Qp` (Esser et al. 2020, §2.1), over the whole
    /// tensor (shape `[1]`) or per channel of the last axis (`channelAxisSize == shape.last`,
    /// shape `[C]`), accumulated in Double. A tensor or channel of zeros (a pruned one) gets
    /// the smallest normal Float: a positive step that keeps its zeros exact.
    public func lsqInitialStepSize(range: QuantRange, channelAxisSize: Int? = nil) -> Tensor {
        let channels = channelAxisSize ?? 1
        if let c = channelAxisSize {
            precondition(c >= 1 && shape.last == c,
                         "lsqInitialStepSize: channelAxisSize \(c) must equal the last axis of \(shape)")
        }
        let rows = count / channels
        var sums = [Double](repeating: 0, count: channels)
        withUnsafeBufferPointer { p in
            for r in 0..<rows {
                let o = r * channels
                for j in 0..<channels { sums[j] += Double(abs(p[o + j])) }
            }
        }
        let root = Double(range.qp).squareRoot()
        let steps = sums.map { sum -> Float in
            let step = Float(2 * (sum / Double(rows)) / root)
            return step > 0 && step.isFinite ? step : .leastNormalMagnitude
        }
        return Tensor(shape: [channels], scalars: steps)
    }
}

/// How `fakeQuantLSQ` walks a tensor: full rows of `width` lanes, lane j using step `laneSteps[j]`,
/// then one tail row of `tail < width` elements. Per channel a row is one position (`width = C`,
/// no tail); per tensor the flat elements are cut into rows of 16 lanes all using s, so that
/// the step-size sums, one per lane, vectorize as the per-channel ones do. The rows are split
/// into at most 16 blocks of ≥ 16K elements, a partition fixed by the shape alone.
struct FakeQuantLayout {
    static let perTensorWidth = 16
    let channels: Int
    let width: Int
    let rows: Int
    let tail: Int
    let blocks: Int

    init(valueShape: [Int], stepShape: [Int], channelAxisSize: Int?) {
        let count = Tensor.elementCount(valueShape)
        if let c = channelAxisSize {
            precondition(c >= 1 && stepShape == [c] && valueShape.last == c,
                         "fakeQuantLSQ: per-channel step sizes \(stepShape) with channelAxisSize \(c) do not fit values \(valueShape) (need [C] and last axis C)")
            channels = c
            width = c
        } else {
            precondition(stepShape == [] || stepShape == [1],
                         "fakeQuantLSQ: per-tensor step size must have shape [] or [1], got \(stepShape)")
            channels = 1
            width = FakeQuantLayout.perTensorWidth
        }
        rows = count / width
        tail = count - rows * width
        blocks = max(1, min(rows, 16, count / (1 << 14)))
    }

    /// `s` itself per channel, `width` copies of s per tensor.
    func laneSteps(_ s: Tensor) -> Tensor {
        channels == width ? s : Tensor(shape: [width], repeating: s.scalarValue)
    }

    func rowRange(ofBlock b: Int) -> Range<Int> { (rows * b / blocks)..<(rows * (b + 1) / blocks) }

    /// The row holding the tail (empty when there is none).
    var tailRow: Range<Int> { rows..<(tail > 0 ? rows + 1 : rows) }
}

/// The loops of `fakeQuantLSQ` over rows of `width` lanes, on the C kernels
/// (`Sources/CKernels/fake_quant.c`) of the active FP32 path: AVX-512 and AVX2 (16 and 8 lanes
/// at a time) or portable C, which all compute the same Float operations in the same order, so
/// every path gives the same bits (`FakeQuantKernelTests`). The OpenBLAS path takes the
/// portable loops.
struct FakeQuantKernel {
    let values: UnsafePointer<Float>
    let laneSteps: UnsafePointer<Float>
    let range: QuantRange
    let width: Int
    var path: Int32 = FakeQuantKernel.path(FP32Kernels.active)

    /// The C family for `path` (portable for OpenBLAS).
    static func path(_ path: FP32Kernels.Path) -> Int32 { path.kernel ?? Int32(EC_SGEMM_PORTABLE) }

    /// `y = level(v/s)·s` for the first `lanes` lanes of `rows`.
    func forward(rows: Range<Int>, lanes: Int, into y: UnsafeMutablePointer<Float>) {
        ec_fake_quant_forward(path, values, laneSteps, width, lanes, rows.lowerBound, rows.upperBound, -range.qn, range.qp,
                              range.isBinary ? 1 : 0, y)
    }

    /// The straight-through `dv` and, added into `stepSums[j]` per lane, `Σ dŷ·∂v̂/∂s` (unscaled).
    func backward(rows: Range<Int>, lanes: Int, outputGrad: UnsafePointer<Float>, inputGrad: UnsafeMutablePointer<Float>,
                  stepSums: UnsafeMutablePointer<Double>) {
        ec_fake_quant_backward(path, values, laneSteps, outputGrad, width, lanes, rows.lowerBound, rows.upperBound,
                               -range.qn, range.qp, range.isBinary ? 1 : 0, inputGrad, stepSums)
    }
}
