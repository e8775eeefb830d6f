/// Winograd F(2×2, 3×3) (Lavin & Gray, 2016) for 3×3, stride-1, `same`-padded convolutions:
/// the output is computed per 2×2 tile from a 4×4 input tile as
/// `Y = Aᵀ [ (G g Gᵀ) ⊙ (Bᵀ d B) ] A`, i.e. 16 element-wise products per tile and channel pair
/// instead of 36 multiplies.
///
/// The convolution is split into four differentiable steps so that fake quantization can act
/// in the Winograd domain (Winograd-aware training, `int8_winograd`):
///
/// 1. `winogradInputTiles()`: NHWC input → `V [16, T, cin]`, the transformed 4×4 tiles
///    (`T = n · ⌈h/2⌉ · ⌈w/2⌉`; zero padding 1 around the image and past odd edges);
/// 2. `winogradKernel()`: HWIO kernel `[3, 3, cin, cout]` → `U [16, cin, cout]`;
/// 3. `winogradProducts(_:)`: `M[ξ] = V[ξ] · U[ξ]` for the 16 positions ξ (16 GEMMs);
/// 4. `winogradOutput(height:width:bias:)`: `M` → NHWC output (2×2 per tile, cropped at odd
///    edges), plus the bias.
///
/// Each step's backward is its exact adjoint; composed they equal `conv2d(stride: 1,
/// padding: .same)` up to rounding.
public enum Winograd {
    /// Bᵀ (4×4), G (4×3), Aᵀ (2×4) of F(2×2, 3×3).
    public static let inputTransform: [[Float]] = [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]]
    public static let kernelTransform: [[Float]] = [[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]]
    public static let outputTransform: [[Float]] = [[1, 1, 1, 0], [0, 1, -1, -1]]

    /// Whether a convolution can run through F(2×2, 3×3): 3×3 kernel, stride 1, `same` padding.
    public static func applies(kernel: [Int], stride: Int, padding: Padding) -> Bool {
        kernel.count == 4 && kernel[0] == 3 && kernel[1] == 3 && stride == 1 && padding == .same
    }

    /// Tiles along each axis for an extent `n`.
    @inline(__always) static func tiles(_ n: Int) -> Int { (n + 1) / 2 }

    /// `out[a][b] = Σ_ij M[a][i] · d[i][j] · M[b][j]` for a 4×k tile `d` (k = 4 or 3) and the
    /// 4×k matrix `M`: the two-sided transform `M d Mᵀ`, and with `M`ᵀ the adjoint.
    @inline(__always)
    static func sandwich(_ m: [[Float]], _ d: [Float], inner: Int, outer: Int, into out: inout [Float]) {
        // rows: t[a][j] = Σ_i m[a][i] d[i][j]
        var t = [Float](repeating: 0, count: outer * inner)
        for a in 0..<outer { for i in 0..<inner where m[a][i] != 0 { for j in 0..<inner { t[a * inner + j] += m[a][i] * d[i * inner + j] } } }
        for a in 0..<outer { for b in 0..<outer {
            var s: Float = 0
            for j in 0..<inner where m[b][j] != 0 { s += t[a * inner + j] * m[b][j] }
            out[a * outer + b] = s
        } }
    }

    /// The transpose of a (rows × cols) matrix.
    static func transposed(_ m: [[Float]]) -> [[Float]] {
        (0..<m[0].count).map { j in m.map { $0[j] } }
    }
}

extension Variable {
    /// NHWC input `[n, h, w, cin]` → `V [16, n·⌈h/2⌉·⌈w/2⌉, cin]` (see `Winograd`).
    public func winogradInputTiles() -> Variable {
        precondition(shape.count == 4, "winogradInputTiles: input must be NHWC, got \(shape)")
        let (n, h, w, c) = (shape[0], shape[1], shape[2], shape[3])
        let th = Winograd.tiles(h), tw = Winograd.tiles(w), tileCount = n * th * tw
        var v = Tensor(shape: [16, tileCount, c])
        let bt = Winograd.inputTransform
        value.withUnsafeBufferPointer { x in v.withUnsafeMutableBufferPointer { out in
            Parallel.forEach(tileCount, costPerItem: 64 * c) { range in
                var d = [Float](repeating: 0, count: 16), r = [Float](repeating: 0, count: 16)
                for t in range {
                    let img = t / (th * tw), ty = t / tw % th, tx = t % tw
                    for ch in 0..<c {
                        for i in 0..<4 { for j in 0..<4 {
                            let y = 2 * ty - 1 + i, xx = 2 * tx - 1 + j
                            d[i * 4 + j] = (y >= 0 && y < h && xx >= 0 && xx < w) ? x[((img * h + y) * w + xx) * c + ch] : 0
                        } }
                        Winograd.sandwich(bt, d, inner: 4, outer: 4, into: &r)
                        for xi in 0..<16 { out[(xi * tileCount + t) * c + ch] = r[xi] }
                    }
                }
            }
        } }
        let input = self
        return Variable.result(v, inputs: self) { dv in
            // dd = B dV Bᵀ per tile, scattered back onto the (overlapping) input window.
            var dx = Tensor(shape: [n, h, w, c])
            let b = Winograd.transposed(bt)
            dv.withUnsafeBufferPointer { g in dx.withUnsafeMutableBufferPointer { out in
                var d = [Float](repeating: 0, count: 16), r = [Float](repeating: 0, count: 16)
                for t in 0..<tileCount {
                    let img = t / (th * tw), ty = t / tw % th, tx = t % tw
                    for ch in 0..<c {
                        for xi in 0..<16 { d[xi] = g[(xi * tileCount + t) * c + ch] }
                        Winograd.sandwich(b, d, inner: 4, outer: 4, into: &r)
                        for i in 0..<4 { for j in 0..<4 {
                            let y = 2 * ty - 1 + i, xx = 2 * tx - 1 + j
                            if y >= 0 && y < h && xx >= 0 && xx < w { out[((img * h + y) * w + xx) * c + ch] += r[i * 4 + j] }
                        } }
                    }
                }
            } }
            input.accumulate(dx)
        }
    }

