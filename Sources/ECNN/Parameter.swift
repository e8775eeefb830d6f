import ECTensor

/// What a parameter is to its layer; compressors and reports select on it.
public enum ParameterRole: String, Codable, Sendable {
    case weight, bias, gamma, beta
    /// Batch-norm running statistics: state, not trained by the optimizer.
    case movingMean = "moving_mean", movingVariance = "moving_variance"
    /// A graph's fixed tensor (e.g. a per-channel scale an imported model multiplies by).
    case constant
}

/// A named, trainable (or stateful) tensor owned by a layer. A reference box: layers,
/// optimizers, communicators and compressors all see the same value.
public final class Parameter {
    /// The scope path, e.g. `conv1/weight`, `block2/conv1/bias`.
    public let name: String
    public let role: ParameterRole
    public var value: Tensor
    /// Accumulated gradient (same shape as `value`); zeroed by `zeroGrad()` each step.
    public var grad: Tensor
    /// The block-sparse form of `source` (nil: not sparse enough for `threshold`), see
    /// `SparseInference`.
    var sparseForm: (source: Tensor, threshold: Double, matrix: BlockSparseMatrix?)?

    public init(name: String, role: ParameterRole, value: Tensor) {
        self.name = name
        self.role = role
        self.value = value
        grad = Tensor(shape: value.shape, repeating: 0)
    }

    /// Whether the optimizer updates it (running statistics are not trained).
    public var isTrainable: Bool { role != .movingMean && role != .movingVariance && role != .constant }
    public var shape: [Int] { value.shape }

    public func zeroGrad() {
        grad.withUnsafeMutableBufferPointer { $0.update(repeating: 0) }
    }

    /// Adds `g` into `grad`.
    public func accumulateGrad(_ g: Tensor) {
        precondition(g.count == value.count, "\(name): gradient \(g.shape) does not fit \(value.shape)")
        grad.addScaled(g)
    }
}
