import ECTensor

/// Per-forward-pass state: the tape to record on (nil for inference) and train/eval mode.
public final class ForwardContext {
    public let tape: Tape?
    public let training: Bool
    /// Rewrites weight layers' operands (fake quantization); set from `Model.transform`.
    public var transform: LayerTransform?
    /// Where this pass's parameter gradients go: each `Parameter.grad` when nil, else this
    /// accumulator — so several passes can run on one model at once (thread replicas).
    public let gradients: GradientAccumulator?
    /// Settings of an inference pass (which kernels may run block-sparse); ignored when recording.
    public let inferenceOptions: InferenceOptions
    /// Synchronised batch norm: in training, batch-norm layers sum their batch statistics over
    /// every pass of the global batch through this (nil: each pass normalises with its own).
    public var batchStatistics: BatchStatisticsReducer?
    /// This pass's share of a global batch that several passes (thread replicas, ranks) train
    /// on together; nil when the pass is the whole batch. Values computed "per batch" (LSQ's
    /// step-size gradient scale) use the global batch.
    public var batchShare: BatchShare?
    /// When set, each trainable parameter's gradient of this pass is handed here, once, as soon
    /// as it is final — the backward pass has visited the parameter's leaf, so every use of it
    /// has contributed — instead of going to `gradients` or `Parameter.grad`. The training
    /// session starts summing a bucket of gradients over the ranks while backward still runs
    /// (docs/distributed.md). A parameter the pass does not reach is never handed over.
    public var gradientSink: ((Parameter, Tensor) -> Void)?
    private var bound: [ObjectIdentifier: Variable] = [:]

    public init(tape: Tape?, training: Bool, gradients: GradientAccumulator? = nil,
                inferenceOptions: InferenceOptions = .standard) {
        self.tape = tape
        self.training = training
        self.gradients = gradients
        self.inferenceOptions = inferenceOptions
    }

    /// A training context recording on a fresh tape.
    public static func training() -> ForwardContext { ForwardContext(tape: Tape(), training: true) }
    /// An inference context: nothing recorded, batch norm uses running statistics.
    public static func inference(_ options: InferenceOptions = .standard) -> ForwardContext {
        ForwardContext(tape: nil, training: false, inferenceOptions: options)
    }

    /// The graph node for `parameter`: a leaf whose gradient accumulates into `parameter.grad`
    /// when recording, else a constant. A parameter used twice in one pass is bound once.
    public func variable(for parameter: Parameter) -> Variable {
        let key = ObjectIdentifier(parameter)
        if let v = bound[key] { return v }
        let v: Variable
        if let tape, parameter.isTrainable, let sink = gradientSink {
            v = tape.leaf(parameter.value) { [unowned parameter] g in sink(parameter, g) }
        } else if let tape, parameter.isTrainable, let gradients {
            v = tape.leaf(parameter.value) { [unowned parameter] g in gradients.add(g, for: parameter) }
        } else if let tape, parameter.isTrainable {
            v = tape.leaf(parameter.value) { [unowned parameter] g in parameter.accumulateGrad(g) }
        } else {
            v = Variable(parameter.value)
        }
        bound[key] = v
        return v
    }
}

/// The samples of one pass and of the global batch the passes of a training step make up.
public struct BatchShare: Equatable, Sendable {
    /// Samples in this pass (> 0).
    public let pass: Int
    /// Samples in the global batch (≥ `pass`).
    public let global: Int

    public init(pass: Int, global: Int) {
        precondition(pass > 0 && global >= pass, "BatchShare: \(pass) samples of a global batch of \(global)")
        self.pass = pass
        self.global = global
    }

    /// The element count of a per-sample tensor over the global batch, from this pass's
    /// `count` (a multiple of `pass`: the batch is a factor of every activation's size).
    public func globalCount(_ count: Int) -> Int { count / pass * global }
}

