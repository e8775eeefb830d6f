/// Convolution padding, as in TensorFlow.
public enum Padding: String, Codable, Sendable {
    /// Output size `ceil(in / stride)`; zero padding split with the extra row/column at the end.
    case same
    /// No padding; output size `floor((in − k) / stride) + 1`.
    case valid
}

/// Explicit zero padding of a 2-D window op over NHWC images (ONNX `pads`): rows added above
/// and below, columns added left and right. Each side may differ.
public struct Padding2D: Hashable, Codable, Sendable {
    public var top, bottom, left, right: Int

    public init(top: Int = 0, bottom: Int = 0, left: Int = 0, right: Int = 0) {
        precondition(top >= 0 && bottom >= 0 && left >= 0 && right >= 0,
                     "Padding2D: pads must be ≥ 0, got top \(top) bottom \(bottom) left \(left) right \(right)")
        (self.top, self.bottom, self.left, self.right) = (top, bottom, left, right)
    }

    /// ONNX's 2-D `pads` attribute, ordered `[top, left, bottom, right]` (x1_begin, x2_begin,
    /// x1_end, x2_end).
    public init(onnx pads: [Int]) {
        precondition(pads.count == 4, "Padding2D: ONNX pads of a 2-D op have 4 values, got \(pads)")
        self.init(top: pads[0], bottom: pads[2], left: pads[1], right: pads[3])
    }

    /// No padding.
    public static let zero = Padding2D()

    public var isZero: Bool { top == 0 && bottom == 0 && left == 0 && right == 0 }
}

extension Padding {
    /// The explicit pads that `.same` / `.valid` stand for on a `height × width` image.
    ///
    /// `.same`: `out = ceil(in / s)`, `total = max((out − 1)·s + k − in, 0)`, `top = total / 2`,
    /// `bottom = total − top` (TensorFlow's SAME = ONNX `SAME_UPPER`: the odd row at the end).
    public func explicit(height: Int, width: Int, kernelHeight: Int, kernelWidth: Int,
                         strideHeight: Int, strideWidth: Int) -> Padding2D {
        switch self {
        case .valid:
            return .zero
        case .same:
            func split(_ size: Int, _ k: Int, _ s: Int) -> (Int, Int) {
                let out = (size + s - 1) / s
                let total = max((out - 1) * s + k - size, 0)
                return (total / 2, total - total / 2)
            }
            let (top, bottom) = split(height, kernelHeight, strideHeight)
            let (left, right) = split(width, kernelWidth, strideWidth)
            return Padding2D(top: top, bottom: bottom, left: left, right: right)
        }
    }
}

/// The geometry of one 2-D convolution over NHWC input with an HWIO kernel: strides per axis,
/// explicit (possibly asymmetric) zero padding, and channel groups (dilation 1).
///
/// Groups follow ONNX/PyTorch: the kernel is `[kh, kw, cin/groups, cout]` and group `g` maps
/// input channels `g·cin/groups ..< (g+1)·cin/groups` to output channels
/// `g·cout/groups ..< (g+1)·cout/groups`. Depthwise is `groups == cin`.
public struct Conv2DGeometry: Equatable, Sendable {
    public let batch, height, width, inChannels: Int
    public let kernelHeight, kernelWidth, outChannels: Int
    public let strideHeight, strideWidth: Int
    public let padTop, padBottom, padLeft, padRight: Int
    public let groups: Int
    public let outHeight, outWidth: Int

    /// A convolution with TensorFlow's `.same` / `.valid` padding and one stride for both axes.
    public init(input: [Int], kernel: [Int], stride: Int, padding: Padding, groups: Int = 1) {
        precondition(input.count == 4 && kernel.count == 4, "conv2d: input \(input) must be NHWC and kernel \(kernel) HWIO")
        precondition(stride > 0, "conv2d: stride must be > 0, got \(stride)")
        if padding == .valid {
            precondition(input[1] >= kernel[0] && input[2] >= kernel[1],
                         "conv2d: valid padding needs input \(input[1])×\(input[2]) ≥ kernel \(kernel[0])×\(kernel[1])")
        }
        let pads = padding.explicit(height: input[1], width: input[2], kernelHeight: kernel[0], kernelWidth: kernel[1],
                                    strideHeight: stride, strideWidth: stride)
        self.init(input: input, kernel: kernel, strideHeight: stride, strideWidth: stride, pads: pads, groups: groups)
    }