    /// HWIO kernel `[3, 3, cin, cout]` → `U [16, cin, cout]` (`G g Gᵀ` per channel pair).
    public func winogradKernel() -> Variable {
        precondition(shape.count == 4 && shape[0] == 3 && shape[1] == 3, "winogradKernel: kernel must be [3, 3, cin, cout], got \(shape)")
        let pairs = shape[2] * shape[3]
        var u = Tensor(shape: [16, shape[2], shape[3]])
        let g = Winograd.kernelTransform
        value.withUnsafeBufferPointer { k in u.withUnsafeMutableBufferPointer { out in
            var d = [Float](repeating: 0, count: 9), t = [Float](repeating: 0, count: 12), r = [Float](repeating: 0, count: 16)
            for p in 0..<pairs {
                for i in 0..<9 { d[i] = k[i * pairs + p] }
                Self.kernelSandwich(g, d, &t, &r)
                for xi in 0..<16 { out[xi * pairs + p] = r[xi] }
            }
        } }
        let kernel = self, kernelShape = shape
        return Variable.result(u, inputs: self) { du in
            // dg = Gᵀ dU G per channel pair.
            var dk = Tensor(shape: kernelShape)
            du.withUnsafeBufferPointer { gp in dk.withUnsafeMutableBufferPointer { out in
                for p in 0..<pairs {
                    for i in 0..<3 { for j in 0..<3 {
                        var s: Float = 0
                        for a in 0..<4 where g[a][i] != 0 { for b in 0..<4 where g[b][j] != 0 {
                            s += g[a][i] * gp[(a * 4 + b) * pairs + p] * g[b][j]
                        } }
                        out[(i * 3 + j) * pairs + p] = s
                    } }
                }
            } }
            kernel.accumulate(dk)
        }
    }

    /// `r = G d Gᵀ` for a 3×3 `d` (4×4 result), `t` scratch of 12.
    @inline(__always)
    static func kernelSandwich(_ g: [[Float]], _ d: [Float], _ t: inout [Float], _ r: inout [Float]) {
        for a in 0..<4 { for j in 0..<3 {
            var s: Float = 0
            for i in 0..<3 { s += g[a][i] * d[i * 3 + j] }
            t[a * 3 + j] = s
        } }
        for a in 0..<4 { for b in 0..<4 {
            var s: Float = 0
            for j in 0..<3 { s += t[a * 3 + j] * g[b][j] }
            r[a * 4 + b] = s
        } }
    }

    /// `M[ξ] = V[ξ] · U[ξ]` for the 16 positions: `self` is `V [16, T, cin]`, `u` is
    /// `U [16, cin, cout]`, the result `[16, T, cout]`.
    public func winogradProducts(_ u: Variable) -> Variable {
        precondition(shape.count == 3 && u.shape.count == 3 && shape[0] == 16 && u.shape[0] == 16 && shape[2] == u.shape[1],
                     "winogradProducts: shapes \(shape) and \(u.shape) do not chain")
        let (tiles, cin, cout) = (shape[1], shape[2], u.shape[2])
        var m = Tensor(shape: [16, tiles, cout])
        let v = value, uv = u.value
        v.withUnsafeBufferPointer { vp in uv.withUnsafeBufferPointer { up in m.withUnsafeMutableBufferPointer { mp in
            for xi in 0..<16 {
                BLAS.sgemm(m: tiles, n: cout, k: cin, a: vp.baseAddress! + xi * tiles * cin, b: up.baseAddress! + xi * cin * cout,
                           c: mp.baseAddress! + xi * tiles * cout)
            }
        } } }
        let lhs = self
        return Variable.result(m, inputs: self, u) { dm in
            dm.withUnsafeBufferPointer { g in
                if lhs.requiresGrad {
                    var dv = Tensor(shape: [16, tiles, cin])
                    uv.withUnsafeBufferPointer { up in dv.withUnsafeMutableBufferPointer { o in
                        for xi in 0..<16 {
                            BLAS.sgemm(transB: true, m: tiles, n: cin, k: cout, a: g.baseAddress! + xi * tiles * cout,
                                       b: up.baseAddress! + xi * cin * cout, c: o.baseAddress! + xi * tiles * cin)
                        }
                    } }
                    lhs.accumulate(dv)
                }
                if u.requiresGrad {
                    var du = Tensor(shape: [16, cin, cout])
                    v.withUnsafeBufferPointer { vp in du.withUnsafeMutableBufferPointer { o in
                        for xi in 0..<16 {
                            BLAS.sgemm(transA: true, m: cin, n: cout, k: tiles, a: vp.baseAddress! + xi * tiles * cin,
                                       b: g.baseAddress! + xi * tiles * cout, c: o.baseAddress! + xi * cin * cout)
                        }
                    } }
                    u.accumulate(du)
                }
            }
        }
    }

