import EasyCompression
import Foundation

/// The conv/dense products of fmnist-cnn — a training step's (forward, weight gradient, input
/// gradient of every Conv2D and Dense layer) and inference's — each timed on its own, in three
/// ways alternated round by round: the engine's own kernels (convolution kernels + own GEMM),
/// im2col + the own GEMM (the engine before the convolution kernels, and the route on paths
/// without them), and im2col + OpenBLAS. One thread, timed in thread CPU time (a thread
/// replica runs its products on one core; time spent preempted by other processes is not
/// counted), against one core's measured FMA peak.
struct ProductsBenchmark {
    let options: BenchOptions

    /// One product: what it computes, its FLOPs (2 per multiply-add), and a call that runs it
    /// on the active FP32 path with the convolution kernels on or off (`FP32Conv.enabled`).
    struct Product {
        let layer: String, what: String, flops: Int
        let run: () -> Void
    }

    /// The ways a product is run: the own kernels, im2col + own GEMM, im2col + OpenBLAS.
    enum Route: String, CaseIterable {
        case own = "own kernels", im2col = "im2col + own GEMM", openblas = "im2col + OpenBLAS"
        func activate() {
            FP32Kernels.active = self == .openblas ? .openblas : FP32Kernels.best
            FP32Conv.enabled = self == .own
        }
    }

    /// The products of fmnist-cnn's Conv2D and Dense layers at `batch`: forward only
    /// (`training` false) or forward, weight gradient and (but for the first layer) input
    /// gradient. Convolutions followed by a 2×2 pool are computed pooled, as the graph runs them
    /// (in training also recording each pooled value's winner for the backward).
    static func products(batch: Int, training: Bool) -> [Product] {
        let model = ModelZoo.make("fmnist-cnn", seed: 1)!
        let graph = model.graph
        var rng = RNG(seed: 3)
        var result: [Product] = []
        for (i, node) in graph.nodes.enumerated() {
            let shape = [batch] + graph.inputShape(ofNode: i).dropFirst()
            if let conv = node.op.layer as? Conv2D {
                let g = conv.geometry(shape)
                let x = Tensor.uniform(shape: shape, low: -1, high: 1, rng: &rng), w = conv.weight.value
                let bias = conv.bias?.value
                let dy = Tensor.uniform(shape: [batch, g.outHeight, g.outWidth, g.outChannels], low: -1, high: 1, rng: &rng)
                let flops = 2 * g.multiplyAdds
                var y = Tensor(uninitializedShape: dy.shape)
                let pooledForward = graph.pooledConvolutions.keys.contains { graph.steps[$0].nodeIndices[0] == i }
                if pooledForward {
                    var pooled = Tensor(uninitializedShape: [batch, g.outHeight / 2, g.outWidth / 2, g.outChannels])
                    var winners = [UInt8](repeating: 0, count: training ? pooled.count : 0)
                    result.append(Product(layer: conv.name, what: "forward + pool", flops: flops) {
                        if FP32Conv.enabled && FP32Conv.runs(g) {
                            if training {
                                FP32Conv.forward(g, x, w, bias: bias, poolFloor: 0, winners: &winners, into: &pooled)
                            } else {
                                FP32Conv.forward(g, x, w, bias: bias, activation: .identity, poolFloor: 0, into: &pooled)
                            }
                        } else {
                            _ = g.gemmForward(x, w, bias: bias, into: &y, keepPatches: training)
                            _ = Variable(y).maxPool2d(relu: true)
                        }
                    })
                } else {
                    result.append(Product(layer: conv.name, what: "forward", flops: flops) {
                        if FP32Conv.enabled && FP32Conv.runs(g) {
                            FP32Conv.forward(g, x, w, bias: bias, activation: .identity, into: &y)
                        } else {
                            _ = g.gemmForward(x, w, bias: bias, into: &y, keepPatches: training)
                        }
                    })
                }
                guard training else { continue }
                var scratch = Tensor(uninitializedShape: dy.shape)
                let patches = g.gemmForward(x, w, bias: bias, into: &scratch, keepPatches: true)  // the route keeps them from its forward
                var dw = Tensor(uninitializedShape: w.shape)
                result.append(Product(layer: conv.name, what: "weight gradient", flops: flops) {
                    if FP32Conv.enabled && FP32Conv.runs(g) {
                        FP32Conv.weightGradient(g, x, dy, into: &dw)
                    } else {
                        g.gemmWeightGradient(patches: patches, dy, into: &dw)
                    }
                })
                if i == 0 { continue }  // the model's input needs no gradient
                var dx = Tensor(uninitializedShape: x.shape)
                result.append(Product(layer: conv.name, what: "input gradient", flops: flops) {
                    if FP32Conv.enabled && FP32Conv.runs(g) && FP32Conv.computesInputGradient(g) {
                        FP32Conv.inputGradient(g, dy, w, into: &dx)
                    } else {
                        g.gemmInputGradient(dy, w, into: &dx)
                    }
                })
            } else if let dense = node.op.layer as? Dense {
                let n = dense.inputs, m = dense.outputs
                let x = Tensor.uniform(shape: [batch, n], low: -1, high: 1, rng: &rng), w = dense.weight.value
                let dy = Tensor.uniform(shape: [batch, m], low: -1, high: 1, rng: &rng)
                let flops = 2 * batch * n * m
                result.append(Product(layer: dense.name, what: "forward", flops: flops) { _ = x.matmul(w) })
                guard training else { continue }
                result.append(Product(layer: dense.name, what: "weight gradient", flops: flops) { _ = x.matmul(dy, transposeSelf: true) })
                result.append(Product(layer: dense.name, what: "input gradient", flops: flops) { _ = dy.matmul(w, transposeOther: true) })
            }
        }
        return result
    }

