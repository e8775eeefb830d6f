/// Why an ONNX file cannot become a model: each case names the file, and where there is one
/// the node, its op and what the importer supports instead.
public enum ONNXImportError: Error, Equatable, CustomStringConvertible {
    /// Not an ONNX model (protobuf decoding failed, no graph), or unreadable.
    case unreadable(file: String, reason: String)
    /// An operator set the importer was not written for.
    case unsupportedOpset(file: String, domain: String, version: Int)
    /// An operator the importer has no mapping for.
    case unsupportedOp(file: String, node: String, op: String)
    /// A supported operator used in a way the engine cannot run (an attribute value, a
    /// shape, a non-constant operand where a constant is needed…).
    case unsupportedUse(file: String, node: String, op: String, reason: String)
    /// The graph's inputs, outputs or initializers are not what a classifier needs.
    case badGraph(file: String, reason: String)

    /// The operators the importer maps, for error messages and docs.
    public static let supportedOps = [
        "Add", "AveragePool", "BatchNormalization", "Cast", "Clip", "Concat", "Constant", "Conv", "Div", "Dropout",
        "Flatten", "Gather", "Gemm", "GlobalAveragePool", "HardSigmoid", "HardSwish", "Identity", "LeakyRelu",
        "MatMul", "MaxPool", "Mul", "Pad", "ReduceMean", "Relu", "Reshape", "Shape", "Sigmoid", "Slice",
        "Softmax", "Split", "Squeeze", "Sub", "Tanh", "Transpose", "Unsqueeze",
    ]

    public var description: String {
        switch self {
        case let .unreadable(file, reason):
            return "\(file): not a readable ONNX model: \(reason)"
        case let .unsupportedOpset(file, domain, version):
            return "\(file): operator set \(domain.isEmpty ? "ai.onnx" : domain) version \(version) is not supported "
                + "(the importer reads ai.onnx opsets 11–17; re-export with opset_version=13, say)"
        case let .unsupportedOp(file, node, op):
            return "\(file): node '\(node)' is a \(op), which the importer does not support; supported operators: "
                + Self.supportedOps.joined(separator: ", ")
        case let .unsupportedUse(file, node, op, reason):
            return "\(file): node '\(node)' (\(op)): \(reason)"
        case let .badGraph(file, reason):
            return "\(file): \(reason)"
        }
    }
}
