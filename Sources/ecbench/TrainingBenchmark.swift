import EasyCompression
import Foundation

/// fmnist-cnn training throughput at batch 64 on real Fashion-MNIST batches, against the raw
/// OpenBLAS time of exactly the GEMMs one training step performs (recorded from the engine,
/// then replayed on scratch buffers), measured in the same run.
struct TrainingBenchmark {
    let options: BenchOptions

    func run() throws {
        let data = try Dataset.load(.train)
        let model = ModelZoo.make("fmnist-cnn", seed: 1)!
        let session = try MonitoredSession(model: model, optimizer: try SGD(learningRate: 0.05, momentum: 0.9))
        var batches = try BatchSchedule(dataset: data, batchSize: 64, seed: 1).makeIterator()
        func step() throws {
            let b = batches.next()
            try session.run(images: b.images, labels: b.labels, globalBatchSize: b.globalCount)
        }
        for _ in 0..<20 { try step() }

        // The GEMMs of one whole-batch step (recorded from a single pass: the recorder is not
        // thread-safe), replayed at this process's BLAS thread count.
        session.threadReplicas = 1
        var gemms: [BLAS.GEMMShape] = []
        BLAS.recorder = { gemms.append($0) }
        try step()
        BLAS.recorder = nil

        // A: thread replicas (the trainer's default on a model without batch norm), B: one
        // pass with multi-threaded BLAS, C: raw GEMM — alternated so drift hits all alike;
        // with --ab, each on the engine's kernels and on OpenBLAS in every round.
        let paths = options.fp32Paths
        var replicated: [FP32Kernels.Path: [Double]] = [:], single = replicated, raw = replicated
        for _ in 0..<options.repeats {
            for path in paths {
                FP32Kernels.active = path
                session.threadReplicas = options.threads
                replicated[path, default: []].append(try time { for _ in 0..<options.steps { try step() } } / Double(options.steps))
                session.threadReplicas = 1
                single[path, default: []].append(try time { for _ in 0..<options.steps { try step() } } / Double(options.steps))
                raw[path, default: []].append(replay(gemms, times: options.steps))
            }
        }
        FP32Kernels.active = paths[0]
        let flops = gemms.reduce(0) { $0 + $1.flops }
        print("")
        print("== training: fmnist-cnn, batch 64, \(options.threads) thread(s), median of \(options.repeats) × \(options.steps) steps"
              + (paths.count > 1 ? ", FP32 GEMM \(paths.map(\.rawValue).joined(separator: " and ")) alternated round by round" : ""))
        for path in paths {
            let e = median(replicated[path]!), e1 = median(single[path]!), g = median(raw[path]!)
            let tag = paths.count > 1 ? "[\(path.rawValue)] " : ""
            print(String(format: "%@engine, %d thread replicas: %7.2f ms/step  %7.0f samples/s", tag, options.threads, e * 1e3, 64 / e))
            print(String(format: "%@engine, one pass:          %7.2f ms/step  %7.0f samples/s", tag, e1 * 1e3, 64 / e1))
            print(String(format: "%@raw GEMM of one pass:      %7.2f ms/step  %7.0f samples/s  (%d sgemm calls, %.2f GFLOP/step, %.0f GFLOP/s)",
                         tag, g * 1e3, 64 / g, gemms.count, Double(flops) / 1e9, Double(flops) / g / 1e9))
            print(String(format: "%@engine / raw GEMM time: %.2f× (replicas), %.2f× (one pass)   (TensorFlow 2.21 Keras on the AMD kind: ~4,800 samples/s, docs/benchmarks.md)",
                         tag, e / g, e1 / g))
        }
        if paths.count > 1 {
            let (own, blas) = (paths[0], paths[1])
            func ratio(_ t: [FP32Kernels.Path: [Double]]) -> Double { median(t[blas]!) / median(t[own]!) }
            print(String(format: "%@ / OpenBLAS throughput: %.2f× (replicas), %.2f× (one pass), %.2f× (raw GEMM)",
                         own.rawValue, ratio(replicated), ratio(single), ratio(raw)))
            print(String(format: "RESULT ab_train_replicas_ratio=%.3f ab_one_pass_ratio=%.3f ab_raw_gemm_ratio=%.3f",
                         ratio(replicated), ratio(single), ratio(raw)))
        }
        let e = median(replicated[paths[0]]!), e1 = median(single[paths[0]]!), g = median(raw[paths[0]]!)
        print(String(format: "peak RSS after training: %.0f MB (TensorFlow: ~1,260 MB)", peakRSSMegabytes()))
        print(String(format: "RESULT train_samples_per_second=%.1f one_pass_samples_per_second=%.1f engine_over_gemm=%.3f peak_rss_mb=%.0f",
                     64 / e, 64 / e1, e / g, peakRSSMegabytes()))
    }