    /// Median (and fastest) thread-CPU seconds per call of each product on each route.
    func time(_ products: [Product]) -> [[Route: (median: Double, best: Double)]] {
        let routes = Route.allCases
        var samples = [[Route: [Double]]](repeating: [:], count: products.count)
        func now() -> UInt64 {
            var t = timespec()
            clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t)
            return UInt64(t.tv_sec) * 1_000_000_000 + UInt64(t.tv_nsec)
        }
        for r in routes { r.activate(); products.forEach { $0.run() } }  // warm-up
        for _ in 0..<options.repeats {
            for (i, p) in products.enumerated() {
                for r in routes {
                    r.activate()
                    var calls = 0
                    let start = now()
                    var elapsed: UInt64 = 0
                    repeat {
                        p.run()
                        calls += 1
                        elapsed = now() - start
                    } while elapsed < 2_000_000
                    samples[i][r, default: []].append(Double(elapsed) / 1e9 / Double(calls))
                }
            }
        }
        Route.own.activate()
        return samples.map { $0.mapValues { (median($0), $0.min()!) } }
    }

    /// Prints the table of one workload and returns (own seconds, im2col seconds, OpenBLAS
    /// seconds, FLOPs) summed over its products.
    @discardableResult
    func report(_ title: String, _ products: [Product], peak: Double) -> [Route: Double] {
        let t = time(products)
        print("")
        print("-- \(title): \(products.count) products; GFLOP/s on one thread (thread CPU time), median of \(options.repeats) alternated rounds")
        var rows: [[String]] = [["product", "MFLOP"] + Route.allCases.map(\.rawValue) + ["own / im2col+own", "own / OpenBLAS", "own % of peak"]]
        var total: [Route: Double] = [:], fastest: [Route: Double] = [:]
        for (p, s) in zip(products, t) {
            for r in Route.allCases { total[r, default: 0] += s[r]!.median; fastest[r, default: 0] += s[r]!.best }
            let g = { (r: Route) in Double(p.flops) / s[r]!.median / 1e9 }
            rows.append(["\(p.layer) \(p.what)", String(format: "%.1f", Double(p.flops) / 1e6)]
                        + Route.allCases.map { String(format: "%.1f", g($0)) }
                        + [String(format: "%.2f×", s[.im2col]!.median / s[.own]!.median),
                           String(format: "%.2f×", s[.openblas]!.median / s[.own]!.median),
                           String(format: "%.0f%%", 100 * g(.own) * 1e9 / peak)])
        }
        print(TextTable.render(rows))
        let flops = Double(products.reduce(0) { $0 + $1.flops })
        for r in Route.allCases {
            print(String(format: "   all on %@: %8.3f ms  (%.1f GFLOP/s, %.0f%% of one core's peak; fastest rounds %.3f ms, %.0f%%)",
                         r.rawValue, total[r]! * 1e3, flops / total[r]! / 1e9, 100 * flops / total[r]! / peak,
                         fastest[r]! * 1e3, 100 * flops / fastest[r]! / peak))
        }
        return total.merging([:]) { a, _ in a }
    }

    func run() throws {
        let peak = FP32Kernels.measurePeak(path: FP32Kernels.best, seconds: 0.5)
        print("")
        print("== conv/dense products of fmnist-cnn: own kernels (\(FP32Kernels.best.rawValue)) vs im2col + own GEMM vs im2col + OpenBLAS "
              + "(core \(BLAS.coreName)), one thread; figures are preliminary on a shared machine")
        print(String(format: "FMA peak of one core (%@, measured): %.0f GFLOP/s", FP32Kernels.best.rawValue, peak / 1e9))
        let saved = Parallel.workers
        Parallel.workers = 1
        BLAS.setThreads(1)
        defer { Parallel.workers = saved; BLAS.setThreads(options.threads) }
        let step = report("training step, one thread replica's share (batch 32)", Self.products(batch: 32, training: true), peak: peak)
        let flops = Double(Self.products(batch: 32, training: true).reduce(0) { $0 + $1.flops })
        report("inference, batch 256 (one slice of 128 per thread)", Self.products(batch: 128, training: false), peak: peak)
        report("inference, batch 1", Self.products(batch: 1, training: false), peak: peak)
        print(String(format: "RESULT step_products_ms_own=%.3f step_products_ms_im2col=%.3f step_products_ms_openblas=%.3f "
                     + "step_products_own_percent_of_peak=%.1f peak_gflops=%.0f",
                     step[.own]! * 1e3, step[.im2col]! * 1e3, step[.openblas]! * 1e3, 100 * flops / step[.own]! / peak, peak / 1e9))
    }
}
