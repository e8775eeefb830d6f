/// A `quantization_plan.json` that cannot be written, read or trusted (tier 2). Each case
/// names the file; `invalidField` names the field by its JSON path (`quantized[1].weight.bits`).
public enum QuantizationPlanError: Error, Equatable, CustomStringConvertible {
    /// The file could not be read or written (missing, permissions, …).
    case io(path: String, operation: String, reason: String)
    /// Not JSON, or a key missing or of the wrong type.
    case malformed(path: String, reason: String)
    /// A plan written in another format version.
    case unsupportedVersion(path: String, found: Int, supported: Int)
    /// A field whose value no plan can hold (a bit width out of range, an unknown op type, a
    /// duplicate layer, …).
    case invalidField(path: String, field: String, reason: String)

    public var description: String {
        switch self {
        case let .io(path, operation, reason):
            return "quantization plan \(path): cannot \(operation): \(reason)"
        case let .malformed(path, reason):
            return "quantization plan \(path): \(reason); hint: rebuild it with quantize_graph"
        case let .unsupportedVersion(path, found, supported):
            return "quantization plan \(path): format version \(found) is not supported, "
                + "this build reads version \(supported)"
        case let .invalidField(path, field, reason):
            return "quantization plan \(path): \(field) \(reason)"
        }
    }
}
