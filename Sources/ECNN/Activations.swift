import ECTensor

/// ReLU (op type `Relu`).
public final class ReLU: Module {
    public let name: String
    public let opType = "Relu"
    public init(name: String) { self.name = name }
    public func forward(_ x: Variable, _ ctx: ForwardContext) -> Variable { x.relu() }
    public func outputShape(for input: [Int]) -> [Int] { input }
}

/// `[N, H, W, C] → [N, H·W·C]` in H, W, C order (op type `Flatten`).
public final class Flatten: Module {
    public let name: String
    public let opType = "Flatten"
    public init(name: String) { self.name = name }
    public func forward(_ x: Variable, _ ctx: ForwardContext) -> Variable { x.flattened() }
    public func outputShape(for input: [Int]) -> [Int] { [input[0], input.dropFirst().reduce(1, *)] }
    public func inputProblem(_ input: [Int]) -> String? { input.count >= 2 ? nil : "nothing to flatten in \(input)" }
}

/// Global average pooling `[N, H, W, C] → [N, C]` (op type `Mean`).
public final class GlobalAvgPool: Module {
    public let name: String
    public let opType = "Mean"
    public init(name: String) { self.name = name }
    public func forward(_ x: Variable, _ ctx: ForwardContext) -> Variable { x.globalAvgPool() }
    public func outputShape(for input: [Int]) -> [Int] { [input[0], input[3]] }
    public func inputProblem(_ input: [Int]) -> String? { input.count == 4 ? nil : "expects an NHWC feature map, got \(input)" }
}

/// An element-wise activation other than ReLU, as imported models use them: ReLU6 (and
/// `Clip` in general), leaky ReLU, sigmoid, hard sigmoid, hard swish, tanh.
public final class ActivationLayer: Module {
    /// The function, with its constants (ONNX defaults where ONNX has them).
    public enum Kind: Equatable, Sendable {
        case clip(min: Float, max: Float)
        case leakyRelu(alpha: Float)
        case sigmoid
        case hardSigmoid(alpha: Float, beta: Float)
        case hardSwish
        case tanh
    }

    public let name: String
    public let kind: Kind

    public init(name: String, kind: Kind) {
        self.name = name
        self.kind = kind
    }

    /// The ONNX operator's name (`Clip`, `LeakyRelu`, `Sigmoid`, `HardSigmoid`, `HardSwish`, `Tanh`).
    public var opType: String {
        switch kind {
        case .clip: return "Clip"
        case .leakyRelu: return "LeakyRelu"
        case .sigmoid: return "Sigmoid"
        case .hardSigmoid: return "HardSigmoid"
        case .hardSwish: return "HardSwish"
        case .tanh: return "Tanh"
        }
    }

    public func forward(_ x: Variable, _ ctx: ForwardContext) -> Variable {
        switch kind {
        case let .clip(lower, upper): return x.clip(min: lower, max: upper)
        case let .leakyRelu(alpha): return x.leakyRelu(alpha: alpha)
        case .sigmoid: return x.sigmoid()
        case let .hardSigmoid(alpha, beta): return x.hardSigmoid(alpha: alpha, beta: beta)
        case .hardSwish: return x.hardSwish()
        case .tanh: return x.tanh()
        }
    }

    public func outputShape(for input: [Int]) -> [Int] { input }
}