    /// A convolution with explicit zero padding and a stride per axis:
    /// `out = floor((in + padBefore + padAfter − k) / stride) + 1`.
    public init(input: [Int], kernel: [Int], strideHeight: Int, strideWidth: Int, pads: Padding2D, groups: Int = 1) {
        precondition(input.count == 4 && kernel.count == 4, "conv2d: input \(input) must be NHWC and kernel \(kernel) HWIO")
        precondition(strideHeight > 0 && strideWidth > 0, "conv2d: strides must be > 0, got \(strideHeight)×\(strideWidth)")
        precondition(groups > 0 && input[3] % groups == 0 && kernel[3] % groups == 0,
                     "conv2d: \(groups) groups must divide input channels \(input[3]) and output channels \(kernel[3])")
        precondition(input[3] == kernel[2] * groups,
                     "conv2d: input has \(input[3]) channels, kernel \(kernel) with \(groups) groups expects \(kernel[2] * groups)")
        precondition(kernel[0] > 0 && kernel[1] > 0, "conv2d: empty kernel \(kernel)")
        batch = input[0]; height = input[1]; width = input[2]; inChannels = input[3]
        kernelHeight = kernel[0]; kernelWidth = kernel[1]; outChannels = kernel[3]
        self.strideHeight = strideHeight; self.strideWidth = strideWidth
        padTop = pads.top; padBottom = pads.bottom; padLeft = pads.left; padRight = pads.right
        self.groups = groups
        precondition(height + padTop + padBottom >= kernelHeight && width + padLeft + padRight >= kernelWidth,
                     "conv2d: padded input \(height + padTop + padBottom)×\(width + padLeft + padRight) smaller than kernel \(kernelHeight)×\(kernelWidth)")
        outHeight = (height + padTop + padBottom - kernelHeight) / strideHeight + 1
        outWidth = (width + padLeft + padRight - kernelWidth) / strideWidth + 1
    }

    /// The stride of a geometry with equal strides on both axes (every `.same`/`.valid` one).
    public var stride: Int {
        precondition(strideHeight == strideWidth, "conv2d: strides \(strideHeight)×\(strideWidth) differ")
        return strideHeight
    }

    /// The explicit zero padding.
    public var pads: Padding2D { Padding2D(top: padTop, bottom: padBottom, left: padLeft, right: padRight) }

    /// Input channels per group (the kernel's third dimension).
    public var groupInChannels: Int { inChannels / groups }
    /// Output channels per group.
    public var groupOutChannels: Int { outChannels / groups }
    /// Rows of the im2col matrix (one per output pixel).
    public var rows: Int { batch * outHeight * outWidth }
    /// Columns of the im2col matrix (`kh·kw·cin`), group by group.
    public var patch: Int { kernelHeight * kernelWidth * inChannels }
    /// One group's columns of the im2col matrix (`kh·kw·cin/groups`): the GEMM's inner dimension.
    public var groupPatch: Int { kernelHeight * kernelWidth * groupInChannels }
    /// Whether the input itself is the im2col matrix (1×1 kernel, stride 1, no padding).
    public var isPointwise: Bool {
        kernelHeight == 1 && kernelWidth == 1 && strideHeight == 1 && strideWidth == 1
            && padTop == 0 && padBottom == 0 && padLeft == 0 && padRight == 0
    }
    /// One input channel per group (any channel multiplier).
    public var isDepthwise: Bool { groups > 1 && groupInChannels == 1 }

    /// Calls `body(images, outHeight·outWidth)` for consecutive chunks of `chunkImages` images.
    func forEachChunk(_ body: (Range<Int>, Int) -> Void) {
        var first = 0
        while first < batch {
            let end = min(batch, first + chunkImages)
            body(first..<end, outHeight * outWidth)
            first = end
        }
    }

    /// Multiply-adds of the forward pass.
    public var multiplyAdds: Int { rows * groupPatch * outChannels }

    /// Images per chunk so that a chunk's patch matrix stays in the L2 cache (~1 MiB): used
    /// where the whole patch matrix is not needed at once (inference, the input gradient).
    public var chunkImages: Int { max(1, (1 << 20) / max(1, outHeight * outWidth * patch * MemoryLayout<Float>.stride)) }

