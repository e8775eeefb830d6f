import Foundation
import SwiftProtobuf

/// An attribute value of an ONNX node.
enum ONNXAttribute {
    case int(Int)
    case ints([Int])
    case float(Float)
}

/// Collects the nodes and initializers of one ONNX graph, giving every value a unique name.
///
/// Tensors are stored as little-endian `raw_data` (FLOAT, INT8, UINT8), as ONNX's own helpers
/// write them.
struct ONNXGraphBuilder {
    private(set) var nodes: [Onnx_NodeProto] = []
    private(set) var initializers: [Onnx_TensorProto] = []
    private var used: Set<String> = []

    /// `base` if no value or node has that name yet, else `base_2`, `base_3`, ….
    mutating func unique(_ base: String) -> String {
        var name = base, n = 1
        while used.contains(name) {
            n += 1
            name = "\(base)_\(n)"
        }
        used.insert(name)
        return name
    }

    /// Reserves a name given from outside (the graph input).
    mutating func reserve(_ name: String) {
        precondition(!used.contains(name), "ONNXGraphBuilder: \(name) is already used")
        used.insert(name)
    }

    /// Adds a FLOAT initializer and returns its (unique) name.
    mutating func floats(_ name: String, shape: [Int], _ values: [Float]) -> String {
        precondition(shape.reduce(1, *) == values.count, "\(name): \(values.count) values for shape \(shape)")
        var data = Data(capacity: values.count * 4)
        for v in values { withUnsafeBytes(of: v.bitPattern.littleEndian) { data.append(contentsOf: $0) } }
        return initializer(name, shape: shape, type: .float, data)
    }

    /// Adds an INT8 initializer and returns its name.
    mutating func int8s(_ name: String, shape: [Int], _ values: [Int8]) -> String {
        precondition(shape.reduce(1, *) == values.count, "\(name): \(values.count) values for shape \(shape)")
        return initializer(name, shape: shape, type: .int8, Data(values.map { UInt8(bitPattern: $0) }))
    }

    /// Adds a UINT8 initializer and returns its name.
    mutating func uint8s(_ name: String, shape: [Int], _ values: [UInt8]) -> String {
        precondition(shape.reduce(1, *) == values.count, "\(name): \(values.count) values for shape \(shape)")
        return initializer(name, shape: shape, type: .uint8, Data(values))
    }

    /// Adds a 1-D INT64 initializer (shapes, split sizes) and returns its name.
    mutating func int64s(_ name: String, _ values: [Int64]) -> String {
        var data = Data(capacity: values.count * 8)
        for v in values { withUnsafeBytes(of: v.littleEndian) { data.append(contentsOf: $0) } }
        return initializer(name, shape: [values.count], type: .int64, data)
    }

    private mutating func initializer(_ name: String, shape: [Int], type: Onnx_TensorProto.DataType, _ data: Data) -> String {
        var t = Onnx_TensorProto()
        t.name = unique(name)
        t.dims = shape.map(Int64.init)
        t.dataType = Int32(type.rawValue)
        t.rawData = data
        initializers.append(t)
        return t.name
    }

    /// Appends a node `opType(inputs) → output` and returns the output's name; the node is
    /// named `name` and its output `name:0` (made unique).
    @discardableResult
    mutating func node(_ opType: String, _ inputs: [String], name: String,
                       attributes: [(String, ONNXAttribute)] = []) -> String {
        nodes(opType, inputs, outputs: 1, name: name, attributes: attributes)[0]
    }

    /// Appends a node with `outputs` outputs (`name:0`, `name:1`, …) and returns their names.
    mutating func nodes(_ opType: String, _ inputs: [String], outputs: Int, name: String,
                        attributes: [(String, ONNXAttribute)] = []) -> [String] {
        var n = Onnx_NodeProto()
        n.opType = opType
        n.name = unique(name)
        n.input = inputs
        n.output = (0..<outputs).map { unique(n.name + ":\($0)") }
        n.attribute = attributes.map { key, value in
            var a = Onnx_AttributeProto()
            a.name = key
            switch value {
            case let .int(i): a.type = .int; a.i = Int64(i)
            case let .ints(v): a.type = .ints; a.ints = v.map(Int64.init)
            case let .float(f): a.type = .float; a.f = f
            }
            return a
        }
        nodes.append(n)
        return n.output
    }

    /// Renames the output of the node that produces `value` (the graph's final value) to
    /// `name`, so the graph output has a stable name. Returns false when no node produces it.
    mutating func renameOutput(_ value: String, to name: String) -> Bool {
        guard let i = nodes.lastIndex(where: { $0.output.contains(value) }), !used.contains(name) else { return false }
        for j in nodes.indices { nodes[j].input = nodes[j].input.map { $0 == value ? name : $0 } }
        nodes[i].output = nodes[i].output.map { $0 == value ? name : $0 }
        used.insert(name)
        return true
    }
}

extension Onnx_ValueInfoProto {
    /// A FLOAT tensor value with the given dimensions (`nil` = the symbolic batch dimension `N`).
    static func floatTensor(_ name: String, dims: [Int?]) -> Onnx_ValueInfoProto {
        var info = Onnx_ValueInfoProto()
        info.name = name
        info.type.tensorType.elemType = Int32(Onnx_TensorProto.DataType.float.rawValue)
        info.type.tensorType.shape.dim = dims.map { d in
            var dim = Onnx_TensorShapeProto.Dimension()
            if let d { dim.dimValue = Int64(d) } else { dim.dimParam = "N" }
            return dim
        }
        return info
    }
}