    /// `M [16, n·⌈h/2⌉·⌈w/2⌉, cout]` → NHWC output `[n, h, w, cout]` (`Aᵀ M A` per tile,
    /// cropped at odd edges), plus `bias [cout]` when given.
    public func winogradOutput(height h: Int, width w: Int, bias: Variable?) -> Variable {
        let th = Winograd.tiles(h), tw = Winograd.tiles(w)
        precondition(shape.count == 3 && shape[0] == 16 && shape[1] % (th * tw) == 0,
                     "winogradOutput: \(shape) is not 16 × tiles of a \(h)×\(w) image × channels")
        let (tileCount, c) = (shape[1], shape[2]), n = tileCount / (th * tw)
        var y = Tensor(shape: [n, h, w, c])
        let at = Winograd.outputTransform
        let biasValue = bias?.value
        value.withUnsafeBufferPointer { m in y.withUnsafeMutableBufferPointer { out in
            Parallel.forEach(tileCount, costPerItem: 64 * c) { range in
                for t in range {
                    let img = t / (th * tw), ty = t / tw % th, tx = t % tw
                    for ch in 0..<c {
                        let b0: Float = biasValue.map { $0[flat: ch] } ?? 0
                        for p in 0..<2 { for q in 0..<2 {
                            let oy = 2 * ty + p, ox = 2 * tx + q
                            guard oy < h && ox < w else { continue }
                            var s: Float = 0
                            for a in 0..<4 where at[p][a] != 0 { for b in 0..<4 where at[q][b] != 0 {
                                s += at[p][a] * m[((a * 4 + b) * tileCount + t) * c + ch] * at[q][b]
                            } }
                            out[((img * h + oy) * w + ox) * c + ch] = s + b0
                        } }
                    }
                }
            }
        } }
        let input = self, inputShape = shape
        return Variable.result(y, inputs: self, bias) { dy in
            if let bias, bias.requiresGrad {
                var db = Tensor(shape: [c])
                dy.withUnsafeBufferPointer { g in db.withUnsafeMutableBufferPointer { o in
                    for i in 0..<(g.count / c) { for ch in 0..<c { o[ch] += g[i * c + ch] } }
                } }
                bias.accumulate(db)
            }
            guard input.requiresGrad else { return }
            // dM[a][b] = Σ_pq Aᵀ[p][a] dY[p][q] Aᵀ[q][b] (zero past odd edges).
            var dm = Tensor(shape: inputShape)
            dy.withUnsafeBufferPointer { g in dm.withUnsafeMutableBufferPointer { o in
                for t in 0..<tileCount {
                    let img = t / (th * tw), ty = t / tw % th, tx = t % tw
                    for ch in 0..<c {
                        for p in 0..<2 { for q in 0..<2 {
                            let oy = 2 * ty + p, ox = 2 * tx + q
                            guard oy < h && ox < w else { continue }
                            let gy = g[((img * h + oy) * w + ox) * c + ch]
                            for a in 0..<4 where at[p][a] != 0 { for b in 0..<4 where at[q][b] != 0 {
                                o[((a * 4 + b) * tileCount + t) * c + ch] += at[p][a] * gy * at[q][b]
                            } }
                        } }
                    }
                }
            } }
            input.accumulate(dm)
        }
    }

    /// A 3×3 stride-1 `same` convolution through Winograd F(2×2, 3×3), with optional rewrites
    /// of the transformed tiles and kernel (fake quantization in the Winograd domain).
    public func winogradConv2d(weight: Variable, bias: Variable?,
                               transformTiles: (Variable) -> Variable = { $0 },
                               transformKernel: (Variable) -> Variable = { $0 }) -> Variable {
        let v = transformTiles(winogradInputTiles())
        let u = transformKernel(weight.winogradKernel())
        return v.winogradProducts(u).winogradOutput(height: shape[1], width: shape[2], bias: bias)
    }
}
