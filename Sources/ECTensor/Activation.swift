/// An activation fused into the epilogue of a GEMM-based op (`linear`, `conv2d`): applied in
/// place on the output while it is still in cache, instead of a separate pass and tensor.
public enum Activation: String, Sendable {
    case identity
    /// `max(x, 0)`.
    case relu
    /// `min(max(x, 0), 6)` (MobileNet's ReLU6, ONNX `Clip(0, 6)`); as `clip(min: 0, max: 6)`.
    case relu6
}

extension Activation {
    /// Applies the activation to `y` in place.
    func apply(_ y: inout Tensor) {
        guard self != .identity else { return }
        let relu6 = self == .relu6
        y.withUnsafeMutableBufferPointer { p in
            let base = p.baseAddress!
            Parallel.forEach(p.count, costPerItem: 1) { r in
                if relu6 {
                    for i in r { base[i] = min(max(base[i], 0), 6) }
                } else {
                    for i in r { base[i] = max(base[i], 0) }
                }
            }
        }
    }

    /// The gradient with respect to the pre-activation, given the activated output `y`: `dy`
    /// where the output lies strictly inside the activation's linear range (`0 < y`, and
    /// `y < 6` for ReLU6), 0 elsewhere — PyTorch's convention at the kinks.
    func backward(_ dy: Tensor, output y: Tensor) -> Tensor {
        guard self != .identity else { return dy }
        let ceiling: Float = self == .relu6 ? 6 : .infinity
        var dz = Tensor(uninitializedShape: dy.shape)
        dy.withUnsafeBufferPointer { g in y.withUnsafeBufferPointer { o in dz.withUnsafeMutableBufferPointer { d in
            let gb = g.baseAddress!, ob = o.baseAddress!, db = d.baseAddress!
            Parallel.forEach(d.count, costPerItem: 1) { r in
                if ceiling.isFinite {
                    for i in r { db[i] = ob[i] > 0 && ob[i] < ceiling ? gb[i] : 0 }
                } else {
                    for i in r { db[i] = ob[i] > 0 ? gb[i] : 0 }
                }
            }
        } } }
        return dz
    }
}
