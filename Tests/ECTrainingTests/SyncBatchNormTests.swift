import ECTestSupport
import EasyCompression
@testable import ECTraining
import XCTest

/// Synchronised batch norm inside one process: a batch cut in two halves, each normalised by
/// its own pass on its own thread, the passes meeting in the training side's reducer
/// (`SyncBatchNormStep`) — what two ranks do, with a world of one summing nothing more.
final class SyncBatchNormTests: XCTestCase {
    struct Outcome {
        var loss = 0.0
        var y: [Tensor] = []
        var dx: [Tensor] = []
        var dgamma = Tensor(shape: [0]), dbeta = Tensor(shape: [0])
        var runningMean = Tensor(shape: [0]), runningVariance = Tensor(shape: [0])
    }

    /// `Σ w·batchNorm(x)` over the batch, as `parts` passes of one step (contiguous slices of
    /// the first axis) meeting in a `SyncBatchNormStep`; with `record`, the gradients.
    func run(_ x: Tensor, gamma: Tensor, beta: Tensor, weights: Tensor, parts: Int, record: Bool) -> Outcome {
        let step = SyncBatchNormStep(communicator: SingleProcessCommunicator(), replicas: parts)
        let n = x.shape[0], c = gamma.count
        var passes = [Outcome](repeating: Outcome(), count: parts)
        passes.withUnsafeMutableBufferPointer { buffer in
            let out = buffer
            Parallel.replicasTogether(parts) { r in
                let rows = (n * r / parts)..<(n * (r + 1) / parts)
                let tape = record ? Tape() : nil
                func leaf(_ t: Tensor) -> Variable { tape?.watch(t) ?? Variable(t) }
                let xs = leaf(x.rows(rows)), g = leaf(gamma), b = leaf(beta)
                var rm = Tensor(shape: [c], repeating: 0.5), rv = Tensor(shape: [c], repeating: 2)
                let y = xs.batchNorm(gamma: g, beta: b, runningMean: &rm, runningVariance: &rv, training: true,
                                     statistics: step.reducer(replica: r))
                let w = weights.rows(rows)
                var o = Outcome()
                o.loss = zip(y.value.scalars, w.scalars).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
                o.y = [y.value]
                if let tape {
                    tape.backward(from: (y * Variable(w)).sum())
                    o.dx = [xs.grad!]
                    o.dgamma = g.grad!
                    o.dbeta = b.grad!
                }
                if r == 0 { o.runningMean = rm; o.runningVariance = rv }
                out[r] = o
            }
        }
        var total = passes[0]
        for p in passes.dropFirst() {
            total.loss += p.loss
            total.y += p.y
            total.dx += p.dx
            if record { total.dgamma.addScaled(p.dgamma); total.dbeta.addScaled(p.dbeta) }
        }
        return total
    }

    func inputs(seed: UInt64) -> (x: Tensor, gamma: Tensor, beta: Tensor, weights: Tensor) {
        var rng = RNG(seed: seed)
        let x = Tensor.normal(shape: [6, 2, 2, 3], mean: 0.5, std: 2, rng: &rng)
        return (x, Tensor.uniform(shape: [3], low: 0.5, high: 1.5, rng: &rng), Tensor.normal(shape: [3], rng: &rng),
                Tensor.uniform(shape: x.shape, low: 0.5, high: 1.5, rng: &rng))
    }

    /// The gradient of two synchronised halves (each pass's dx with the allreduced Σdy and
    /// Σdy·x̂, dγ and dβ summed over the passes) against central differences of the loss of
    /// the whole step — the same check and bounds as every engine primitive's.
    func testSyncBatchNormGradientMatchesFiniteDifferences() {
        let (x, gamma, beta, weights) = inputs(seed: 31)
        let analytic = run(x, gamma: gamma, beta: beta, weights: weights, parts: 2, record: true)
        let epsilon: Float = 1e-2, atol: Float = 3e-3, rtol: Float = 3e-2
        func loss(_ x: Tensor, _ gamma: Tensor, _ beta: Tensor) -> Double {
            run(x, gamma: gamma, beta: beta, weights: weights, parts: 2, record: false).loss
        }
        let grads = [Tensor(concatenatingRows: analytic.dx), analytic.dgamma, analytic.dbeta]
        for (i, input) in [x, gamma, beta].enumerated() {
            for j in 0..<input.count {
                var values = [x, gamma, beta]
                values[i][flat: j] += epsilon
                let plus = loss(values[0], values[1], values[2])
                values[i][flat: j] -= 2 * epsilon
                let minus = loss(values[0], values[1], values[2])
                let numeric = Float((plus - minus) / Double(2 * epsilon)), a = grads[i][flat: j]
                XCTAssertLessThanOrEqual(abs(a - numeric), atol + rtol * max(abs(a), abs(numeric)),
                                         "input \(i) element \(j): analytic \(a) vs numeric \(numeric)")
            }
        }
    }

    /// Two (and three) synchronised passes compute what one pass over the whole batch does:
    /// outputs, gradients and running statistics. Not bit for bit — the per-channel sums are
    /// added in another order — so each value is compared within 2·γₙ·Σ|terms|, the
    /// worst-case error of two summation orders of n terms (γₙ = n·u/(1 − n·u), u = 2⁻²⁴; n =
    /// the 24 elements per channel; Σ|terms| bounded by n times the largest term, taken as the
    /// tensor's largest magnitude): CPU-independent, and far below what unsynchronised halves
    /// give (each normalised by its own statistics, checked last).
    func testSynchronisedPassesNormaliseLikeOnePassOverTheWholeBatch() {
        let (x, gamma, beta, weights) = inputs(seed: 32)
        let whole = run(x, gamma: gamma, beta: beta, weights: weights, parts: 1, record: true)
        let n = Double(x.count / gamma.count), u = pow(2.0, -24.0)
        let gamma_n = n * u / (1 - n * u)
        func bound(_ t: Tensor) -> Double { 2 * gamma_n * n * Double(t.scalars.map(abs).max() ?? 0) }
        for parts in [2, 3] {
            let split = run(x, gamma: gamma, beta: beta, weights: weights, parts: parts, record: true)
            let pairs: [(String, Tensor, Tensor)] = [
                ("y", Tensor(concatenatingRows: split.y), whole.y[0]), ("dx", Tensor(concatenatingRows: split.dx), whole.dx[0]),
                ("dgamma", split.dgamma, whole.dgamma), ("dbeta", split.dbeta, whole.dbeta),
                ("moving_mean", split.runningMean, whole.runningMean),
                ("moving_variance", split.runningVariance, whole.runningVariance),
            ]
            for (name, actual, expected) in pairs {
                assertClose(actual, expected, absolute: bound(expected), "\(name), \(parts) passes")
            }
        }
        // Without the reducer each half normalises with its own statistics: far outside the bound.
        let (top, bottom) = (x.rows(0..<3), x.rows(3..<6))
        var rm = Tensor(shape: [3]), rv = Tensor(shape: [3], repeating: 1)
        let own = Tensor(concatenatingRows: [top, bottom].map {
            Variable($0).batchNorm(gamma: Variable(gamma), beta: Variable(beta), runningMean: &rm, runningVariance: &rv,
                                   training: true).value
        })
        XCTAssertGreaterThan(Double(own.maxAbsDifference(whole.y[0])), 100 * bound(whole.y[0]))
    }
}
