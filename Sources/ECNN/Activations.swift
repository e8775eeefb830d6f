import ECTensor

/// ReLU (op type `Relu`).
public final class ReLU: Module {
    public let name: String
    public let opType = "Relu"
    public init(name: String) { self.name = name }
    public func forward(_ x: Variable, _ ctx: ForwardContext) -> Variable { x.relu() }
    public func outputShape(for input: [Int]) -> [Int] { input }
}

/// Max pooling, "valid" padding (op type `MaxPool`).
public final class MaxPool: Module {
    public let name: String
    public let opType = "MaxPool"
    public let size, stride: Int
    public init(name: String, size: Int = 2, stride: Int = 2) {
        self.name = name; self.size = size; self.stride = stride
    }
    public func forward(_ x: Variable, _ ctx: ForwardContext) -> Variable { x.maxPool2d(size: size, stride: stride) }
    public func outputShape(for input: [Int]) -> [Int] {
        [input[0], (input[1] - size) / stride + 1, (input[2] - size) / stride + 1, input[3]]
    }
}

/// `[N, H, W, C] → [N, H·W·C]` in H, W, C order (op type `Flatten`).
public final class Flatten: Module {
    public let name: String
    public let opType = "Flatten"
    public init(name: String) { self.name = name }
    public func forward(_ x: Variable, _ ctx: ForwardContext) -> Variable { x.flattened() }
    public func outputShape(for input: [Int]) -> [Int] { [input[0], input.dropFirst().reduce(1, *)] }
}

/// Global average pooling `[N, H, W, C] → [N, C]` (op type `Mean`).
public final class GlobalAvgPool: Module {
    public let name: String
    public let opType = "Mean"
    public init(name: String) { self.name = name }
    public func forward(_ x: Variable, _ ctx: ForwardContext) -> Variable { x.globalAvgPool() }
    public func outputShape(for input: [Int]) -> [Int] { [input[0], input[3]] }
}
