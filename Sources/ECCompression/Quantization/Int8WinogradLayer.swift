import ECNN
import ECTensor

/// A quantized 3×3 stride-1 `same` Conv2D in integer Winograd form (`int8_winograd`):
/// the input is quantized to its grid (`s_x`), transformed into 4×4 Winograd tiles
/// `V = Bᵀ x̂ B`, which are quantized to 8-bit codes with their own step `s_V`; the 16
/// element-wise products of F(2×2, 3×3) become 16 int8 × int8 → int32 GEMMs
/// `codes(V[ξ]) · codes(U[ξ])` against the kernel transformed and quantized in the Winograd
/// domain (`U = G g Gᵀ`, step `s_U`), dequantized by `s_V·s_U[c]`; the output transform
/// `Aᵀ M A`, the bias and the ReLU run in Float.
///
/// This is exactly what Winograd-aware training fake-quantizes, so a model trained that way
/// keeps its accuracy on this kernel; a model trained with plain QAT meets the Winograd
/// domain's wider value ranges here for the first time.
public struct Int8WinogradLayer: Equatable, Sendable {
    public let name: String
    /// The spatial kernel's shape `[3, 3, cin, cout]`.
    public let weightShape: [Int]
    /// `s_x` and the spatial input's grid.
    public let inputScale: Float
    public let inputRange: QuantRange
    /// One int8 GEMM per Winograd position ξ (16): codes of `U[ξ]` `[cin, cout]` with `s_U`,
    /// input codes of `V[ξ]` with `s_V` (signed), no bias.
    public let products: [Int8Layer]
    public let bias: [Float]?
    /// With `post_quant`: the output's step and grid (after the ReLU, as the fake-quant model).
    public let outputScale: Float?
    public let outputRange: QuantRange?

    /// - Parameters:
    ///   - kernelCodes: `level(U/s_U)`, `[16, cin, cout]` row-major.
    ///   - kernelScale: `s_U`, `[1]` or one per output channel.
    ///   - tileScale: `s_V`; `tileRange` its (signed) grid.
    public init(name: String, weightShape: [Int], inputStep inputScale: Float, inputRange: QuantRange, kernelCodes: [Int8],
                kernelScale: [Float], kernelRange: QuantRange, tileScale: Float, tileRange: QuantRange, bias: [Float]?,
                output: (scale: Float, range: QuantRange)? = nil) {
        precondition(weightShape.count == 4 && weightShape[0] == 3 && weightShape[1] == 3,
                     "\(name): Winograd F(2×2, 3×3) needs a [3, 3, cin, cout] kernel, got \(weightShape)")
        let (cin, cout) = (weightShape[2], weightShape[3])
        precondition(kernelCodes.count == 16 * cin * cout, "\(name): \(kernelCodes.count) Winograd kernel codes for \(weightShape)")
        self.name = name
        self.weightShape = weightShape
        self.inputScale = inputScale
        self.inputRange = inputRange
        self.bias = bias
        outputScale = output?.scale
        outputRange = output?.range
        products = (0..<16).map { xi in
            Int8Layer(name: "\(name)[\(xi)]", opType: "MatMul", weightShape: [cin, cout],
                      weights: Array(kernelCodes[(xi * cin * cout)..<((xi + 1) * cin * cout)]), weightScale: kernelScale,
                      weightRange: kernelRange, inputScale: tileScale, inputRange: tileRange, bias: nil)
        }
    }

    /// `[16, cin, cout]` codes of all positions, as stored.
    public var kernelCodes: [Int8] { products.flatMap(\.weights) }
    public var kernelScale: [Float] { products[0].weightScale }
    public var kernelRange: QuantRange { products[0].weightRange }
    public var tileScale: Float { products[0].inputScale }
    public var tileRange: QuantRange { products[0].inputRange }

    /// Output `[n, h, w, cout]` for NHWC `x`, with `relu` applied.
    func forward(_ x: Tensor, relu: Bool) -> Tensor {
        precondition(x.rank == 4 && x.shape[3] == weightShape[2], "\(name): input \(x.shape) does not fit kernel \(weightShape)")
        var quantized = x
        quantized.withUnsafeMutableBufferPointer { p in
            for i in p.indices { p[i] = inputRange.level(p[i] / inputScale) * inputScale }
        }
        let v = Variable(quantized).winogradInputTiles().value
        let (tiles, cin, cout) = (v.shape[1], weightShape[2], weightShape[3])
        var m = Tensor(uninitializedShape: [16, tiles, cout])
        let positions = v.reshaped([16 * tiles, cin])  // position ξ's tiles: rows ξ·T ..< (ξ+1)·T
        m.withUnsafeMutableBufferPointer { mp in
            for xi in 0..<16 {
                let product = products[xi].forward(positions.rows((xi * tiles)..<((xi + 1) * tiles)), stride: 1, padding: .valid,
                                                   relu: false)
                product.withUnsafeBufferPointer { pp in
                    for i in 0..<(tiles * cout) { mp[xi * tiles * cout + i] = pp[i] }
                }
            }
        }
        let y = Variable(m).winogradOutput(height: x.shape[1], width: x.shape[2],
                                           bias: bias.map { Variable(Tensor(shape: [cout], scalars: $0)) })
        var out = relu ? y.relu().value : y.value
        if let outputScale, let outputRange {
            out.withUnsafeMutableBufferPointer { p in
                for i in p.indices { p[i] = outputRange.level(p[i] / outputScale) * outputScale }
            }
        }
        return out
    }
}
