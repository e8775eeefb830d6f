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
    public var multiplyAdds: Int { rows * patch * outChannels }

    /// Images per chunk so that a chunk's patch matrix stays in the L2 cache (~1 MiB): used
    /// where the whole patch matrix is not needed at once (inference, the input gradient).
    public var chunkImages: Int { max(1, (1 << 20) / max(1, outHeight * outWidth * patch * MemoryLayout<Float>.stride)) }

    /// Writes the rows of the im2col matrix `[rows, patch]` of `x` that belong to `images`
    /// into `col`, whose first row belongs to image `firstImage` (zero where padded).
    func im2col(_ x: UnsafePointer<Float>, _ col: UnsafeMutablePointer<Float>, images: Range<Int>, firstImage: Int = 0) {
        let c = inChannels, kw = kernelWidth
        for n in images {
            let image = x + n * height * width * c
            for oy in 0..<outHeight {
                for ox in 0..<outWidth {
                    var dst = col + (((n - firstImage) * outHeight + oy) * outWidth + ox) * patch
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
                            copy(rowBase + ix0 * c, to: dst, count: kw * c)
                            dst += kw * c
                        } else {
                            for kx in 0..<kw {
                                let ix = ix0 + kx
                                if ix < 0 || ix >= width {
                                    dst.update(repeating: 0, count: c)
                                } else {
                                    copy(rowBase + ix * c, to: dst, count: c)
                                }
                                dst += c
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

    /// Sums the im2col-shaped gradient `dcol` (first row: image `firstImage`) back onto the
    /// input gradient `dx` for the given images (their part of `dx` is zeroed first).
    func col2im(_ dcol: UnsafePointer<Float>, _ dx: UnsafeMutablePointer<Float>, images: Range<Int>, firstImage: Int = 0) {
        let c = inChannels
        (dx + images.lowerBound * height * width * c).update(repeating: 0, count: images.count * height * width * c)
        for n in images {
            let image = dx + n * height * width * c
            for oy in 0..<outHeight {
                for ox in 0..<outWidth {
                    var src = dcol + (((n - firstImage) * outHeight + oy) * outWidth + ox) * patch
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
