import Dispatch
import EasyCompression
import Foundation

/// The engine's FP32 GEMM kernels against OpenBLAS on the GEMMs fmnist-cnn actually runs:
/// one training step at batch 64 (recorded from the engine) and one inference pass at batch 1
/// and at batch 256. Every shape is timed on every kernel path and on OpenBLAS, alternated
/// in the same run (median of `repeats` rounds, each repeating the call for ≥ 2 ms).
struct GEMMBenchmark {
    let options: BenchOptions

    struct Shape: Hashable {
        let s: BLAS.GEMMShape
        var label: String { "\(s.transA ? "Aᵀ" : "A")·\(s.transB ? "Bᵀ" : "B") \(s.m)×\(s.n)×\(s.k)" }
    }

    func run() throws {
        let paths = FP32Kernels.Path.allCases.filter { $0 != .openblas && $0.isSupported }
        let threads = options.threads
        print("")
        print("== FP32 GEMM: own kernels vs OpenBLAS, 1 and \(threads) thread(s), median of \(options.repeats) alternated rounds; "
              + "figures are preliminary on a shared machine")
        print("CPU: \(cpuModel())")
        print("OpenBLAS core: \(BLAS.coreName); active path: \(FP32Kernels.path) (EC_FP32_KERNEL=\(ProcessInfo.processInfo.environment["EC_FP32_KERNEL"] ?? "unset"))")
        let peak = measurePeak(threads: threads)
        let widest = FP32Kernels.best == .avx512 ? 16 : 8
        print(String(format: "FMA peak (measured, tight loop of independent FMAs on %@): %.0f GFLOP/s on one core = %.2f GHz × 2 FMA units × %d lanes × 2 FLOP; %.0f GFLOP/s on %d cores at once",
                     FP32Kernels.best.rawValue, peak.one / 1e9, peak.one / 1e9 / Double(2 * widest * 2), widest, peak.all / 1e9, threads))

        let workloads = try recordWorkloads()
        // One thread first (thread replicas run every GEMM single-threaded, and no idle
        // OpenBLAS or pool thread competes for a core; timed in thread CPU time), then
        // `threads` (wall time).
        var totals: [String: [FP32Kernels.Path: Double]] = [:]
        for threads in Set([1, threads]).sorted() {
            BLAS.setThreads(threads)
            defer { BLAS.setThreads(options.threads) }
            for (name, calls) in workloads {
                var counts: [Shape: Int] = [:], order: [Shape] = []
                for s in calls.map(Shape.init) {
                    if counts[s] == nil { order.append(s) }
                    counts[s, default: 0] += 1
                }
                print("")
                print("-- \(name): \(calls.count) sgemm calls, \(order.count) shapes; GFLOP/s per path, \(threads) thread(s)"
                  + (threads == 1 ? " (thread CPU time)" : " (wall time)"))
                let header = ["shape", "calls"] + paths.map(\.rawValue) + ["openblas", "\(FP32Kernels.best.rawValue)/openblas",
                                                                             "% of \(threads)-core peak"]
                var rows: [[String]] = []
                var total: [FP32Kernels.Path: Double] = [:], fastest: [FP32Kernels.Path: Double] = [:]
                for shape in order {
                    let (t, best) = timeWithBest(shape.s, paths: paths + [.openblas], threads: threads)
                    for (p, seconds) in t { total[p, default: 0] += seconds * Double(counts[shape]!) }
                    for (p, seconds) in best { fastest[p, default: 0] += seconds * Double(counts[shape]!) }
                    let gflops = { (p: FP32Kernels.Path) in Double(shape.s.flops) / t[p]! / 1e9 }
                    rows.append([shape.label, "\(counts[shape]!)"] + (paths + [.openblas]).map { String(format: "%.1f", gflops($0)) }
                                + [String(format: "%.2f×", t[.openblas]! / t[FP32Kernels.best]!),
                                   String(format: "%.0f%%", 100 * gflops(FP32Kernels.best) * 1e9 / (threads == 1 ? peak.one : peak.all))])
                }
                print(table(header, rows))
                let flops = Double(calls.reduce(0) { $0 + $1.flops })
                for p in paths + [.openblas] {
                    print(String(format: "   all GEMMs of the %@ on %@: %8.3f ms  (%.1f GFLOP/s; fastest rounds %.3f ms, %.1f GFLOP/s)",
                                 name, p.rawValue, total[p]! * 1e3, flops / total[p]! / 1e9, fastest[p]! * 1e3, flops / fastest[p]! / 1e9))
                }
                print(String(format: "   own (%@) / OpenBLAS time: %.2f (fastest rounds: %.2f)", FP32Kernels.best.rawValue,
                             total[FP32Kernels.best]! / total[.openblas]!, fastest[FP32Kernels.best]! / fastest[.openblas]!))
                totals["\(name), \(threads) thread(s)"] = total
            }
        }

        try compareThreading()

        let one = totals["training step (batch 64), 1 thread(s)"]!, many = totals["training step (batch 64), \(threads) thread(s)"]!
        print(String(format: "RESULT gemm_step_ms_own_1t=%.3f gemm_step_ms_openblas_1t=%.3f gemm_step_ms_own=%.3f gemm_step_ms_openblas=%.3f "
                     + "gemm_step_own_over_openblas=%.3f peak_gflops=%.0f",
                     one[FP32Kernels.best]! * 1e3, one[.openblas]! * 1e3, many[FP32Kernels.best]! * 1e3, many[.openblas]! * 1e3,
                     many[FP32Kernels.best]! / many[.openblas]!, peak.all / 1e9))
    }

