import EasyCompression
import Foundation

/// The pruner's costs: (1) inference of the model `launch/demo` actually prunes — the
/// extracted model of its pruning run (`--from`, default `runs/fmnist-cnn-pruned`) vs that run's
/// pruned model as trained (masked: dense shapes, so the dense model's speed), same run; (2) what
/// a pruning decision costs a training step of a ~12M-parameter model, made at once and delayed
/// by a step (computed in the background); (3) the decision payload's bytes vs raw masks.
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

    /// An MLP of ~12M parameters: 784 → 2048 → 2048 → 2048 → 1024 → 10.
    func mlp12M() throws -> Model {
        var rng = RNG(seed: 5)
        let widths = [784, 2048, 2048, 2048, 1024, 10]
        var layers: [Module] = [Flatten(name: "flatten")]
        for i in 1..<widths.count {
            layers.append(Dense(name: "fc\(i)", inputs: widths[i - 1], outputs: widths[i], rng: &rng))
            if i < widths.count - 1 { layers.append(ReLU(name: "fc\(i)/relu")) }
        }
        return Model(name: "mlp-12m", graph: try Graph.chain(layers, inputShape: [28, 28, 1]))
    }

    /// The chief's pruning work on a ~12M-parameter MLP, in a training loop driven as
    /// `CompressionHook` drives it (1 process, batch 64): `beforeStep`, the step, `afterStep`
    /// and the masks re-applied. A decision touches its trial step and the next two; its cost
    /// is measured twice, against the median of the other steps of the same run: the time
    /// spent in the pruner's calls (what training waits for: sort, masks, encode, broadcast,
    /// adopt — beyond the per-step importance update), and the whole steps' excess (that plus
    /// what a background decision takes from the training threads, plus noise). Made at once
    /// (`decisionDelay` 0) and delayed by a step (1, the trainer's default: computed in the
    /// background while the next step trains, adopted after it), runs alternated.
    func chiefWork() throws {
        let data = try Dataset.load(.train, limit: 4096)
        let interval = 5, trials = 12
        struct Costs { var calls: [Double] = [], steps: [Double] = [], step: [Double] = [], payload = PayloadChannelMetrics() }
        func run(delay: Int, into costs: inout Costs) throws {
            let model = try mlp12M()
            let pruner = try Pruner(config: PrunerConfig(compressionRatio: 0.5, stepInterval: interval, numTrials: trials)) {
                ChannelGroups.build(model: $0)
            }
            pruner.decisionDelay = delay
            let session = try MonitoredSession(model: model, optimizer: try SGD(learningRate: 0.01, momentum: 0.9))
            session.threadReplicas = options.threads
            let channel = PayloadChannel(communicator: session.communicator, sender: pruner.kind)
            try pruner.prepare(model: model, communicator: session.communicator)
            var batches = try BatchSchedule(dataset: data, batchSize: 64, seed: 1).makeIterator()
            var inCalls: [Double] = [], whole: [Double] = []
            for step in 1...(interval * trials + 3) {
                let b = batches.next()
                var calls = 0.0
                whole.append(try time {
                    calls += try time { try pruner.beforeStep(step, model: model) }
                    try session.run(images: b.images, labels: b.labels, globalBatchSize: 64)
                    calls += try time {
                        try pruner.afterStep(step, model: model, channel: channel)
                        for p in model.parameters {
                            pruner.applyMasks(to: &p.value, parameter: p.name)
                            session.optimizer.inner.forEachSlot(of: p.name) { pruner.applyMasks(to: &$0, parameter: p.name) }
                        }
                    }
                })
                inCalls.append(calls)
            }
            // Steps are 1-based: whole[s - 1]. Decision k touches steps k·interval … k·interval + 2.
            let touched = Set((1...trials).flatMap { k in (k * interval)...(k * interval + 2) })
            let plain = (3...whole.count).filter { !touched.contains($0) }
            let plainStep = median(plain.map { whole[$0 - 1] }), plainCalls = median(plain.map { inCalls[$0 - 1] })
            for k in 1...trials {
                let steps = (k * interval)...(k * interval + 2)
                costs.steps.append(steps.reduce(0.0) { $0 + whole[$1 - 1] - plainStep } / plainStep)
                costs.calls.append(steps.reduce(0.0) { $0 + inCalls[$1 - 1] - plainCalls } / plainStep)
            }
            costs.step.append(plainStep)
            costs.payload = channel.metrics
        }
        var immediate = Costs(), delayed = Costs()
        for _ in 0..<max(1, options.repeats) {
            try run(delay: 0, into: &immediate)
            try run(delay: 1, into: &delayed)
        }
        let model = try mlp12M()
        print("")
        print("== chief's pruning decisions: \(model.parameterCount) parameters (~12M MLP), 1 process × \(options.threads) thread(s), "
              + "batch 64, \(trials) trials every \(interval) steps, \(max(1, options.repeats)) run(s) of each, alternated")
        print(String(format: "one training step (median of the steps without a decision, importance updated): %.2f ms",
                     median(immediate.step + delayed.step) * 1e3))
        func line(_ label: String, _ c: Costs) {
            print(String(format: "%@ in the pruner's calls %.2f steps (quartiles %.2f…%.2f); whole steps' excess %.2f steps "
                         + "(quartiles %.2f…%.2f); median of %d decisions", label as NSString, median(c.calls), quartile(c.calls, 1),
                         quartile(c.calls, 3), median(c.steps), quartile(c.steps, 1), quartile(c.steps, 3), c.calls.count))
        }
        line("decision at once (delay 0):     ", immediate)
        line("decision delayed (the default): ", delayed)
        let payload = delayed.payload
        let sent = Double(payload.bytesSent) / Double(max(payload.calls, 1)), body = Double(payload.uncompressedBytes) / Double(max(payload.calls, 1))
        print(String(format: "decision payload: %.0f bytes (bit-packed channel masks %.0f bytes before zstd); "
                     + "element masks at one byte per weight would be %d bytes (%.0f× more)",
                     sent, body, model.parameterCount, Double(model.parameterCount) / max(sent, 1)))
        print(String(format: "RESULT decision_steps=%.3f decision_call_steps=%.3f decision_steps_immediate=%.3f decision_call_steps_immediate=%.3f",
                     median(delayed.steps), median(delayed.calls), median(immediate.steps), median(immediate.calls)))
    }

    func quartile(_ xs: [Double], _ q: Int) -> Double {
        let s = xs.sorted()
        return s.isEmpty ? 0 : s[min(s.count - 1, s.count * q / 4)]
    }
}
