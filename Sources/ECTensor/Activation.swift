/// An activation fused into the epilogue of a GEMM-based op (`linear`, `conv2d`): applied in
/// place on the output while it is still in cache, instead of a separate pass and tensor.
public enum Activation: String, Sendable {
    case identity
    case relu
}

extension Activation {
    /// Applies the activation to `y` in place.
    func apply(_ y: inout Tensor) {
        guard self == .relu else { return }
        y.withUnsafeMutableBufferPointer { p in
            let base = p.baseAddress!
            Parallel.forEach(p.count, costPerItem: 1) { r in
                for i in r { base[i] = max(base[i], 0) }
            }
        }
    }

    /// The gradient with respect to the pre-activation, given the activated output `y`.
    func backward(_ dy: Tensor, output y: Tensor) -> Tensor {
        guard self == .relu else { return dy }
        var dz = Tensor(uninitializedShape: dy.shape)
        dy.withUnsafeBufferPointer { g in y.withUnsafeBufferPointer { o in dz.withUnsafeMutableBufferPointer { d in
            let gb = g.baseAddress!, ob = o.baseAddress!, db = d.baseAddress!
            Parallel.forEach(d.count, costPerItem: 1) { r in
                for i in r { db[i] = ob[i] > 0 ? gb[i] : 0 }
            }
        } } }
        return dz
    }
}
