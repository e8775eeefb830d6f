import EasyCompression
import Foundation

/// An imported graph runs at the speed of the built-in model it came from: fmnist-cnn is
/// exported to ONNX and imported back (the importer's layout handling makes the export's
/// transposes vanish), then the two train (thread replicas, as the trainer runs them) and
/// infer (batch 256 and batch 1) alternately, with identical weights.
struct ImportedModelBenchmark {
    let options: BenchOptions

    func run() throws {
        let builtIn = ModelZoo.make("fmnist-cnn", seed: 1)!
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("ecbench-fmnist-cnn-\(getpid()).onnx")
        defer { try? FileManager.default.removeItem(at: file) }
        try ONNXExporter.export(builtIn).data.write(to: file)
        let imported = try Model(onnx: file)
        let test = try Dataset.load(.test, limit: 1000)
        let (x, _) = test.gather(0..<64)
        let difference = imported.predict(x).maxAbsDifference(builtIn.predict(x))
        print("")
        print("== imported graph vs built-in model: fmnist-cnn exported to ONNX and imported back")
        print("nodes: built-in \(builtIn.graph.nodes.count), imported \(imported.graph.nodes.count); "
              + String(format: "max |logit difference| %.2e", difference))

        let data = try Dataset.load(.train)
        func session(_ model: Model) throws -> (MonitoredSession, () throws -> Void) {
            let s = try MonitoredSession(model: model, optimizer: try SGD(learningRate: 0.05, momentum: 0.9))
            s.threadReplicas = options.threads
            var batches = try BatchSchedule(dataset: data, batchSize: 64, seed: 1).makeIterator()
            return (s, {
                let b = batches.next()
                try s.run(images: b.images, labels: b.labels, globalBatchSize: b.globalCount)
            })
        }
        let (_, stepA) = try session(builtIn), (_, stepB) = try session(imported)
        for _ in 0..<20 { try stepA(); try stepB() }
        var trainA: [Double] = [], trainB: [Double] = []
        var inferA: [InferenceSpeed] = [], inferB: [InferenceSpeed] = []
        for _ in 0..<options.repeats {
            trainA.append(64 * Double(options.steps) / (try time { for _ in 0..<options.steps { try stepA() } }))
            trainB.append(64 * Double(options.steps) / (try time { for _ in 0..<options.steps { try stepB() } }))
            inferA.append(InferenceSpeed.measure(builtIn, on: test))
            inferB.append(InferenceSpeed.measure(imported, on: test))
        }
        let (ta, tb) = (median(trainA), median(trainB))
        let (ia, ib) = (median(inferA.map(\.batch256SamplesPerSecond)), median(inferB.map(\.batch256SamplesPerSecond)))
        let (la, lb) = (median(inferA.map(\.batch1Microseconds)), median(inferB.map(\.batch1Microseconds)))
        print(String(format: "training (%d replicas, batch 64): built-in %.0f, imported %.0f samples/s → %.3f×", options.threads, ta, tb, tb / ta))
        print(String(format: "inference batch 256: built-in %.0f, imported %.0f samples/s → %.3f×", ia, ib, ib / ia))
        print(String(format: "inference batch 1: built-in %.1f µs, imported %.1f µs → %.3f×", la, lb, la / lb))
        print(String(format: "RESULT imported_over_builtin_train=%.3f imported_over_builtin_b256=%.3f imported_over_builtin_b1=%.3f",
                     tb / ta, ib / ia, la / lb))
    }
}
