import ECTensor
import Foundation

/// A value the importer knows at import time: an initializer, a `Constant` node's tensor, or
/// what the shape arithmetic of an exporter (`Shape → Gather → Concat → Reshape`) computes
/// from them. Floats become weights and constants; integers are shapes, axes and indices,
/// where `ONNXConstant.batch` stands for the graph's (unknown) batch size.
enum ONNXConstant {
    case floats(Tensor)
    case ints([Int64], shape: [Int])

    /// The batch size inside integer shape values.
    static let batch = Int64.min

    var shape: [Int] {
        switch self {
        case let .floats(t): return t.shape
        case let .ints(_, shape): return shape
        }
    }

    /// Integer values (floats holding integers convert), nil otherwise.
    var ints: [Int64]? {
        switch self {
        case let .ints(v, _): return v
        case let .floats(t):
            let s = t.scalars
            return s.allSatisfy { $0 == $0.rounded() && abs($0) < 1e15 } ? s.map { Int64($0) } : nil
        }
    }

    /// Float values (integers convert).
    var tensor: Tensor {
        switch self {
        case let .floats(t): return t
        case let .ints(v, shape): return Tensor(shape: shape, scalars: v.map { Float($0) })
        }
    }

    /// Decodes an ONNX `TensorProto` (FLOAT, DOUBLE, INT64, INT32, INT8, UINT8, BOOL; raw or
    /// typed fields). Throws a reason string for anything else.
    init(_ t: Onnx_TensorProto) throws(ONNXReason) {
        let shape = t.dims.map { Int($0) }
        guard shape.allSatisfy({ $0 >= 0 }) else { throw ONNXReason("tensor '\(t.name)' has dims \(t.dims)") }
        let count = shape.reduce(1, *)
        guard t.unknownFields.data.isEmpty || t.hasRawData || !t.floatData.isEmpty || !t.int64Data.isEmpty
                || !t.int32Data.isEmpty || count == 0 else {
            throw ONNXReason("tensor '\(t.name)' keeps its data in an external file; save the model with its weights "
                             + "inside (onnx.save(model, path, save_as_external_data=False))")
        }
        func raw<T>(_: T.Type) throws(ONNXReason) -> [T] {
            let width = MemoryLayout<T>.size
            guard t.rawData.count == count * width else {
                throw ONNXReason("tensor '\(t.name)' \(shape) holds \(t.rawData.count) bytes, expected \(count * width)")
            }
            return t.rawData.withUnsafeBytes { bytes in (0..<count).map { bytes.loadUnaligned(fromByteOffset: $0 * width, as: T.self) } }
        }
        func typed<T>(_ values: [T]) throws(ONNXReason) -> [T] {
            guard values.count == count else {
                throw ONNXReason("tensor '\(t.name)' \(shape) holds \(values.count) values, expected \(count)")
            }
            return values
        }
        switch t.dataType {
        case 1:  // FLOAT
            self = .floats(Tensor(shape: shape, scalars: t.hasRawData ? try raw(Float.self) : try typed(t.floatData)))
        case 11:  // DOUBLE
            self = .floats(Tensor(shape: shape, scalars: try raw(Double.self).map { Float($0) }))
        case 7:  // INT64
            self = .ints(t.hasRawData ? try raw(Int64.self) : try typed(t.int64Data), shape: shape)
        case 6:  // INT32
            self = .ints((t.hasRawData ? try raw(Int32.self) : try typed(t.int32Data)).map { Int64($0) }, shape: shape)
        case 3:  // INT8
            self = .ints((t.hasRawData ? try raw(Int8.self) : try typed(t.int32Data).map { Int8(truncatingIfNeeded: $0) })
                .map { Int64($0) }, shape: shape)
        case 2, 9:  // UINT8, BOOL
            self = .ints((t.hasRawData ? try raw(UInt8.self) : try typed(t.int32Data).map { UInt8(truncatingIfNeeded: $0) })
                .map { Int64($0) }, shape: shape)
        default:
            throw ONNXReason("tensor '\(t.name)' has ONNX data type \(t.dataType); supported: float, double, int64, int32, int8, uint8, bool")
        }
    }

    init(tensor: Tensor) { self = .floats(tensor) }
    init(ints: [Int64]) { self = .ints(ints, shape: [ints.count]) }
}

/// A reason an op cannot be imported, turned into an `ONNXImportError` naming the node.
struct ONNXReason: Error {
    let text: String
    init(_ text: String) { self.text = text }
}

/// Typed access to a node's attributes, with ONNX's defaults.
struct ONNXAttributes {
    private let byName: [String: Onnx_AttributeProto]

    init(_ node: Onnx_NodeProto) {
        byName = Dictionary(node.attribute.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
    }

    func has(_ name: String) -> Bool { byName[name] != nil }
    func int(_ name: String, _ fallback: Int) -> Int { byName[name].map { Int($0.i) } ?? fallback }
    func float(_ name: String, _ fallback: Float) -> Float { byName[name].map { $0.f } ?? fallback }
    func ints(_ name: String) -> [Int]? { byName[name].map { $0.ints.map { Int($0) } } }
    func string(_ name: String, _ fallback: String) -> String {
        byName[name].map { String(decoding: $0.s, as: UTF8.self) } ?? fallback
    }
    func tensor(_ name: String) -> Onnx_TensorProto? { byName[name].flatMap { $0.hasT ? $0.t : nil } }
    var names: [String] { byName.keys.sorted() }
}
