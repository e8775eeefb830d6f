import EasyCompression
import Foundation

/// The pruner's costs: (1) inference of the model `launch/demo` actually prunes — the
/// extracted model of its pruning run (`--from`, default `runs/fmnist-cnn-pruned`) vs that run's
/// pruned model as trained (masked: dense shapes, so the dense model's speed), same run; (2) the
/// chief's work for a ~10M-parameter model — the importance EMA every step and a decision
/// (sort + masks + encode + broadcast + apply) per interval — against one training step of that
/// model; (3) the decision payload's bytes vs raw masks.
struct PrunerBenchmark {
    let options: BenchOptions

    func run() throws {
        try extractedInference()
        try chiefWork()
    }

    func extractedInference() throws {
        let dir = options.from ?? "runs/fmnist-cnn-pruned"
        guard FileManager.default.fileExists(atPath: URL(fileURLWithPath: dir).appendingPathComponent("checkpoints").path) else {
            throw BenchError("no pruning run in \(dir): run STAGES=\"1 2\" launch/demo first (or give --from SAVE_DIR)")
        }
        let test = try Dataset.load(.test)
        let ft = try GapFinetune(modelDir: dir)
        let model = ft.original, small = ft.model
        var before: [InferenceSpeed] = [], after: [InferenceSpeed] = []
        for _ in 0..<options.repeats {
            before.append(InferenceSpeed.measure(model, on: test))
            after.append(InferenceSpeed.measure(small, on: test))
        }
        func med(_ xs: [InferenceSpeed], _ f: (InferenceSpeed) -> Double) -> Double { median(xs.map(f)) }
        let kept = ft.groups.filter(\.prunable).map { g in "\(g.id) \(ft.keep[g.id]?.filter { $0 }.count ?? g.channels)/\(g.channels)" }
        print("")
        print("== extracted model inference: \(dir) (channels kept: \(kept.joined(separator: ", "))), "
              + "\(small.parameterCount) of \(model.parameterCount) params, \(small.flops) of \(model.flops) FLOPs, "
              + "\(options.threads) thread(s)")
        let b256 = med(before) { $0.batch256SamplesPerSecond }, a256 = med(after) { $0.batch256SamplesPerSecond }
        let b1 = med(before) { $0.batch1Microseconds }, a1 = med(after) { $0.batch1Microseconds }
        print(String(format: "batch 256: pruned (masked) %.0f samples/s, extracted %.0f samples/s → %.2f×", b256, a256, a256 / b256))
        print(String(format: "batch 1:   pruned (masked) %.1f µs, extracted %.1f µs → %.2f× faster", b1, a1, b1 / a1))
        print(String(format: "RESULT extracted_speedup_b256=%.2f extracted_speedup_b1=%.2f", a256 / b256, b1 / a1))
    }

    /// An MLP of ~10M parameters: 784 → 2048 → 2048 → 2048 → 1024 → 10.
    func chiefWork() throws {
        var rng = RNG(seed: 5)
        let widths = [784, 2048, 2048, 2048, 1024, 10]
        var layers: [Module] = [Flatten(name: "flatten")]
        for i in 1..<widths.count {
            layers.append(Dense(name: "fc\(i)", inputs: widths[i - 1], outputs: widths[i], rng: &rng))
            if i < widths.count - 1 { layers.append(ReLU(name: "fc\(i)/relu")) }
        }
        let model = Model(name: "mlp-10m", graph: try Graph.chain(layers, inputShape: [28, 28, 1]))
        let data = try Dataset.load(.train, limit: 2048)
        let session = try MonitoredSession(model: model, optimizer: try SGD(learningRate: 0.01, momentum: 0.9))
        var batches = try BatchSchedule(dataset: data, batchSize: 64, seed: 1).makeIterator()
        func step() throws { let b = batches.next(); try session.run(images: b.images, labels: b.labels, globalBatchSize: 64) }
        for _ in 0..<3 { try step() }
        let stepTime = median(try (0..<10).map { _ in try time { try step() } })

        let world = SingleProcessCommunicator()
        let channel = PayloadChannel(communicator: world)
        let pruner = try Pruner(config: PrunerConfig(compressionRatio: 0.5, stepInterval: 1000, numTrials: 10))
        try pruner.prepare(model: model, communicator: world)
        var emaTimes: [Double] = [], decisionTimes: [Double] = []
        for s in 1...60 where s % 1000 != 0 { emaTimes.append(try time { try pruner.afterStep(s, model: model, channel: channel) }) }
        for k in 1...3 { decisionTimes.append(try time { try pruner.afterStep(k * 1000, model: model, channel: channel) }) }
        let maskTime = median((0..<5).map { _ in time {
            for p in model.parameters { pruner.applyMasks(to: &p.value, parameter: p.name) } } })
        let m = channel.metrics
        print("")
        print("== chief's pruning work: \(model.parameterCount) parameters (~10M), 1 process")
        print(String(format: "one training step (batch 64):            %8.2f ms", stepTime * 1e3))
        print(String(format: "importance EMA, every step (chief only):  %8.2f ms  (%.1f%% of a step)", median(emaTimes) * 1e3,
                     median(emaTimes) / stepTime * 100))
        print(String(format: "decision per interval (sort, masks, encode, broadcast, apply): %.2f ms  (%.2f steps)",
                     median(decisionTimes) * 1e3, median(decisionTimes) / stepTime))
        print(String(format: "re-applying the masks after a step:       %8.2f ms", maskTime * 1e3))
        let sent = Double(m.bytesSent) / Double(max(m.calls, 1)), body = Double(m.uncompressedBytes) / Double(max(m.calls, 1))
        print(String(format: "decision payload: %.0f bytes (bit-packed channel masks %.0f bytes before zstd); "
                     + "element masks at one byte per weight would be %d bytes (%.0f× more)",
                     sent, body, model.parameterCount, Double(model.parameterCount) / sent))
        print(String(format: "RESULT ema_fraction_of_step=%.4f decision_steps=%.3f", median(emaTimes) / stepTime,
                     median(decisionTimes) / stepTime))
    }
}
