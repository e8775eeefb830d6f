/// The quantizer's settings (the seed's `QuantizerConfig`, docs/quantization.md; seed keys in snake_case in job files,
/// camelCase here). Defaults are the seed's, plus `perChannel` (ours). Call `validate()` — or
/// `validate(against:)` once the model is known — before use; `QuantizationPlan.build` does.
///
/// Quantization is LSQ (Esser et al., ICLR 2020): v̂ = round(clip(v/s, −Qn, Qp))·s with a
/// learned step size s; b bits give Qn = 2^(b−1), Qp = 2^(b−1) − 1 when signed, Qn = 0,
/// Qp = 2^b − 1 when unsigned.
public struct QuantizerConfig: Codable, Equatable, Sendable {
    /// Activation bit width, in [1, 8]. Default 8.
    public var bits: Int
    /// Weight bit width, in [1, 8]. Default 8.
    public var wbits: Int
    /// Quantize activations to signed integers (else unsigned, e.g. after a ReLU). Weights are
    /// always signed. Default true.
    public var signed: Bool
    /// FP32 checkpoint to start from (key `pretrained_model`; the seed's example spells it
    /// `pretrain_model`, accepted when decoding). Default none.
    public var pretrainedModel: String?
    /// Training steps between two step-size adjustments, > 0. Default 1000.
    public var stepInterval: Int
    /// Step-size adjustments in total (then the scales are frozen), > 0. Default 10.
    public var numTrials: Int
    /// Only layers under these scopes are quantized; empty = all.
    public var includeScopes: [String]
    /// Layers under these scopes are never quantized; wins over `includeScopes`.
    public var excludeScopes: [String]
    /// Names of Conv2D / MatMul layers kept in FP32 (exact layer names, the seed's node names).
    public var fp32Layers: [String]
    /// Also quantize each layer's output activation. Default false.
    public var postQuant: Bool
    /// Winograd-aware int8 training for 3×3 stride-1 convolutions. Default false.
    public var int8Winograd: Bool
    /// Weights get one step size per output channel (else one per tensor). Our addition;
    /// default false.
    public var perChannel: Bool
    /// With `signed`, a layer whose input is never negative by construction (after a ReLU, a
    /// ReLU6 or a sigmoid, directly or through pooling and shape ops:
    /// `QuantizableLayer.readsNonNegative`) still gets the unsigned grid, so its activations use
    /// all 2^bits levels instead of the upper half. Our addition; default false.
    public var unsignedAfterReLU: Bool

    /// The op types that have weights and inputs to quantize.
    public static let quantizableOpTypes = ["Conv2D", "MatMul"]
    /// The bit widths `validate()` accepts for `bits` and `wbits`.
    public static let bitRange = 1...8

    public init(bits: Int = 8, wbits: Int = 8, signed: Bool = true, pretrainedModel: String? = nil,
                stepInterval: Int = 1000, numTrials: Int = 10, includeScopes: [String] = [],
                excludeScopes: [String] = [], fp32Layers: [String] = [], postQuant: Bool = false,
                int8Winograd: Bool = false, perChannel: Bool = false, unsignedAfterReLU: Bool = false) {
        self.bits = bits
        self.wbits = wbits
        self.signed = signed
        self.pretrainedModel = pretrainedModel
        self.stepInterval = stepInterval
        self.numTrials = numTrials
        self.includeScopes = includeScopes
        self.excludeScopes = excludeScopes
        self.fp32Layers = fp32Layers
        self.postQuant = postQuant
        self.int8Winograd = int8Winograd
        self.perChannel = perChannel
        self.unsignedAfterReLU = unsignedAfterReLU
    }

    /// The scope filter of `includeScopes` / `excludeScopes`.
    public var scopes: ScopeFilter { ScopeFilter(include: includeScopes, exclude: excludeScopes) }

