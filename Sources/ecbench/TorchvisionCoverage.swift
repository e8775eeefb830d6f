import EasyCompression
import Foundation

/// How far the importer and the pruner reach beyond hand-made fixtures: every torchvision
/// classification architecture exported by `Tools/export_torchvision.py` (random weights, ONNX,
/// ONNX Runtime's output on a seeded input) is imported; its output compared with ONNX
/// Runtime's; one training step run; 30% of its parameters pruned (Taylor importance from that
/// step's gradients, one trial), the smaller model extracted and compared with the masked
/// model, and written as ONNX for ONNX Runtime (`Tools/torchvision_check.py` runs those).
///
///     ecbench --mode torchvision --dir .build/torchvision-onnx --out .build/torchvision-pruned
///
/// Prints one line per architecture and writes `report.json` into `--out`; with `--only NAME`
/// the named rows of an existing report are replaced and the others kept, so one architecture
/// can be rerun without redoing the rest.
struct TorchvisionCoverage {
    let options: BenchOptions

    struct Row: Codable {
        var name: String
        var params: Int?
        var imported = false
        var importError: String?
        var outputRelativeDifference: Double?
        var matches = false
        var trainStep = false
        var trainError: String?
        var prunedParams: Int?
        var extractedRelativeDifference: Double?
        var pruned = false
        var pruneError: String?
        var prunedFile: String?
    }

    func run() throws {
        let dir = URL(fileURLWithPath: options.dir ?? ".build/torchvision-onnx")
        let out = URL(fileURLWithPath: options.out ?? ".build/torchvision-pruned")
        try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
        // The manifest's exported models, or (while the export still runs) every file there.
        let names: [String]
        if let data = try? Data(contentsOf: dir.appendingPathComponent("manifest.json")),
           let manifest = try JSONSerialization.jsonObject(with: data) as? [String: Any] {
            names = (manifest["models"] as! [[String: Any]]).filter { $0["export_ok"] as? Bool == true }.map { $0["name"] as! String }
        } else {
            names = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".output.npy") }
                .map { String($0.dropLast(".output.npy".count)) }.sorted()
        }
        let reportURL = out.appendingPathComponent("report.json")
        var kept: [Row] = []
        if options.only != nil, let data = try? Data(contentsOf: reportURL) {
            kept = try JSONDecoder().decode([Row].self, from: data)
        }
        var rows: [Row] = []
        print("== torchvision coverage: \(names.count) exported architectures from \(dir.path)")
        for name in names {
            if let only = options.only, !only.contains(name) { continue }
            var row = Row(name: name)
            let start = Date()
            check(name, dir, out, &row)
            rows.append(row)
            print(String(format: "%-22@ import %@  output %@  train %@  prune30 %@  (%.0f s)%@", name as NSString,
                         row.imported ? "✓" : "✗", row.matches ? "✓" : "✗", row.trainStep ? "✓" : "✗", row.pruned ? "✓" : "✗",
                         Date().timeIntervalSince(start),
                         row.importError.map { "  — \($0.prefix(160))" } ?? row.pruneError.map { "  — \($0.prefix(160))" } ?? ""))
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            let rerun = Set(rows.map(\.name))
            let report = (kept.filter { !rerun.contains($0.name) } + rows).sorted { $0.name < $1.name }
            try encoder.encode(report).write(to: reportURL)
        }
        let imported = rows.filter(\.imported).count, matched = rows.filter(\.matches).count
        let trained = rows.filter(\.trainStep).count, pruned = rows.filter(\.pruned).count
        print("RESULT torchvision_tried=\(rows.count) imported=\(imported) matched=\(matched) trained=\(trained) pruned=\(pruned)")
    }

    private func check(_ name: String, _ dir: URL, _ out: URL, _ row: inout Row) {
        let model: Model
        do {
            model = try Model(onnx: dir.appendingPathComponent("\(name).onnx"))
            row.imported = true
            row.params = model.parameterCount
        } catch {
            row.importError = "\(error)".replacingOccurrences(of: dir.path + "/", with: "")
            if let r = row.importError?.range(of: "; supported operators:") { row.importError = String(row.importError![..<r.lowerBound]) }
            return
        }
        // The seeded input (NCHW, as torch wrote it) and ONNX Runtime's output.
        guard let input = try? NPYReader.read(path: dir.appendingPathComponent("\(name).input.npy").path),
              let expected = try? NPYReader.read(path: dir.appendingPathComponent("\(name).output.npy").path) else { return }
        let s = input.shape
        let x = Variable(Tensor(shape: s, scalars: input.floats())).transpose([0, 2, 3, 1]).value
        let y = model(Variable(x), .inference(.dense)).value
        let reference = Tensor(shape: expected.shape, scalars: expected.floats())
        let scale = Double(max(1e-6, reference.scalars.map(abs).max() ?? 1))
        row.outputRelativeDifference = Double(y.maxAbsDifference(reference)) / scale
        row.matches = y.shape == reference.shape && row.outputRelativeDifference! <= 1e-3

        // One training step (batch 2) on random labels; it fills the gradients the pruner scores.
        do {
            let session = try MonitoredSession(model: model, optimizer: try SGD(learningRate: 1e-4, momentum: 0.9))
            var rng = RNG(seed: 1)
            let batch = Tensor.uniform(shape: [2] + model.inputShape, low: -1, high: 1, rng: &rng)
            let result = try session.run(images: batch, labels: [0, Int32(model.classes - 1)], globalBatchSize: 2)
            row.trainStep = result.localLoss.isFinite
            if !row.trainStep { row.trainError = "loss \(result.localLoss)" }
        } catch {
            row.trainError = "\(error)"
            return
        }
        // Prune 30% of the prunable parameters in one trial, extract, compare with the masked model.
        do {
            let pruner = try Pruner(config: PrunerConfig(compressionRatio: 0.3, stepInterval: 1, numTrials: 1))
            let world = SingleProcessCommunicator()
            try pruner.prepare(model: model, communicator: world)
            guard !pruner.prunableGroups.isEmpty else { row.pruneError = "no prunable channel group"; return }
            try pruner.afterStep(1, model: model, channel: PayloadChannel(communicator: world))
            var keep: [String: [Bool]] = [:]
            for g in pruner.prunableGroups { keep[g.id] = pruner.keepFlags(group: g.id) }
            ModelSurgery.applyMasks(model: model, groups: pruner.groups, keep: keep)
            let small = ModelSurgery.shrink(model: model, groups: pruner.groups, keep: keep)
            row.prunedParams = small.parameterCount
            let masked = model(Variable(x), .inference(.dense)).value, extracted = small(Variable(x), .inference(.dense)).value
            let s = Double(max(1e-6, masked.scalars.map(abs).max() ?? 1))
            row.extractedRelativeDifference = Double(extracted.maxAbsDifference(masked)) / s
            let file = out.appendingPathComponent("\(name)-pruned30.onnx")
            try ONNXExporter.export(small).data.write(to: file)
            try SafeTensors(tensors: NamedTensors([("input", Variable(x).transpose([0, 3, 1, 2]).value), ("output", extracted)]))
                .write(to: out.appendingPathComponent("\(name)-pruned30.io.safetensors"))
            row.prunedFile = file.lastPathComponent
            row.pruned = row.extractedRelativeDifference! <= 1e-4 && small.parameterCount < model.parameterCount
            if !row.pruned { row.pruneError = "extracted differs from masked by \(row.extractedRelativeDifference!) (relative)" }
        } catch {
            row.pruneError = "\(error)"
        }
    }
}
