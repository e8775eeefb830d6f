import ECTensor

/// Weight initialisers (seeded). Glorot/Xavier uniform is TensorFlow/Keras's default for
/// Conv2D and Dense kernels, which the reference accuracy figures were measured with.
public enum Initializer {
    /// Glorot uniform (Glorot & Bengio 2010): U(−l, l), l = √(6 / (fanIn + fanOut)).
    /// For a kernel `[kh, kw, cin, cout]`: fanIn = kh·kw·cin, fanOut = kh·kw·cout.
    public static func glorotUniform(shape: [Int], rng: inout RNG) -> Tensor {
        let receptive = shape.dropLast(2).reduce(1, *)
        let fanIn = receptive * (shape.count >= 2 ? shape[shape.count - 2] : 1)
        let fanOut = receptive * (shape.last ?? 1)
        let limit = (6 / Float(fanIn + fanOut)).squareRoot()
        return Tensor.uniform(shape: shape, low: -limit, high: limit, rng: &rng)
    }

    /// He normal (He et al. 2015): N(0, √(2 / fanIn)), for ReLU networks with batch norm.
    public static func heNormal(shape: [Int], rng: inout RNG) -> Tensor {
        let fanIn = shape.dropLast().reduce(1, *)
        return Tensor.normal(shape: shape, std: (2 / Float(max(fanIn, 1))).squareRoot(), rng: &rng)
    }
}
