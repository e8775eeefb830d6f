import ECTensor
import ECNN
import Foundation

/// A Conv2D or MatMul layer of a model, the unit the quantizer acts on: its weight and its
/// input activation get fake quantization (and its output with `post_quant`).
public struct QuantizableLayer: Equatable, Sendable {
    /// The layer's scope (`conv1`, `block2/shortcut`).
    public let name: String
    /// `Conv2D` or `MatMul`.
    public let opType: String
    /// The kernel's parameter name (`conv1/weight`).
    public let weight: String
    /// Whether the layer reads the model's input itself (the image, pixels in [0, 1]), directly
    /// or through shape-only ops (`Flatten`) — not another layer's activation.
    public let readsModelInput: Bool
    /// Whether the layer's input is never negative by construction: the output of a ReLU, of a
    /// `Clip` with a lower bound ≥ 0 (ReLU6), of a sigmoid or hard sigmoid, or of pooling, sums,
    /// products, concatenation, splitting or shape-only ops over such values.
    public let readsNonNegative: Bool
    /// Whether the layer can compute through Winograd F(2×2, 3×3) (a 3×3, stride-1, `same`
    /// Conv2D).
    public let winogradCapable: Bool

    /// Every quantizable layer of `model` in execution (node) order.
    ///
    /// A layer is quantizable when its op type is one of `QuantizerConfig.quantizableOpTypes`
    /// and it owns a weight parameter; batch norm, pooling and activations are not.
    public static func all(in model: Model) -> [QuantizableLayer] {
        let graph = model.graph
        // Whether each value is still the model's input, up to shape-only ops.
        var isInput = [Bool](repeating: false, count: graph.valueShapes.count)
        isInput[graph.input] = true
        // Whether each value is ≥ 0 by construction (the model's input is not assumed to be).
        var nonNegative = [Bool](repeating: false, count: graph.valueShapes.count)
        var found: [QuantizableLayer] = []
        for node in graph.nodes {
            let readsInput = node.inputs.first.map { isInput[$0] } ?? false
            let inputsNonNegative = !node.inputs.isEmpty && node.inputs.allSatisfy { nonNegative[$0] }
            if Self.keepsOrMakesNonNegative(node.op, inputsNonNegative: inputsNonNegative) {
                for v in node.outputs { nonNegative[v] = true }
            }
            switch node.op {
            case let .layer(module):
                if QuantizerConfig.quantizableOpTypes.contains(module.opType),
                   let weight = module.ownParameters.first(where: { $0.role == .weight }) {
                    let conv = module as? Conv2D
                    let winograd = conv.map { $0.isPlain && Winograd.applies(kernel: $0.weight.shape, stride: $0.stride, padding: $0.padding) } ?? false
                    found.append(QuantizableLayer(name: module.name, opType: module.opType, weight: weight.name,
                                                  readsModelInput: readsInput,
                                                  readsNonNegative: node.inputs.first.map { nonNegative[$0] } ?? false,
                                                  winogradCapable: winograd))
                } else if module is Flatten {
                    for v in node.outputs { isInput[v] = readsInput }
                }
            case .reshape, .transpose:
                for v in node.outputs { isInput[v] = readsInput }
            default:
                break
            }
        }
        return found
    }

    /// Whether `op`'s outputs are ≥ 0: always for ReLU, ReLU6-like clips, sigmoid and hard
    /// sigmoid; for pooling, sums, products, concatenation, splitting and shape-only ops when
    /// every input is.
    private static func keepsOrMakesNonNegative(_ op: NodeOp, inputsNonNegative: Bool) -> Bool {
        switch op {
        case let .layer(module):
            switch module {
            case is ReLU: return true
            case let activation as ActivationLayer:
                switch activation.kind {
                case let .clip(lower, _): return lower >= 0
                case .sigmoid, .hardSigmoid: return true
                default: return false
                }
            case is MaxPool, is AvgPool, is GlobalAvgPool, is Flatten: return inputsNonNegative
            default: return false
            }
        case .add, .mul, .concat, .split, .reshape, .transpose: return inputsNonNegative
        default: return false
        }
    }
}

extension QuantizerConfig {
    /// `validate()`, then the checks that need the model and the file system: every include /
    /// exclude scope matches a quantizable layer (`ScopeFilter.requireMatches`), every
    /// `fp32_layers` entry names a quantizable layer of `model`, and `pretrained_model`, if
    /// given, exists (a file or a checkpoint directory).
    ///
    /// - Throws: `CompressionConfigError`, e.g. `"quantizer.fp32_layers: 'conv9' is not a
    ///   Conv2D/MatMul layer of fmnist-cnn (layers: conv1, conv2, fc1, fc2)"` or
    ///   `"quantizer.pretrained_model: no such file or directory: /x"`.
    public func validate(against model: Model) throws {
        try validate()
        let layers = QuantizableLayer.all(in: model).map(\.name)
        try ScopeFilter.requireMatches([("quantizer.include_scopes", includeScopes),
                                        ("quantizer.exclude_scopes", excludeScopes)],
                                       candidates: layers, noun: Self.quantizableOpTypes.joined(separator: "/") + " layer",
                                       model: model.name)
        if let unknown = fp32Layers.first(where: { !layers.contains($0) }) {
            throw CompressionConfigError.unknownLayer(key: "quantizer.fp32_layers", value: unknown,
                                                      opTypes: Self.quantizableOpTypes, model: model.name,
                                                      layers: layers)
        }
        if let path = pretrainedModel, path.isEmpty || !FileManager.default.fileExists(atPath: path) {
            throw CompressionConfigError.missingFile(key: "quantizer.pretrained_model", path: path)
        }
    }
}
