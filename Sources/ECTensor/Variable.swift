/// A node of the reverse-mode autograd graph: a tensor value, its accumulated gradient, and
/// the rule that sends that gradient to the node's inputs.
///
/// Nodes are created by the primitive ops (`Variable+*.swift`), each op's forward and backward
/// side by side. When no input belongs to a `Tape` the op records nothing (inference).
public final class Variable {
    public let value: Tensor
    /// The gradient of the tape's output with respect to `value`, once `backward` has run.
    public internal(set) var grad: Tensor?
    /// The tape this node was recorded on; nil for constants and inference.
    public let tape: Tape?
    var backwardRule: ((Tensor) -> Void)?
    /// Called with the final gradient of a leaf (e.g. to accumulate into a parameter).
    var leafSink: ((Tensor) -> Void)?

    /// A constant: no gradient flows into it.
    public init(_ value: Tensor) {
        self.value = value
        tape = nil
    }

    init(value: Tensor, tape: Tape?) {
        self.value = value
        self.tape = tape
        tape?.record(self)
    }

    public var shape: [Int] { value.shape }
    public var requiresGrad: Bool { tape != nil }

    /// Adds `g` to this node's gradient (taking ownership of `g` when it is the first).
    func accumulate(_ g: Tensor) {
        precondition(g.shape == value.shape || g.count == value.count,
                     "gradient shape \(g.shape) does not match value shape \(value.shape)")
        if var existing = grad {
            grad = nil
            existing.withUnsafeMutableBufferPointer { dst in
                g.withUnsafeBufferPointer { src in
                    for i in 0..<dst.count { dst[i] += src[i] }
                }
            }
            grad = existing
        } else {
            grad = g.shape == value.shape ? g : g.reshaped(value.shape)
        }
    }
}

/// Records the nodes of one forward pass in creation order, which is a topological order, and
/// runs the backward pass over them in reverse.
public final class Tape {
    private(set) var nodes: [Variable] = []

    public init() {}

    func record(_ node: Variable) { nodes.append(node) }

    /// Number of recorded nodes (for tests and diagnostics).
    public var nodeCount: Int { nodes.count }

    /// A leaf whose final gradient is handed to `sink` (used for parameters).
    public func leaf(_ value: Tensor, sink: @escaping (Tensor) -> Void) -> Variable {
        let v = Variable(value: value, tape: self)
        v.leafSink = sink
        return v
    }

    /// A leaf that keeps its gradient in `grad` (e.g. to differentiate with respect to an input).
    public func watch(_ value: Tensor) -> Variable { Variable(value: value, tape: self) }

    /// Back-propagates from `output` (seeded with ones, or with `seed`), then releases the graph.
    public func backward(from output: Variable, seed: Tensor? = nil) {
        precondition(output.tape === self, "backward from a node of another tape")
        output.grad = seed ?? Tensor(shape: output.shape, repeating: 1)
        for node in nodes.reversed() {
            guard let g = node.grad else { continue }
            if let rule = node.backwardRule {
                rule(g)
                node.backwardRule = nil
                node.grad = nil
            } else if let sink = node.leafSink {
                sink(g)
            }
        }
        nodes.removeAll(keepingCapacity: true)
    }
}

extension Variable {
    /// The tape shared by the inputs that require gradients (nil when none do).
    static func tape(of inputs: Variable?...) -> Tape? {
        var found: Tape?
        for case let v? in inputs {
            if let t = v.tape {
                precondition(found == nil || found === t, "inputs recorded on different tapes")
                found = t
            }
        }
        return found
    }

    /// Creates the result node of an op; `backward` is kept only when a tape records it.
    static func result(_ value: Tensor, inputs: Variable?..., backward: @escaping (Tensor) -> Void) -> Variable {
        result(value, inputs: inputs, backward: backward)
    }

    /// `result(_:inputs:backward:)` for an op with any number of inputs (`concat`).
    static func result(_ value: Tensor, inputs: [Variable?], backward: @escaping (Tensor) -> Void) -> Variable {
        var found: Tape?
        for case let v? in inputs where v.tape != nil { found = v.tape }
        let out = Variable(value: value, tape: found)
        if found != nil { out.backwardRule = backward }
        return out
    }
}
