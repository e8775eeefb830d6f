import ECNN
import ECTensor
import Foundation
import SwiftProtobuf

/// Reads an ONNX classifier (as PyTorch's `torch.onnx.export` or tf2onnx write them, opsets
/// 11–17) into an engine `Model`: its graph, its weights, and its interface (input and output
/// names, input layout, a trailing softmax) so that an export gives the user's serving code
/// the same file shape back.
///
/// Layouts. The engine runs feature maps NHWC; ONNX's operators are NCHW. Every ONNX value is
/// kept as an engine value plus a *storage permutation* (storage axis i holds the ONNX value's
/// axis `perm[i]`): a convolution's output is ONNX `[N, C, H, W]` stored NHWC, perm
/// `[0, 2, 3, 1]`. Element-wise ops keep the permutation; an ONNX `Transpose` only changes it
/// (no data moves — so tf2onnx's NHWC ↔ NCHW transposes vanish); a `Flatten` or `Reshape`
/// of a permuted map into a `Gemm`/`MatMul` permutes the weight's rows instead of the data.
/// Only where an op needs another order than the data has (a reshape that is not a flatten
/// into a dense layer, a channel shuffle) does the graph get a real transpose.
///
/// Shape arithmetic on constants (`Shape`, `Gather`, `Unsqueeze`, `Concat`, `Cast`, …, as
/// `x.view(x.size(0), -1)` exports) is evaluated at import; the batch size stays symbolic.
public enum ONNXImporter {
    /// The model in `url`, named after the file (without extension) unless `name` is given.
    ///
    /// - Throws: `ONNXImportError` naming the file, the node and the op for anything that
    ///   cannot be imported.
    public static func load(contentsOf url: URL, name: String? = nil) throws -> Model {
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw ONNXImportError.unreadable(file: url.path, reason: (error as NSError).localizedDescription)
        }
        return try model(from: data, file: url.path, name: name ?? url.deletingPathExtension().lastPathComponent,
                         directory: url.deletingLastPathComponent())
    }

    /// The model in `data` (an ONNX `ModelProto`); `file` names it in errors. Weights kept in
    /// external data files (models over 2 GB) are read from `directory`, the model file's folder.
    public static func model(from data: Data, file: String, name: String, directory: URL? = nil) throws -> Model {
        var proto: Onnx_ModelProto
        do {
            proto = try Onnx_ModelProto(serializedBytes: data)
        } catch {
            throw ONNXImportError.unreadable(file: file, reason: "protobuf decoding failed (\(error))")
        }
        guard proto.hasGraph, !proto.graph.node.isEmpty else {
            throw ONNXImportError.unreadable(file: file, reason: "no graph")
        }
        for set in proto.opsetImport where set.domain.isEmpty || set.domain == "ai.onnx" {
            guard (7...18).contains(Int(set.version)) else {
                throw ONNXImportError.unsupportedOpset(file: file, domain: set.domain, version: Int(set.version))
            }
        }
        do {
            try ONNXExternalData.resolve(&proto.graph, directory: directory)
        } catch {
            throw ONNXImportError.badGraph(file: file, reason: error.text)
        }
        var state = try ONNXImportState(graph: proto.graph, file: file)
        return try state.run(name: name)
    }
}

extension Model {
    /// The ONNX classifier in `url` (see `ONNXImporter`).
    public convenience init(onnx url: URL) throws {
        let m = try ONNXImporter.load(contentsOf: url)
        self.init(name: m.name, graph: m.graph, interface: m.interface)
    }
}

/// An ONNX value as the engine holds it: the engine value, the ONNX shape (batch 1) and the
/// storage permutation; for a flattened feature map, the order of its features in storage.
struct ImportedValue {
    var id: Int
    var shape: [Int]
    var perm: [Int]
    /// Storage feature j holds ONNX feature `featureOrder[j]` (nil: the same order).
    var featureOrder: [Int]? = nil
    /// Zero padding a `Pad` left for the convolution or pooling that reads this value.
    var pendingPads: Padding2D? = nil

    var rank: Int { shape.count }
    /// The shape in storage order.
    var storageShape: [Int] { perm.map { shape[$0] } }
}

