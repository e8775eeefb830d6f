/// Why a model cannot be written as ONNX.
public enum ONNXExportError: Error, Equatable, CustomStringConvertible {
    /// A module kind the exporter has no ONNX form for.
    case unsupportedModule(model: String, module: String, opType: String)
    /// A quantization the ONNX QDQ operators cannot express exactly.
    case unsupportedQuantization(layer: String, reason: String)
    /// The quantization lacks a step size the plan needs, or has one of the wrong shape.
    case missingScale(layer: String, key: String)
    /// The protobuf encoder failed.
    case serialization(reason: String)

    public var description: String {
        switch self {
        case let .unsupportedModule(model, module, opType):
            return "onnx: \(model) has '\(module)' (\(opType)), which has no ONNX export; supported are Conv2D, Dense, "
                + "BatchNorm, ReLU, MaxPool, Flatten, GlobalAvgPool and element-wise adds of equal shapes"
        case let .unsupportedQuantization(layer, reason):
            return "onnx: layer '\(layer)': \(reason)"
        case let .missingScale(layer, key):
            return "onnx: layer '\(layer)' is quantized in the plan but has no step size '\(key)' of the right shape "
                + "(was the quantizer prepared and restored?)"
        case let .serialization(reason):
            return "onnx: cannot encode the model: \(reason)"
        }
    }
}