    /// Writes the rows of the im2col matrix `[rows, patch]` of `x` that belong to `images`
    /// into `col`, whose first row belongs to image `firstImage` (zero where padded).
    ///
    /// A row holds group after group, each in the kernel's `(ky, kx, ci)` order, so group `g`'s
    /// GEMM operand is the column block `g·groupPatch ..< (g+1)·groupPatch` (one group: the
    /// HWIO kernel's row order).
    func im2col(_ x: UnsafePointer<Float>, _ col: UnsafeMutablePointer<Float>, images: Range<Int>, firstImage: Int = 0) {
        let c = inChannels, cg = groupInChannels, kw = kernelWidth
        for n in images {
            let image = x + n * height * width * c
            for oy in 0..<outHeight {
                for ox in 0..<outWidth {
                    var dst = col + (((n - firstImage) * outHeight + oy) * outWidth + ox) * patch
                    let iy0 = oy * strideHeight - padTop, ix0 = ox * strideWidth - padLeft
                    for group in 0..<groups {
                        for ky in 0..<kernelHeight {
                            let iy = iy0 + ky
                            if iy < 0 || iy >= height {
                                dst.update(repeating: 0, count: kw * cg)
                                dst += kw * cg
                                continue
                            }
                            let rowBase = image + iy * width * c + group * cg
                            if groups == 1 && ix0 >= 0 && ix0 + kw <= width {
                                // The whole kernel row is inside: one contiguous copy of kw·c floats.
                                copy(rowBase + ix0 * c, to: dst, count: kw * c)
                                dst += kw * c
                            } else {
                                for kx in 0..<kw {
                                    let ix = ix0 + kx
                                    if ix < 0 || ix >= width {
                                        dst.update(repeating: 0, count: cg)
                                    } else {
                                        copy(rowBase + ix * c, to: dst, count: cg)
                                    }
                                    dst += cg
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// Copies `count` floats; short runs (a 3×3 kernel row of a 1-channel image is 3 floats) in
    /// a loop, since a memmove call costs more than the copy.
    @inline(__always)
    private func copy(_ src: UnsafePointer<Float>, to dst: UnsafeMutablePointer<Float>, count: Int) {
        if count <= 16 {
            for i in 0..<count { dst[i] = src[i] }
        } else {
            dst.update(from: src, count: count)
        }
    }

    /// The first and last output columns whose window column `kx` lies inside the image
    /// (`ox·strideWidth − padLeft + kx` in `0..<width`); nil when none does.
    func outputColumns(inside kx: Int) -> (first: Int, last: Int)? {
        let shift = padLeft - kx, sw = strideWidth
        let first = shift <= 0 ? 0 : (shift + sw - 1) / sw
        let last = min(outWidth - 1, width - 1 + shift >= 0 ? (width - 1 + shift) / sw : -1)
        return first <= last ? (first, last) : nil
    }

    /// Sums the im2col-shaped gradient `dcol` (first row: image `firstImage`) back onto the
    /// input gradient `dx` for the given images (their part of `dx` is zeroed first).
    func col2im(_ dcol: UnsafePointer<Float>, _ dx: UnsafeMutablePointer<Float>, images: Range<Int>, firstImage: Int = 0) {
        let c = inChannels, cg = groupInChannels, kw = kernelWidth, sw = strideWidth
        (dx + images.lowerBound * height * width * c).update(repeating: 0, count: images.count * height * width * c)
        // For each output row and kernel row, a kernel column at a time over the output columns
        // whose window column is inside the image (no test per element). Kernel columns run
        // from the last to the first, so every dx element still receives its terms in (oy, ox)
        // order — the bits of the plain loop over output pixels, then kernel positions.
        for n in images {
            let image = dx + n * height * width * c
            for oy in 0..<outHeight {
                let rowCol = dcol + ((n - firstImage) * outHeight + oy) * outWidth * patch
                for ky in 0..<kernelHeight {
                    let iy = oy * strideHeight - padTop + ky
                    if iy < 0 || iy >= height { continue }
                    let inputRow = image + iy * width * c
                    for kx in Swift.stride(from: kw - 1, through: 0, by: -1) {
                        // ix = ox·sw − padLeft + kx in [0, width)
                        guard let (first, last) = outputColumns(inside: kx) else { continue }
                        let shift = padLeft - kx
                        for group in 0..<groups {
                            var src = rowCol + first * patch + group * groupPatch + (ky * kw + kx) * cg
                            var d = inputRow + (first * sw - shift) * c + group * cg
                            if cg == 1 {
                                for _ in first...last { d[0] += src[0]; src += patch; d += sw * c }
                            } else {
                                for _ in first...last {
                                    for j in 0..<cg { d[j] += src[j] }
                                    src += patch
                                    d += sw * c
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