    /// Checks every value that needs no model, and that `unsigned_after_relu` comes with
    /// `signed: true` (it would change nothing otherwise); the first bad one throws.
    ///
    /// - Throws: `CompressionConfigError`, naming the seed key (`quantizer.bits`), the value and
    ///   the allowed range: `"quantizer.bits must be in [1, 8], got 9"`.
    public func validate() throws {
        let range = "in [\(Self.bitRange.lowerBound), \(Self.bitRange.upperBound)]"
        for (key, value) in [("quantizer.bits", bits), ("quantizer.wbits", wbits)]
        where !Self.bitRange.contains(value) {
            throw CompressionConfigError.outOfRange(key: key, value: String(value), allowed: range)
        }
        guard stepInterval > 0 else {
            throw CompressionConfigError.outOfRange(key: "quantizer.step_interval", value: String(stepInterval),
                                                    allowed: "> 0")
        }
        guard numTrials > 0 else {
            throw CompressionConfigError.outOfRange(key: "quantizer.num_trials", value: String(numTrials),
                                                    allowed: "> 0")
        }
        if unsignedAfterReLU && !signed {
            throw CompressionConfigError.meaningless(key: "quantizer.unsigned_after_relu", value: "true",
                                                     reason: "it only applies with signed: true (with signed: false every input is unsigned already)")
        }
        for (key, scopes) in [("quantizer.include_scopes", includeScopes), ("quantizer.exclude_scopes", excludeScopes),
                              ("quantizer.fp32_layers", fp32Layers)] {
            if let index = scopes.firstIndex(where: { $0.isEmpty }) {
                throw CompressionConfigError.emptyScope(key: key, index: index)
            }
        }
    }

    enum CodingKeys: String, CodingKey {
        case bits, wbits, signed, pretrainedModel = "pretrained_model"
        case stepInterval = "step_interval", numTrials = "num_trials"
        case includeScopes = "include_scopes", excludeScopes = "exclude_scopes", fp32Layers = "fp32_layers"
        case postQuant = "post_quant", int8Winograd = "int8_winograd", perChannel = "per_channel"
        case unsignedAfterReLU = "unsigned_after_relu"
    }

    /// The seed example's spelling of `pretrained_model`, read but never written.
    enum AliasKeys: String, CodingKey {
        case pretrainModel = "pretrain_model"
    }

    /// Decodes the seed's snake_case keys; a missing key takes its default. Values are not
    /// checked here: call `validate()`.
    ///
    /// - Throws: `CompressionConfigError.conflictingKeys` when both `pretrained_model` and
    ///   `pretrain_model` are given (even with equal values: one of them is a leftover);
    ///   the decoder's errors for values of the wrong type.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let alias = try decoder.container(keyedBy: AliasKeys.self)
        let d = QuantizerConfig()
        bits = try c.decodeIfPresent(Int.self, forKey: .bits) ?? d.bits
        wbits = try c.decodeIfPresent(Int.self, forKey: .wbits) ?? d.wbits
        signed = try c.decodeIfPresent(Bool.self, forKey: .signed) ?? d.signed
        if c.contains(.pretrainedModel) && alias.contains(.pretrainModel) {
            throw CompressionConfigError.conflictingKeys(key: "quantizer.pretrained_model",
                                                         alias: "quantizer.pretrain_model")
        }
        pretrainedModel = try c.decodeIfPresent(String.self, forKey: .pretrainedModel)
            ?? alias.decodeIfPresent(String.self, forKey: .pretrainModel)
        stepInterval = try c.decodeIfPresent(Int.self, forKey: .stepInterval) ?? d.stepInterval
        numTrials = try c.decodeIfPresent(Int.self, forKey: .numTrials) ?? d.numTrials
        includeScopes = try c.decodeIfPresent([String].self, forKey: .includeScopes) ?? d.includeScopes
        excludeScopes = try c.decodeIfPresent([String].self, forKey: .excludeScopes) ?? d.excludeScopes
        fp32Layers = try c.decodeIfPresent([String].self, forKey: .fp32Layers) ?? d.fp32Layers
        postQuant = try c.decodeIfPresent(Bool.self, forKey: .postQuant) ?? d.postQuant
        int8Winograd = try c.decodeIfPresent(Bool.self, forKey: .int8Winograd) ?? d.int8Winograd
        perChannel = try c.decodeIfPresent(Bool.self, forKey: .perChannel) ?? d.perChannel
        unsignedAfterReLU = try c.decodeIfPresent(Bool.self, forKey: .unsignedAfterReLU) ?? d.unsignedAfterReLU
    }
}