/// The import of one graph: the engine graph under construction and what each ONNX name is.
struct ONNXImportState {
    let file: String
    let graph: Onnx_GraphProto
    var builder: GraphBuilder
    var constants: [String: ONNXConstant] = [:]
    var values: [String: ImportedValue] = [:]
    /// Node indices reading each name.
    var readers: [String: [Int]] = [:]
    /// ONNX names that are graph outputs.
    let outputs: Set<String>
    var usedNames = Set<String>()
    var interface = ModelInterface()
    /// The batch dimension as the file writes it (a number when the export fixed it).
    var fixedBatch: Int?
    /// Nodes already handled by a neighbour (a MatMul's bias Add, a Pad folded forward).
    var consumed = Set<Int>()

    init(graph: Onnx_GraphProto, file: String) throws {
        self.file = file
        self.graph = graph
        var constants: [String: ONNXConstant] = [:]
        for t in graph.initializer {
            do {
                constants[t.name] = try ONNXConstant(t)
            } catch {
                throw ONNXImportError.badGraph(file: file, reason: "initializer '\(t.name)': \(error.text)")
            }
        }
        self.constants = constants
        let inputs = graph.input.filter { constants[$0.name] == nil }
        guard inputs.count == 1, let input = inputs.first else {
            throw ONNXImportError.badGraph(file: file, reason: "the graph has \(inputs.count) inputs (\(inputs.map(\.name))); "
                                           + "a classifier has one image (or feature) input")
        }
        guard graph.output.count == 1 else {
            throw ONNXImportError.badGraph(file: file, reason: "the graph has \(graph.output.count) outputs "
                                           + "(\(graph.output.map(\.name))); a classifier has one (the class scores)")
        }
        outputs = [graph.output[0].name]
        let dims = input.type.tensorType.shape.dim
        guard input.type.tensorType.elemType == 1 else {
            throw ONNXImportError.badGraph(file: file, reason: "input '\(input.name)' is not float32 (ONNX type \(input.type.tensorType.elemType))")
        }
        var shape = dims.map { dim -> Int in
            if case let .dimValue(v)? = dim.value, v > 0 { return Int(v) }
            return -1
        }
        guard shape.count == 4 || shape.count == 2, shape.dropFirst().allSatisfy({ $0 > 0 }) else {
            throw ONNXImportError.badGraph(file: file, reason: "input '\(input.name)' has shape \(shape.map { $0 < 0 ? "?" : "\($0)" }); "
                                           + "supported: images [N, C, H, W] or [N, H, W, C] with fixed H, W, C, or features [N, F]")
        }
        fixedBatch = shape[0] > 0 ? shape[0] : nil
        shape[0] = 1
        var readers: [String: [Int]] = [:]
        for (i, node) in graph.node.enumerated() {
            for name in node.input where !name.isEmpty { readers[name, default: []].append(i) }
        }
        self.readers = readers
        interface.inputName = input.name
        interface.outputName = graph.output[0].name
        if shape.count == 4 {
            let nchw = Self.isNCHW(shape, firstReaders: (readers[input.name] ?? []).map { graph.node[$0] })
            interface.inputLayout = nchw ? .nchw : .nhwc
            let perm = nchw ? [0, 2, 3, 1] : [0, 1, 2, 3]
            builder = GraphBuilder(inputShape: Array(perm.map { shape[$0] }.dropFirst()))
            values[input.name] = ImportedValue(id: builder.input, shape: shape, perm: perm)
        } else {
            builder = GraphBuilder(inputShape: [shape[1]])
            values[input.name] = ImportedValue(id: builder.input, shape: shape, perm: [0, 1])
        }
    }

    /// Whether an image input of `shape` is NCHW: by its readers (ONNX convolutions and
    /// pooling read NCHW; tf2onnx first transposes an NHWC input), else by which axis looks
    /// like channels.
    static func isNCHW(_ shape: [Int], firstReaders: [Onnx_NodeProto]) -> Bool {
        if firstReaders.contains(where: { ["Conv", "MaxPool", "AveragePool", "BatchNormalization", "GlobalAveragePool"].contains($0.opType) }) {
            return true
        }
        if let t = firstReaders.first(where: { $0.opType == "Transpose" }), ONNXAttributes(t).ints("perm") == [0, 3, 1, 2] {
            return false
        }
        return shape[1] <= 4 && shape[3] > 4
    }

    // MARK: - The walk