    /// Training throughput of the whole MPI job: each rank trains on its shard of every global
    /// batch of 64, gradients allreduced; the chief reports global samples per second.
    func runDataParallel(world: Communicator) throws {
        let data = try Dataset.load(.train)
        let model = ModelZoo.make("fmnist-cnn", seed: 1)!
        let session = try MonitoredSession(model: model, optimizer: try SGD(learningRate: 0.05, momentum: 0.9),
                                           communicator: world)
        session.threadReplicas = options.threads  // as the trainer does: one pass per thread
        var batches = try BatchSchedule(dataset: data, batchSize: 64, seed: 1).makeIterator(rank: world.rank,
                                                                                            worldSize: world.size)
        func step() throws {
            let b = batches.next()
            try session.run(images: b.images, labels: b.labels, globalBatchSize: b.globalCount)
        }
        for _ in 0..<20 { try step() }
        // The gradient sum's time: the trainer's flat-buffer allreduce (every gradient a view of
        // one buffer: one call per step), plus the bucketed fallback should a gradient leave it.
        // (Reading the bucketer's metrics alone printed 0.00 ms: the flat path bypasses it.)
        let optimizer = session.optimizer
        func reduceTotals() -> (seconds: Double, calls: Int) {
            (optimizer.flatSeconds + optimizer.bucketer.metrics.seconds, optimizer.flatCalls + optimizer.bucketer.metrics.steps)
        }
        let reduceStart = reduceTotals()
        var rates: [Double] = []
        for _ in 0..<options.repeats {
            try world.barrier()
            let t = try time { for _ in 0..<options.steps { try step() } }
            var slowest = [t]
            try world.allreduce(&slowest, op: .max)
            rates.append(Double(64 * options.steps) / slowest[0])
        }
        let reduceEnd = reduceTotals()
        let timedSteps = options.repeats * options.steps
        let reduceMs = world.size > 1 ? (reduceEnd.seconds - reduceStart.seconds) / Double(timedSteps) * 1e3 : 0
        if world.isChief {
            print(String(format: "data-parallel training: %d ranks × %d thread(s): %.0f samples/s (median of %d × %d steps); "
                         + "gradient allreduce %.2f ms/step (%d calls in %d steps; includes waiting for the slower rank)",
                         world.size, options.threads, median(rates), options.repeats, options.steps, reduceMs,
                         reduceEnd.calls - reduceStart.calls, timedSteps))
            print(String(format: "RESULT train_samples_per_second=%.1f", median(rates)))
        }
    }

    /// Seconds per step of calling sgemm with exactly the recorded shapes.
    func replay(_ gemms: [BLAS.GEMMShape], times: Int) -> Double {
        let size = gemms.map { max($0.m * $0.k, $0.k * $0.n, $0.m * $0.n) }.max() ?? 1
        let a = UnsafeMutablePointer<Float>.allocate(capacity: size), b = UnsafeMutablePointer<Float>.allocate(capacity: size)
        let c = UnsafeMutablePointer<Float>.allocate(capacity: size)
        defer { a.deallocate(); b.deallocate(); c.deallocate() }
        for i in 0..<size { a[i] = Float(i % 7) * 0.1; b[i] = Float(i % 5) * 0.1; c[i] = 0 }
        return time {
            for _ in 0..<times {
                for s in gemms {
                    BLAS.sgemm(transA: s.transA, transB: s.transB, m: s.m, n: s.n, k: s.k, a: a, b: b, c: c)
                }
            }
        } / Double(times)
    }
}
