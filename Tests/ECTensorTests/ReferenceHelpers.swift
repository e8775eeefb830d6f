import XCTest
@testable import ECTensor

/// Row-major strides of `shape`.
func rowMajorStrides(_ shape: [Int]) -> [Int] {
    var strides = [Int](repeating: 1, count: shape.count)
    for axis in stride(from: shape.count - 2, through: 0, by: -1) { strides[axis] = strides[axis + 1] * shape[axis + 1] }
    return strides
}

/// Every multi-index of `shape` in row-major order.
func allIndices(_ shape: [Int]) -> [[Int]] {
    var result: [[Int]] = [[]]
    for d in shape { result = result.flatMap { prefix in (0..<d).map { prefix + [$0] } } }
    return result
}

/// A normal random tensor (a shorthand for tests).
func randomTensor(_ shape: [Int], seed: UInt64, std: Float = 1) -> Tensor {
    var rng = RNG(seed: seed)
    return Tensor.normal(shape: shape, std: std, rng: &rng)
}

/// Runs `body` once with one worker and once with `workers` workers (then restores the setting).
func withWorkers<R>(_ workers: Int, _ body: () -> R) -> R {
    let saved = Parallel.workers
    Parallel.workers = workers
    defer { Parallel.workers = saved }
    return body()
}

/// The value and the gradients of `f` with respect to `inputs` for the output seed `seed`.
func valueAndGradients(_ inputs: [Tensor], seed: UInt64 = 5, _ f: ([Variable]) -> Variable) -> (Tensor, [Tensor?]) {
    let tape = Tape()
    let vars = inputs.map { tape.watch($0) }
    let y = f(vars)
    tape.backward(from: y, seed: randomTensor(y.shape, seed: seed))
    return (y.value, vars.map(\.grad))
}

/// Uniform values in `[low, high)` kept at least `margin` away from each of `kinks` (where a
/// piecewise function's finite differences would straddle the kink).
func tensorAwayFromKinks(_ shape: [Int], seed: UInt64, low: Float = -5, high: Float = 5, kinks: [Float],
                         margin: Float = 0.05) -> Tensor {
    var rng = RNG(seed: seed)
    var values: [Float] = []
    while values.count < Tensor.elementCount(shape) {
        let v = low + (high - low) * rng.nextUniform()
        if kinks.allSatisfy({ abs(v - $0) >= margin }) { values.append(v) }
    }
    return Tensor(shape: shape, scalars: values)
}

/// A random permutation of `(i − n/2 + ½)·spacing`: every pair of values at least `spacing`
/// apart and none at 0, so max-pool ties and ReLU kinks stay out of reach of ±ε
/// (`spreadTensor` may move a value near 0 next to another).
func separatedTensor(_ shape: [Int], seed: UInt64, spacing: Float = 0.05) -> Tensor {
    var rng = RNG(seed: seed)
    let n = Tensor.elementCount(shape)
    var values = (0..<n).map { (Float($0 - n / 2) + 0.5) * spacing }
    values.seededShuffle(rng: &rng)
    return Tensor(shape: shape, scalars: values)
}