    /// The GEMM calls of one fmnist-cnn training step at batch 64 (one pass, as the trainer's
    /// one-pass mode and the replay of `--mode train`), and of one inference pass at batch 1
    /// and at batch 256.
    func recordWorkloads() throws -> [(String, [BLAS.GEMMShape])] {
        let data = try Dataset.load(.train)
        let model = ModelZoo.make("fmnist-cnn", seed: 1)!
        let session = try MonitoredSession(model: model, optimizer: try SGD(learningRate: 0.05, momentum: 0.9))
        session.threadReplicas = 1
        var batches = try BatchSchedule(dataset: data, batchSize: 64, seed: 1).makeIterator()
        var gemms: [BLAS.GEMMShape] = []
        BLAS.recorder = { gemms.append($0) }
        let b = batches.next()
        try session.run(images: b.images, labels: b.labels, globalBatchSize: b.globalCount)
        let step = gemms
        gemms = []
        let (one, _) = data.gather(0..<1)
        _ = model(Variable(one), .inference())
        let single = gemms
        gemms = []
        let (big, _) = data.gather(0..<256)
        _ = model(Variable(big), .inference())
        BLAS.recorder = nil
        return [("training step (batch 64)", step), ("inference, batch 1", single), ("inference, batch 256 (one pass)", gemms)]
    }

    /// Median seconds per call of `shape` on each path, the paths alternated round by round.
    func time(_ shape: BLAS.GEMMShape, paths: [FP32Kernels.Path], threads: Int, wallTime: Bool = false) -> [FP32Kernels.Path: Double] {
        timeWithBest(shape, paths: paths, threads: threads, wallTime: wallTime).median
    }

    /// Median and fastest-round seconds per call of `shape` on each path (the paths alternated
    /// round by round; the fastest round shows what the kernels do when nothing else runs).
    func timeWithBest(_ shape: BLAS.GEMMShape, paths: [FP32Kernels.Path], threads: Int, wallTime: Bool = false)
        -> (median: [FP32Kernels.Path: Double], best: [FP32Kernels.Path: Double]) {
        let s = shape
        let aCount = s.m * s.k, bCount = s.k * s.n, cCount = s.m * s.n
        var rng = RNG(seed: 7)
        let a = (0..<aCount).map { _ in rng.nextUniform() - 0.5 }, b = (0..<bCount).map { _ in rng.nextUniform() - 0.5 }
        var c = [Float](repeating: 0, count: cCount)
        var samples: [FP32Kernels.Path: [Double]] = [:]
        a.withUnsafeBufferPointer { ap in b.withUnsafeBufferPointer { bp in c.withUnsafeMutableBufferPointer { cp in
            func call(_ p: FP32Kernels.Path) {
                BLAS.sgemm(path: p, threads: threads, transA: s.transA, transB: s.transB, m: s.m, n: s.n, k: s.k, alpha: 1,
                           a: ap.baseAddress!, lda: s.transA ? s.m : s.k, b: bp.baseAddress!, ldb: s.transB ? s.k : s.n,
                           beta: 0, c: cp.baseAddress!, ldc: s.n)
            }
            for p in paths { call(p) }  // warm-up: packing buffers, worker threads, caches
            // One thread: the calling thread's CPU time (all the work is on it, and time the
            // thread spends preempted by other processes is not counted); more: wall time.
            let clock = threads == 1 && !wallTime ? CLOCK_THREAD_CPUTIME_ID : CLOCK_MONOTONIC
            func now() -> UInt64 {
                var t = timespec()
                clock_gettime(clock, &t)
                return UInt64(t.tv_sec) * 1_000_000_000 + UInt64(t.tv_nsec)
            }
            for _ in 0..<options.repeats {
                for p in paths {
                    var calls = 0
                    let start = now()
                    var elapsed: UInt64 = 0
                    repeat {
                        call(p)
                        calls += 1
                        elapsed = now() - start
                    } while elapsed < 2_000_000
                    samples[p, default: []].append(Double(elapsed) / 1e9 / Double(calls))
                }
            }
        } } }
        return (samples.mapValues(median), samples.mapValues { $0.min()! })
    }

