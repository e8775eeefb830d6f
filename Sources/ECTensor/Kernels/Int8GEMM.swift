import CKernels
import Foundation

/// The integer kernels of `Int8Model`: activation quantization to 8-bit codes, im2col on those
/// codes, and an Int32-accumulating GEMM.
///
/// Layout: the GEMM computes `C[m, n] = Σ_k A[m, k]·B[n, k]` with both operands packed row-major
/// as Int16 (every 8-bit code, signed or unsigned, widens exactly) and the inner dimension
/// zero-padded to `kPadded`, a multiple of 16, so the inner loop is whole `SIMD16` vectors:
/// load 16 Int16, widen to `SIMD16<Int32>`, multiply-add into an Int32 accumulator. Each A row
/// is loaded once per four B rows (a 1×4 register block). No overflow is possible: a product is
/// at most 255·128 in magnitude, so K < 65 536 keeps every sum inside Int32 (a precondition).
package enum Int8GEMM {
    /// Whether the AVX-512 VNNI kernel (`vpdpbusd`: 64 uint8×int8 products per instruction)
    /// runs here; `EC_INT8_KERNEL=simd` forces the portable Swift kernel (for comparisons).
    package static let vnni: Bool = cint8_vnni_available() != 0
        && ProcessInfo.processInfo.environment["EC_INT8_KERNEL"] != "simd"

    /// Weights packed for the VNNI kernel, with the correction that signed activations need.
    package struct VNNIWeights {
        package let packed: [Int8]
        package let n: Int, kp: Int
        /// 128·Σ_k b[j][k]: signed activation codes enter the kernel offset by +128 (it takes
        /// uint8), which adds exactly this to every output j.
        package let offsetCorrection: [Int32]
    }

    /// Packs `[n, kp]` Int16 weight rows (the Swift kernel's layout) for the VNNI kernel.
    package static func packVNNI(_ rows: [Int16], n: Int, kp: Int) -> VNNIWeights {
        let b = rows.map { Int8(truncatingIfNeeded: $0) }
        var packed = [Int8](repeating: 0, count: Int(cint8_packed_size(Int32(n), Int32(kp))))
        b.withUnsafeBufferPointer { bp in packed.withUnsafeMutableBufferPointer { pp in
            cint8_pack_weights(bp.baseAddress!, Int32(n), Int32(kp), Int32(kp), pp.baseAddress!)
        } }
        let correction = (0..<n).map { j in 128 * (0..<kp).reduce(Int32(0)) { $0 + Int32(b[j * kp + $1]) } }
        return VNNIWeights(packed: packed, n: n, kp: kp, offsetCorrection: correction)
    }

    /// The VNNI kernel on rows in its byte form (`im2colBytes`, `packRowsBytes`: uint8, signed
    /// codes offset by +128 and corrected exactly by `offsetCorrection`), rows split across
    /// workers.
    package static func multiplyVNNI(bytes a: UnsafePointer<UInt8>, rows: Int, signed: Bool, weights w: VNNIWeights,
                             into c: UnsafeMutablePointer<Int32>) {
        w.packed.withUnsafeBufferPointer { bp in w.offsetCorrection.withUnsafeBufferPointer { corr in
            Parallel.forEach(rows, costPerItem: w.n * w.kp / 8) { range in
                cint8_gemm_u8s8(a + range.lowerBound * w.kp, Int32(range.count), Int32(w.kp), bp.baseAddress!, Int32(w.n),
                                signed ? corr.baseAddress! : nil, c + range.lowerBound * w.n)
            }
        } }
    }

    /// The byte the VNNI kernel reads for an 8-bit code: the code itself when unsigned, the
    /// code + 128 when signed (two's complement: flip the top bit); the correction undoes it.
    @inline(__always)
    package static func kernelByte(_ code: UInt8, signed: Bool) -> UInt8 { signed ? code ^ 0x80 : code }

    /// `packRows` in the VNNI kernel's byte form (the padding holds the value 0's byte).
    package static func packRowsBytes(_ codes: [UInt8], rows: Int, k: Int, signed: Bool) -> [UInt8] {
        let kp = padded(k), zero = kernelByte(0, signed: signed)
        var out = [UInt8](repeating: zero, count: rows * kp)
        codes.withUnsafeBufferPointer { src in out.withUnsafeMutableBufferPointer { dst in
            for r in 0..<rows {
                for j in 0..<k { dst[r * kp + j] = kernelByte(src[r * k + j], signed: signed) }
            }
        } }
        return out
    }

    /// `im2col` in the VNNI kernel's byte form: for each kernel row, the window's in-image
    /// positions are one contiguous run of codes (`kw·cin` bytes in the interior), copied
    /// whole; outside the image, the value 0's byte. The k padding (`patch..<kPadded`) is left
    /// unspecified — the packed weights there are zero and the signed-offset correction sums
    /// the weights only, so it never reaches a result.
    package static func im2colBytes(_ codes: [UInt8], signed: Bool, geometry g: Conv2DGeometry, images: Range<Int>) -> [UInt8] {
        let kp = padded(g.patch), pixels = g.outHeight * g.outWidth, c = g.inChannels
        let zero = kernelByte(0, signed: signed)
        var out = [UInt8](repeating: zero, count: images.count * pixels * kp)
        codes.withUnsafeBufferPointer { src in out.withUnsafeMutableBufferPointer { dst in
            let s = src.baseAddress!, d = dst.baseAddress!
            Parallel.forEach(images.count * g.outHeight, costPerItem: g.outWidth * g.patch) { range in
                for item in range {
                    let local = item / g.outHeight, oy = item % g.outHeight, image = images.lowerBound + local
                    for ox in 0..<g.outWidth {
                        let row = ((local * g.outHeight + oy) * g.outWidth + ox) * kp
                        let ix0 = ox * g.strideWidth - g.padLeft
                        let kxLow = max(0, -ix0), kxHigh = min(g.kernelWidth, g.width - ix0)
                        guard kxLow < kxHigh else { continue }
                        let iy0 = oy * g.strideHeight - g.padTop
                        if c == 1 && g.kernelWidth == 3 && g.kernelHeight == 3 && g.patch < kp && ix0 >= 0 && ix0 + 3 < g.width
                            && iy0 >= 0 && iy0 + 3 <= g.height {
                            // A single-channel 3×3 window inside the image: each kernel row as one
                            // 4-byte word (its 4th byte is overwritten by the next row's, the last
                            // one lands in the k padding, which meets zero weights).
                            let flip: UInt32 = signed ? 0x8080_8080 : 0
                            for ky in 0..<3 {
                                let word = UnsafeRawPointer(s + (image * g.height + iy0 + ky) * g.width + ix0).loadUnaligned(as: UInt32.self)
                                UnsafeMutableRawPointer(d + row + ky * 3).storeBytes(of: word ^ flip, as: UInt32.self)
                            }
                            continue
                        }
                        for ky in 0..<g.kernelHeight {
                            let iy = oy * g.strideHeight + ky - g.padTop
                            guard iy >= 0 && iy < g.height else { continue }
                            let from = s + ((image * g.height + iy) * g.width + ix0 + kxLow) * c
                            let to = d + row + (ky * g.kernelWidth + kxLow) * c
                            let count = (kxHigh - kxLow) * c
                            if signed {
                                for i in 0..<count { to[i] = from[i] ^ 0x80 }
                            } else if count < 32 {
                                for i in 0..<count { to[i] = from[i] }
                            } else {
                                to.update(from: from, count: count)
                            }
                        }
                    }
                }
            }
        } }
        return out
    }

    /// The inner dimension rounded up to whole 16-lane vectors.
    package static func padded(_ k: Int) -> Int { (k + 15) / 16 * 16 }

    /// `C[rows, n] = A[rows, kPadded]·B[n, kPadded]ᵀ` in Int32, rows split across workers.
    package static func multiply(a: UnsafePointer<Int16>, rows: Int, b: UnsafePointer<Int16>, n: Int, kPadded: Int,
                         into c: UnsafeMutablePointer<Int32>) {
        precondition(kPadded % 16 == 0 && kPadded < 65_536, "Int8GEMM: inner dimension \(kPadded) must be a multiple of 16 below 65536")
        Parallel.forEach(rows, costPerItem: n * kPadded) { range in
            for i in range { row(a + i * kPadded, b: b, n: n, kPadded: kPadded, into: c + i * n) }
        }
    }

    @inline(__always)
    private static func load(_ p: UnsafePointer<Int16>) -> SIMD16<Int32> {
        SIMD16<Int32>(truncatingIfNeeded: UnsafeRawPointer(p).loadUnaligned(as: SIMD16<Int16>.self))
    }

    /// One output row: four B rows at a time, then the remaining ones singly.
    private static func row(_ a: UnsafePointer<Int16>, b: UnsafePointer<Int16>, n: Int, kPadded: Int,
                            into c: UnsafeMutablePointer<Int32>) {
        var j = 0
        while j + 4 <= n {
            let b0 = b + j * kPadded, b1 = b0 + kPadded, b2 = b1 + kPadded, b3 = b2 + kPadded
            var s0 = SIMD16<Int32>(), s1 = SIMD16<Int32>(), s2 = SIMD16<Int32>(), s3 = SIMD16<Int32>()
            var k = 0
            while k < kPadded {
                let x = load(a + k)
                s0 &+= x &* load(b0 + k)
                s1 &+= x &* load(b1 + k)
                s2 &+= x &* load(b2 + k)
                s3 &+= x &* load(b3 + k)
                k += 16
            }
            c[j] = s0.wrappedSum(); c[j + 1] = s1.wrappedSum(); c[j + 2] = s2.wrappedSum(); c[j + 3] = s3.wrappedSum()
            j += 4
        }
        while j < n {
            let bj = b + j * kPadded
            var s = SIMD16<Int32>()
            var k = 0
            while k < kPadded {
                s &+= load(a + k) &* load(bj + k)
                k += 16
            }
            c[j] = s.wrappedSum()
            j += 1
        }
    }

    /// The 8-bit codes `level(x/s)` of every element, as LSQ's fake quantization computes them
    /// (`QuantRange.level`: round half to even after clipping to [−Qn, Qp]). Signed codes are
    /// stored as their two's-complement byte (`Int8` bit pattern), unsigned ones as `UInt8`.
    /// A NaN input (where the fake-quant model would propagate NaN) becomes code 0.
    package static func quantize(_ x: Tensor, step: Float, range: QuantRange) -> [UInt8] {
        [UInt8](unsafeUninitializedCapacity: x.count) { out, initialized in
            x.withUnsafeBufferPointer { xp in
                if range.isBinary {  // ±1; NaN (a diverged input) as code 0, as on the other grids
                    for i in xp.indices {
                        let level = range.level(xp[i] / step)
                        out[i] = level.isNaN ? 0 : UInt8(bitPattern: Int8(level))
                    }
                } else {
                    // level()'s own rounding, x + 1.5·2²³ (nearest, ties to even), read off the
                    // sum's low mantissa byte: that byte is the code in two's complement, with
                    // no Float → Int conversion (and its range check) per element — vectorizes.
                    let lowest = -range.qn, highest = range.qp, magic: Float = 12_582_912
                    for i in xp.indices {
                        out[i] = UInt8(truncatingIfNeeded: (min(max(xp[i] / step, lowest), highest) + magic).bitPattern)
                    }
                }
            }
            initialized = x.count
        }
    }

    /// Widens 8-bit codes to Int16 (sign-extending signed ones).
    @inline(__always)
    package static func widen(_ byte: UInt8, signed: Bool) -> Int16 {
        signed ? Int16(Int8(bitPattern: byte)) : Int16(byte)
    }

    /// Packs `rows` rows of `k` codes (a dense layer's input `[rows, k]`) into `[rows, kPadded]`.
    package static func packRows(_ codes: [UInt8], rows: Int, k: Int, signed: Bool) -> [Int16] {
        let kp = padded(k)
        var out = [Int16](repeating: 0, count: rows * kp)
        codes.withUnsafeBufferPointer { src in out.withUnsafeMutableBufferPointer { dst in
            for r in 0..<rows {
                for j in 0..<k { dst[r * kp + j] = widen(src[r * k + j], signed: signed) }
            }
        } }
        return out
    }

    /// im2col on 8-bit NHWC codes: one row per output pixel of images `images`, holding the
    /// `kh·kw·cin` patch in (kh, kw, cin) order — the HWIO kernel's row order — with the
    /// padding as code 0 (the value 0, as the fake-quant model pads its quantized input).
    package static func im2col(_ codes: [UInt8], signed: Bool, geometry g: Conv2DGeometry, images: Range<Int>) -> [Int16] {
        let kp = padded(g.patch), pixels = g.outHeight * g.outWidth
        var out = [Int16](repeating: 0, count: images.count * pixels * kp)
        codes.withUnsafeBufferPointer { src in out.withUnsafeMutableBufferPointer { dst in
            Parallel.forEach(images.count * g.outHeight, costPerItem: g.outWidth * g.patch) { range in
                for item in range {
                    let local = item / g.outHeight, oy = item % g.outHeight, image = images.lowerBound + local
                    for ox in 0..<g.outWidth {
                        var o = ((local * g.outHeight + oy) * g.outWidth + ox) * kp
                        for ky in 0..<g.kernelHeight {
                            let iy = oy * g.strideHeight + ky - g.padTop
                            for kx in 0..<g.kernelWidth {
                                let ix = ox * g.strideWidth + kx - g.padLeft
                                if iy >= 0 && iy < g.height && ix >= 0 && ix < g.width {
                                    let i = ((image * g.height + iy) * g.width + ix) * g.inChannels
                                    if signed {
                                        for ch in 0..<g.inChannels { dst[o + ch] = Int16(Int8(bitPattern: src[i + ch])) }
                                    } else {
                                        for ch in 0..<g.inChannels { dst[o + ch] = Int16(src[i + ch]) }
                                    }
                                }
                                o += g.inChannels
                            }
                        }
                    }
                }
            }
        } }
        return out
    }
}
