/// The integer grid of a b-bit uniform quantizer, `{−Qn, …, Qp}` (LSQ's notation; Esser et
/// al., "Learned Step Size Quantization", ICLR 2020, §2).
///
/// - Signed, b ≥ 2 bits: `Qn = 2^(b−1)`, `Qp = 2^(b−1) − 1` (two's complement): 8 bits is
///   `{−128, …, 127}`, 4 bits `{−8, …, 7}`, 2 bits `{−2, −1, 0, 1}`.
/// - Unsigned, b bits: `Qn = 0`, `Qp = 2^b − 1`: 8 bits is `{0, …, 255}`, 1 bit `{0, 1}`.
/// - Signed 1 bit is **binary**, `{−1, +1}` with `Qn = Qp = 1`. The paper's formula would give
///   `Qn = 1, Qp = 0`, i.e. the levels `{−1, 0}`: a grid that cannot represent any positive
///   value, with `√Qp = 0` in both the gradient scale `1/√(N·Qp)` and the initial step
///   `2·mean|v|/√Qp`. Binary `{−s, +s}` is what a signed 1-bit weight means in practice
///   (BinaryConnect, XNOR-Net). Its clip range is `[−1, 1]` as for a ternary grid, but the
///   level is the sign, `x ≥ 0 ? +1 : −1` (zero maps to +1), i.e. the nearest of the two
///   levels with the tie at 0 going up; see `level(_:)`.
///
/// Bit widths are 1…8 (a precondition: configuration is validated before it reaches here).
/// The rounding onto the grid, `level(_:)`, lives with the loops that use it in
/// `Variable+FakeQuant.swift` (debug builds inline only within a file).
public struct QuantRange: Hashable, Sendable, CustomStringConvertible {
    public let bits: Int
    public let signed: Bool
    /// Magnitude of the lowest level: the grid starts at `−Qn`.
    public let qn: Float
    /// The highest level.
    public let qp: Float
    /// Signed 1 bit: the levels are `{−1, +1}` and `level(_:)` is the sign.
    public let isBinary: Bool

    public init(bits: Int, signed: Bool) {
        precondition((1...8).contains(bits), "QuantRange: bits must be in 1...8, got \(bits)")
        self.bits = bits
        self.signed = signed
        isBinary = signed && bits == 1
        if isBinary {
            qn = 1
            qp = 1
        } else if signed {
            qn = Float(1 << (bits - 1))
            qp = Float((1 << (bits - 1)) - 1)
        } else {
            qn = 0
            qp = Float((1 << bits) - 1)
        }
    }

    /// The `2^bits` integer levels in increasing order.
    public var levels: [Float] {
        isBinary ? [-1, 1] : (Int(-qn)...Int(qp)).map { Float($0) }
    }

    public var description: String { "\(signed ? "int" : "uint")\(bits)[−\(Int(qn))…\(Int(qp))]" }
}