    /// Multi-threaded GEMMs of 5–100 µs: the kernels' own spinning workers against
    /// `DispatchQueue.concurrentPerform` (both split C the same way), and one thread.
    func compareThreading() throws {
        guard options.threads > 1, FP32Kernels.active != .openblas else { return }
        let path = FP32Kernels.active
        let shapes = [BLAS.GEMMShape(transA: false, transB: false, m: 1, n: 128, k: 3136),
                      BLAS.GEMMShape(transA: false, transB: false, m: 196, n: 64, k: 288),
                      BLAS.GEMMShape(transA: false, transB: false, m: 784, n: 32, k: 9),
                      BLAS.GEMMShape(transA: false, transB: true, m: 64, n: 3136, k: 128),
                      BLAS.GEMMShape(transA: true, transB: false, m: 288, n: 64, k: 784)]
        print("")
        print("-- threads inside a GEMM (\(path.rawValue)): µs per call (wall time), median of \(options.repeats)")
        var rows: [[String]] = []
        for s in shapes {
            var t: [String: Double] = [:]
            FP32Kernels.threading = .pool
            t["pool"] = time(s, paths: [path], threads: options.threads)[path]!
            FP32Kernels.threading = .dispatch
            t["dispatch"] = time(s, paths: [path], threads: options.threads)[path]!
            FP32Kernels.threading = .pool
            t["one"] = time(s, paths: [path], threads: 1, wallTime: true)[path]!
            rows.append([Shape(s: s).label] + ["one", "pool", "dispatch"].map { String(format: "%.1f", t[$0]! * 1e6) })
        }
        print(table(["shape", "1 thread", "\(options.threads) threads: own workers", "Dispatch"], rows))
    }

    /// Peak FP32 FLOP/s of one core, and of `threads` cores measuring at once.
    func measurePeak(threads: Int) -> (one: Double, all: Double) {
        let one = FP32Kernels.measurePeak(path: FP32Kernels.best, seconds: 0.5)
        // One thread per core, started together (Dispatch could run the loops one after the
        // other on a busy machine, which would count one core twice).
        final class Results: @unchecked Sendable {  // each thread writes its own slot
            var rates: [Double]
            init(_ n: Int) { rates = [Double](repeating: 0, count: n) }
        }
        let results = Results(threads), done = DispatchSemaphore(value: 0)
        for t in 0..<threads {
            Thread.detachNewThread {
                let rate = FP32Kernels.measurePeak(path: FP32Kernels.best, seconds: 0.5)
                results.rates.withUnsafeMutableBufferPointer { $0[t] = rate }
                done.signal()
            }
        }
        for _ in 0..<threads { done.wait() }
        return (one, results.rates.reduce(0, +))
    }

    /// "model name" (and family/model) from /proc/cpuinfo.
    func cpuModel() -> String {
        guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8) else { return "unknown" }
        func field(_ name: String) -> String? {
            text.split(separator: "\n").first { $0.hasPrefix(name) }.flatMap { $0.split(separator: ":", maxSplits: 1).last }
                .map { $0.trimmingCharacters(in: .whitespaces) }
        }
        let flags = Set((field("flags") ?? "").split(separator: " ").map(String.init))
        let isa = ["avx512f", "avx2", "fma"].filter(flags.contains).joined(separator: ", ")
        return "\(field("model name") ?? "unknown") (family \(field("cpu family") ?? "?"), model \(field("model") ?? "?")); "
            + "\(ProcessInfo.processInfo.activeProcessorCount) cores; \(isa)"
    }

    func table(_ header: [String], _ rows: [[String]]) -> String {
        let widths = header.indices.map { i in ([header] + rows).map { $0[i].count }.max()! }
        func line(_ r: [String]) -> String {
            r.enumerated().map { i, s in i == 0 ? s.padding(toLength: widths[i], withPad: " ", startingAt: 0)
                : String(repeating: " ", count: widths[i] - s.count) + s }.joined(separator: "  ")
        }
        return ([line(header)] + rows.map(line)).joined(separator: "\n")
    }
}