    mutating func run(name: String) throws -> Model {
        for (i, node) in graph.node.enumerated() where !consumed.contains(i) {
            do {
                try visit(i, node)
            } catch let reason as ONNXReason {
                throw ONNXImportError.unsupportedUse(file: file, node: node.name, op: node.opType, reason: reason.text)
            } catch let error as GraphError {
                throw ONNXImportError.unsupportedUse(file: file, node: node.name, op: node.opType, reason: "\(error)")
            }
        }
        let outputName = graph.output[0].name
        guard var out = values[outputName] else {
            throw ONNXImportError.badGraph(file: file, reason: "the output '\(outputName)' is "
                                           + (constants[outputName] != nil ? "a constant" : "never computed"))
        }
        do {
            if out.rank == 4 && out.shape[2] == 1 && out.shape[3] == 1 {
                out = try reshape(out, to: [out.shape[0], out.shape[1]], name: "output/flatten")
            }
            guard out.rank == 2 else {
                throw ONNXReason("the output '\(outputName)' has shape \(out.shape); a classifier outputs [N, classes]")
            }
            out = try materialize(out, name: "output")
            return Model(name: name, graph: try builder.build(output: out.id), interface: interface)
        } catch let reason as ONNXReason {
            throw ONNXImportError.badGraph(file: file, reason: reason.text)
        }
    }

    // MARK: - Names and values

    /// A unique engine node name from an ONNX node name (`/layer1/conv1/Conv` → `layer1/conv1/Conv`).
    mutating func engineName(_ node: Onnx_NodeProto, index: Int, suffix: String = "") -> String {
        var base = node.name.trimmingCharacters(in: CharacterSet(charactersIn: "/"))
        if base.isEmpty { base = "\(node.opType)_\(index)" }
        base = base.replacingOccurrences(of: ":", with: "_") + suffix
        return unique(base)
    }

    mutating func unique(_ base: String) -> String {
        var name = base, k = 2
        while usedNames.contains(name) { name = "\(base)_\(k)"; k += 1 }
        usedNames.insert(name)
        return name
    }

    /// The value named `name`, which must be computed (not a constant).
    func value(_ name: String) throws -> ImportedValue {
        if let v = values[name] { return v }
        if constants[name] != nil { throw ONNXReason("'\(name)' is a constant where the importer needs a computed value") }
        throw ONNXReason("'\(name)' is not computed by any earlier node")
    }

    /// The constant named `name`, which must be known at import time.
    func constant(_ name: String, _ what: String) throws -> ONNXConstant {
        guard let c = constants[name] else {
            throw ONNXReason("its \(what) '\(name)' must be a constant (an initializer or Constant node), it is computed")
        }
        return c
    }

    /// The node's `i`-th input name, "" when absent.
    static func input(_ node: Onnx_NodeProto, _ i: Int) -> String { i < node.input.count ? node.input[i] : "" }

    // MARK: - Layout

    /// The channels-last permutation of a rank-`r` ONNX value (`[0, 2, 3, 1]` for rank 4).
    static func channelsLast(_ r: Int) -> [Int] { r <= 2 ? Array(0..<r) : [0] + Array(2..<r) + [1] }

    /// `v` stored in the permutation `target` (a transpose in the engine graph when needed).
    mutating func arrange(_ v: ImportedValue, _ target: [Int], name: String) throws -> ImportedValue {
        var v = try materializeFeatures(v, name: name)
        guard v.perm != target else { return v }
        // New storage axis i holds ONNX axis target[i], found at old storage axis perm⁻¹[target[i]].
        let t = target.map { axis in v.perm.firstIndex(of: axis)! }
        if Self.onlyUnitAxesMove(v.storageShape, t) {
            v.id = try builder.reshape(v.id, to: Array(t.map { v.storageShape[$0] }.dropFirst()), name: unique(name + "/relayout"))
        } else {
            v.id = try builder.transpose(v.id, perm: t, name: unique(name + "/transpose"))
        }
        v.perm = target
        return v
    }

    /// `v` in ONNX order (identity permutation, features in order).
    mutating func materialize(_ v: ImportedValue, name: String) throws -> ImportedValue {
        try arrange(v, Array(0..<v.rank), name: name)
    }

    /// A flattened map whose features are stored permuted, put back in ONNX feature order.
    mutating func materializeFeatures(_ v: ImportedValue, name: String) throws -> ImportedValue {
        guard let order = v.featureOrder else { return v }
        guard order != Array(0..<order.count) else { var w = v; w.featureOrder = nil; return w }
        throw ONNXReason("a flattened feature map is read by something other than a Gemm/MatMul with constant weights; "
                         + "the importer can reorder features only inside such a layer")
    }

    /// Whether permuting axes of `shape` by `t` moves only axes of size 1 (memory order unchanged).
    static func onlyUnitAxesMove(_ shape: [Int], _ t: [Int]) -> Bool {
        t.filter { shape[$0] != 1 } == Array(shape.indices).filter { shape[$0] != 1 }
    }
}