/// Parameter gradients of one forward/backward pass, kept apart from `Parameter.grad`.
public final class GradientAccumulator {
    /// Gradient by parameter identity (only parameters the pass used).
    public private(set) var gradients: [ObjectIdentifier: Tensor] = [:]
    /// Gradients of values that are not parameters (a layer transform's step sizes), by key.
    public private(set) var extras: [String: Tensor] = [:]

    public init() {}

    /// Adds `g` to the gradient of `parameter`.
    public func add(_ g: Tensor, for parameter: Parameter) {
        let key = ObjectIdentifier(parameter)
        precondition(g.count == parameter.value.count, "\(parameter.name): gradient \(g.shape) does not fit \(parameter.shape)")
        if gradients[key] == nil {
            gradients[key] = g
        } else {
            gradients[key]!.addScaled(g)
        }
    }

    /// Adds `g` to the gradient kept under `key` (for values that are not parameters).
    public func add(_ g: Tensor, key: String) {
        if extras[key] == nil {
            extras[key] = g
        } else {
            extras[key]!.addScaled(g)
        }
    }

    /// The gradient of `parameter`, nil when the pass did not use it.
    public func gradient(of parameter: Parameter) -> Tensor? { gradients[ObjectIdentifier(parameter)] }
}

/// A network building block with a scope name, an op type and explicitly listed parameters
/// and children (no reflection).
public protocol Module: AnyObject {
    /// Scope path of this module (`conv1`, `block2/conv1`); empty for an unnamed container.
    var name: String { get }
    /// TensorFlow-style op type compressors select on: `Conv2D`, `MatMul`, `FusedBatchNorm`,
    /// `Relu`, `MaxPool`, `Flatten`, `Mean`, `Graph`.
    var opType: String { get }
    /// Parameters owned directly by this module.
    var ownParameters: [Parameter] { get }
    /// Child modules in execution order.
    var children: [Module] { get }
    /// Forward pass of one batch.
    func forward(_ x: Variable, _ ctx: ForwardContext) -> Variable
    /// Output shape for an input shape (batch dimension included).
    func outputShape(for input: [Int]) -> [Int]
    /// Why an input of this shape (batch dimension included) does not fit, nil when it does —
    /// checked before `outputShape` when a graph is built.
    func inputProblem(_ input: [Int]) -> String?
    /// Forward multiply-adds × 2 for one sample of the given per-sample input shape.
    func flops(for input: [Int]) -> Int
}

extension Module {
    public var ownParameters: [Parameter] { [] }
    public var children: [Module] { [] }
    public func flops(for input: [Int]) -> Int { 0 }
    public func inputProblem(_ input: [Int]) -> String? { nil }

    /// Every parameter of this module and its descendants, in canonical (name-sorted) order.
    public var parameters: [Parameter] {
        var all: [Parameter] = []
        collect(into: &all)
        return all.sorted { $0.name < $1.name }
    }

    private func collect(into all: inout [Parameter]) {
        all += ownParameters
        for c in children { c.collect(into: &all) }
    }

    /// This module and all descendants, depth-first in execution order.
    public var allModules: [Module] {
        [self] + children.flatMap { $0.allModules }
    }

    /// The parameter with the given scope path.
    public func parameter(named name: String) -> Parameter? {
        parameters.first { $0.name == name }
    }

    /// Number of elements of all parameters (running statistics included when `includeState`).
    public func parameterCount(includeState: Bool = false) -> Int {
        parameters.filter { includeState || $0.isTrainable }.reduce(0) { $0 + $1.value.count }
    }

    /// Sets every gradient to zero (once per training step).
    public func zeroGrad() {
        for p in parameters where p.isTrainable { p.zeroGrad() }
    }
}

/// Joins scope components with "/", skipping empty ones.
public func scopePath(_ parts: String...) -> String {
    parts.filter { !$0.isEmpty }.joined(separator: "/")
}
