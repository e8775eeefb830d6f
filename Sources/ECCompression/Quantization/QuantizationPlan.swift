/// Which tensors of which layers get quantized, and how: what `quantize_graph` records in the
/// model directory (`quantization_plan.json`) so that training, evaluation and export act on
/// the same tensors.
///
/// ```json
/// {
///   "format_version": 1,
///   "model": "fmnist-cnn",
///   "quantized": [
///     {"layer": "conv1", "op_type": "Conv2D", "reads_model_input": true,
///      "weight": {"parameter": "conv1/weight", "bits": 8, "signed": true, "per_channel": false},
///      "input": {"bits": 8, "signed": false}},
///     {"layer": "conv2", "op_type": "Conv2D", "reads_model_input": false,
///      "weight": {"parameter": "conv2/weight", "bits": 8, "signed": true, "per_channel": false},
///      "input": {"bits": 8, "signed": true}}
///   ],
///   "fp32": [{"layer": "fc2", "op_type": "MatMul", "reason": "fp32_layers"}]
/// }
/// ```
///
/// Both lists are in model execution order (`QuantizableLayer.all(in:)`). With `post_quant`
/// each quantized layer also has `"output": {"bits": …, "signed": …}`. Keys are written sorted.
public struct QuantizationPlan: Codable, Equatable, Sendable {
    /// The plan's file name inside the model directory.
    public static let fileName = "quantization_plan.json"
    /// The format this build writes and reads.
    public static let currentFormatVersion = 1

    /// Format of the file (`currentFormatVersion` when built).
    public var formatVersion: Int
    /// The model's zoo name.
    public var model: String
    /// The layers that get fake quantization, in execution order.
    public var quantized: [QuantizedLayer]
    /// The quantizable layers left in FP32, in execution order, with the reason.
    public var fp32: [FP32Layer]

    public init(formatVersion: Int = QuantizationPlan.currentFormatVersion, model: String,
                quantized: [QuantizedLayer], fp32: [FP32Layer]) {
        self.formatVersion = formatVersion
        self.model = model
        self.quantized = quantized
        self.fp32 = fp32
    }

    enum CodingKeys: String, CodingKey {
        case formatVersion = "format_version", model, quantized, fp32
    }
}

/// The quantization of one tensor: LSQ with `bits` bits, signed ([−2^(b−1), 2^(b−1) − 1]) or
/// unsigned ([0, 2^b − 1]).
public struct TensorQuantization: Codable, Equatable, Sendable {
    public var bits: Int
    public var signed: Bool

    public init(bits: Int, signed: Bool) {
        self.bits = bits
        self.signed = signed
    }
}

/// The quantization of a layer's weight: always signed; one step size per tensor, or per
/// output channel (the kernel's last dimension) when `perChannel`.
public struct WeightQuantization: Codable, Equatable, Sendable {
    /// The kernel's parameter name (`conv1/weight`).
    public var parameter: String
    public var bits: Int
    /// Always true: weights are centred on zero.
    public var signed: Bool
    public var perChannel: Bool

    public init(parameter: String, bits: Int, signed: Bool = true, perChannel: Bool) {
        self.parameter = parameter
        self.bits = bits
        self.signed = signed
        self.perChannel = perChannel
    }

    enum CodingKeys: String, CodingKey { case parameter, bits, signed, perChannel = "per_channel" }
}

/// One quantized layer of the plan.
public struct QuantizedLayer: Codable, Equatable, Sendable {
    /// The layer's scope (`block2/shortcut`).
    public var layer: String
    /// `Conv2D` or `MatMul`.
    public var opType: String
    /// Whether the layer reads the image itself (see `input`).
    public var readsModelInput: Bool
    public var weight: WeightQuantization
    /// The input activation, always quantized (`bits`); signed as configured, except for a
    /// layer that reads the image: pixels are ≥ 0, so a signed grid would waste its negative
    /// half (one bit), and that input is quantized unsigned.
    public var input: TensorQuantization
    /// The output activation (`bits`, signed as configured) with `post_quant`, else nil.
    public var output: TensorQuantization?
    /// With `int8_winograd`, for a 3×3 stride-1 `same` Conv2D: the convolution runs through
    /// Winograd F(2×2, 3×3), and the weight (`weight.bits`) and the transformed input tiles
    /// (`input.bits`, signed) are quantized in the Winograd domain. Absent in files: false.
    public var winograd: Bool

    public init(layer: String, opType: String, readsModelInput: Bool, weight: WeightQuantization,
                input: TensorQuantization, output: TensorQuantization?, winograd: Bool = false) {
        self.layer = layer
        self.opType = opType
        self.readsModelInput = readsModelInput
        self.weight = weight
        self.input = input
        self.output = output
        self.winograd = winograd
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(layer: try c.decode(String.self, forKey: .layer), opType: try c.decode(String.self, forKey: .opType),
                  readsModelInput: try c.decode(Bool.self, forKey: .readsModelInput),
                  weight: try c.decode(WeightQuantization.self, forKey: .weight),
                  input: try c.decode(TensorQuantization.self, forKey: .input),
                  output: try c.decodeIfPresent(TensorQuantization.self, forKey: .output),
                  winograd: try c.decodeIfPresent(Bool.self, forKey: .winograd) ?? false)
    }

    enum CodingKeys: String, CodingKey {
        case layer, opType = "op_type", readsModelInput = "reads_model_input", weight, input, output, winograd
    }
}

/// A quantizable layer kept in FP32, and why.
public struct FP32Layer: Codable, Equatable, Sendable {
    /// Why a quantizable layer stays in FP32.
    public enum Reason: String, Codable, Sendable {
        /// Named in `fp32_layers` (checked first: an explicit name wins over the scopes).
        case fp32Layers = "fp32_layers"
        /// Outside `include_scopes`, or inside `exclude_scopes`.
        case outOfScope = "out_of_scope"
    }

    public var layer: String
    public var opType: String
    public var reason: Reason

    public init(layer: String, opType: String, reason: Reason) {
        self.layer = layer
        self.opType = opType
        self.reason = reason
    }

    enum CodingKeys: String, CodingKey { case layer, opType = "op_type", reason }
}
