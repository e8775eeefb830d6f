import ECTensor

/// A layer whose output activation can be fused into its own op (GEMM epilogue).
public protocol ActivationFusable: Module {
    func forward(_ x: Variable, _ ctx: ForwardContext, activation: Activation) -> Variable
}

extension Conv2D: ActivationFusable {}
extension Dense: ActivationFusable {}

/// One step of a layer list after fusion: the unit the engine runs, the ONNX exporter writes
/// and the int8 path maps onto its integer kernels.
public enum FusedStep {
    /// A layer on its own.
    case layer(Module)
    /// A Conv2D/Dense with the ReLU that follows it applied in its epilogue.
    case weightReLU(ActivationFusable, ReLU)
    /// ReLU → MaxPool as one pooling op: `maxPool(relu(x)) = max(0, maxPool(x))`, the ReLU on
    /// the 4× smaller pooled output.
    case reluMaxPool(ReLU, MaxPool)
}

/// The engine's one fusion rule, asked by everything that walks a layer list (`Sequential`,
/// the ONNX exporter, the int8 model), so the three cannot drift apart:
///
/// - ReLU → MaxPool fuses into the pooling op;
/// - Conv2D/Dense → ReLU fuses into the layer's epilogue, unless the ReLU is then pooled (the
///   pooling fusion is cheaper: it touches the pooled output only);
/// - everything else runs alone.
///
/// Same results as running the layers one by one, fewer passes over memory and fewer tensors.
/// (Conv2D → ReLU → MaxPool is therefore `.layer(conv)`, `.reluMaxPool`; the int8 path pools
/// its integer sums there — see `Int8Model`.)
public enum Fusion {
    /// The fused steps of `layers`, in order.
    public static func steps(_ layers: [Module]) -> [FusedStep] {
        var steps: [FusedStep] = []
        var i = 0
        while i < layers.count {
            let next = i + 1 < layers.count ? layers[i + 1] : nil
            let afterNext = i + 2 < layers.count ? layers[i + 2] : nil
            if let relu = layers[i] as? ReLU, let pool = next as? MaxPool {
                steps.append(.reluMaxPool(relu, pool))
                i += 2
            } else if let layer = layers[i] as? ActivationFusable, let relu = next as? ReLU, !(afterNext is MaxPool) {
                steps.append(.weightReLU(layer, relu))
                i += 2
            } else {
                steps.append(.layer(layers[i]))
                i += 1
            }
        }
        return steps
    }
}
