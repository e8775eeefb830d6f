import EasyCompression
import Foundation

/// `launch/bench scale`, on every rank of a job (one rank per namespaced host, links shaped by
/// `launch/netns-lab`): data-parallel training of `--model` (fmnist-cnn, or mlp-12m: the
/// ~12M-parameter MLP of the pruner benchmark) with `--batch` samples per rank (the global batch
/// grows with the hosts), gradients summed after backward (`--overlap 0`) or during it
/// (`--overlap 1`). Prints, on the chief: the step time (the slowest rank's, median of
/// `--repeats` × `--steps`), the communication time per step (blocking: the allreduce of the
/// flat gradient buffer; overlapped: what the optimizer still waited for, the part backward did
/// not hide), and allreduce probes of 1 KiB, 1 MiB and the whole gradient alone (no training
/// beside them) for docs/scaling.md's α–β fit (Tools/scale_model.py); overlapped, also the
/// whole gradient summed alone the way the overlapped steps sum it (the same buckets, started
/// one after another on a non-blocking stream, then waited for together).
struct ScaleBenchmark {
    let options: BenchOptions
    let world: Communicator

    func run() throws {
        let model: Model
        switch options.model ?? "fmnist-cnn" {
        case "mlp-12m": model = try PrunerBenchmark(options: options).mlp12M()
        case let name:
            guard let m = ModelZoo.make(name, seed: 1) else { throw BenchError("unknown model \(name)") }
            model = m
        }
        let perRank = options.batch ?? 64
        let data = try Dataset.load(.train, limit: max(4096, perRank * world.size * 8))
        let session = try MonitoredSession(model: model, optimizer: try SGD(learningRate: 0.01, momentum: 0.9),
                                           communicator: world, overlapGradients: options.overlap)
        session.threadReplicas = options.threads
        var batches = try BatchSchedule(dataset: data, batchSize: perRank * world.size, seed: 1)
            .makeIterator(rank: world.rank, worldSize: world.size)
        func step() throws {
            let b = batches.next()
            try session.run(images: b.images, labels: b.labels, globalBatchSize: b.globalCount)
        }
        for _ in 0..<3 { try step() }
        let optimizer = session.optimizer
        func commSeconds() -> Double {
            optimizer.flatSeconds + optimizer.bucketer.metrics.seconds + optimizer.overlapWaitSeconds
        }
        /// `body` timed `rounds` times, every rank starting together; each round's slowest rank.
        func slowestRanks(_ rounds: Int, before: () -> Void = {}, _ body: () throws -> Void) throws -> [Double] {
            var times: [Double] = []
            for _ in 0..<rounds {
                before()
                try world.barrier()
                var slowest = [try time(body)]
                try world.allreduce(&slowest, op: .max)
                times.append(slowest[0])
            }
            return times
        }
        let commStart = commSeconds()
        let stepTimes = try slowestRanks(options.repeats) { for _ in 0..<options.steps { try step() } }
            .map { $0 / Double(options.steps) }
        var comm = [(commSeconds() - commStart) / Double(options.repeats * options.steps)]
        try world.allreduce(&comm, op: .max)

        // Allreduce alone, no training beside it: 1 KiB (latency), 1 MiB, the whole gradient.
        let gradientCount = model.parameters.filter(\.isTrainable).reduce(0) { $0 + $1.value.count }
        var probes: [Double] = []
        for count in [256, 262_144, gradientCount] {
            var buffer = [Float](repeating: 1, count: count)
            probes.append(median(try slowestRanks(count > 1_000_000 ? 3 : 9) {
                try buffer.withUnsafeMutableBufferPointer { try world.allreduce($0, op: .sum) }
            }))
        }
        var bucketedProbe = Double.nan
        let bucketSizes = session.optimizer.overlapBucketSizes
        if !bucketSizes.isEmpty {
            let stream = try world.makeNonBlockingAllreduce()
            let buffers = bucketSizes.map { UnsafeMutableBufferPointer<Float>.allocate(capacity: $0) }
            defer {
                stream.close()
                for b in buffers { b.deallocate() }
            }
            bucketedProbe = median(try slowestRanks(gradientCount > 1_000_000 ? 3 : 9,
                                                    before: { for b in buffers { b.initialize(repeating: 1) } }) {
                for b in buffers { try stream.start(b) }
                try stream.waitAll()
            })
        }
        if world.isChief {
            let stepMs = median(stepTimes) * 1e3
            print(String(format: "scale: %@ (%d params, gradient %.1f MB), %d host(s) × batch %d, %@: step %.1f ms, "
                         + "communication %.1f ms/step%@; allreduce alone: 1 KiB %.3f ms, 1 MiB %.2f ms, gradient %.1f ms%@",
                         model.name, model.parameterCount, Double(gradientCount * 4) / 1e6, world.size, perRank,
                         options.overlap ? "overlapped" : "blocking", stepMs, comm[0] * 1e3,
                         options.overlap ? " (not hidden by backward)" : "", probes[0] * 1e3, probes[1] * 1e3, probes[2] * 1e3,
                         bucketedProbe.isNaN ? "" : String(format: ", gradient in %d overlapped buckets %.1f ms",
                                                           bucketSizes.count, bucketedProbe * 1e3)))
            print(String(format: "RESULT scale_step_ms=%.3f scale_comm_ms=%.3f scale_allreduce_1k_ms=%.4f "
                         + "scale_allreduce_1m_ms=%.4f scale_allreduce_grad_ms=%.3f scale_bucketed_grad_ms=%.3f "
                         + "scale_gradient_bytes=%d scale_params=%d",
                         stepMs, comm[0] * 1e3, probes[0] * 1e3, probes[1] * 1e3, probes[2] * 1e3, bucketedProbe * 1e3,
                         gradientCount * 4,
                         model.parameterCount))
        }
        try session.close()
    }
}
