import Foundation

/// The run-wide sections: header, overview, curves, before/after, events, layers, config, notes.
extension RunReport {
    func header() -> String {
        "<header><h1>\(HTML.escape(title))</h1><div class=\"path\">\(HTML.escape(saveDir.path))</div></header>"
    }

    func overview() -> String {
        let s = summary
        var figures: [(String, String)] = []
        if let model = s["model"] as? String { figures.append(("model", model)) }
        if let n = s.int("world_size") { figures.append(("world size", "\(n) rank\(n == 1 ? "" : "s")")) }
        if let steps = s.int("steps") {
            figures.append(("steps", "\(steps)" + (s.double("epochs").map { " (\(SVGChart.number($0)) epochs)" } ?? "")))
        }
        if let b = s.int("batch_size") { figures.append(("global batch", "\(b)")) }
        if let t = s.double("train_samples_per_second") {
            let perRank = s.int("world_size").flatMap { $0 > 1 ? String(format: " (%.0f/rank)", t / Double($0)) : nil } ?? ""
            figures.append(("train samples/s", String(format: "%.0f", t) + perRank))
        }
        if let t = s.double("train_seconds") { figures.append(("train time", String(format: "%.1f s", t))) }
        if let a = s.double("test_accuracy") { figures.append(("test accuracy", String(format: "%.4f", a))) }
        if let l = s.double("test_loss") { figures.append(("test loss", String(format: "%.4f", l))) }
        if let p = s.int("params") { figures.append(("parameters", "\(p)")) }
        if let f = s.int("flops") { figures.append(("FLOPs / sample", "\(f)")) }
        let compressors = ["pruner", "sparsifier", "quantizer", "gap_finetune"].filter { s[$0] != nil }
        figures.append(("compression", compressors.isEmpty ? "none" : compressors.joined(separator: " + ")))
        let cells = figures.map { "<div class=\"figure\"><div class=\"k\">\(HTML.escape($0.0))</div>"
            + "<div class=\"v\">\(HTML.escape($0.1))</div></div>" }.joined()
        return "<section id=\"overview\"><h2>Overview</h2><div class=\"figures\">\(cells)</div></section>"
    }

    /// The compression decisions as chart markers (P1, Q3, S2 …).
    var markers: [SVGChart.Marker] {
        inputs.events.map { e in
            let values = e.values.map { "\($0.name) \(SVGChart.number($0.value))" }.joined(separator: ", ")
            return SVGChart.Marker(x: Double(e.step), label: "\(e.compressor.prefix(1).uppercased())\(e.trial)",
                                   tooltip: "\(e.compressor) decision \(e.trial) at step \(e.step)" + (values.isEmpty ? "" : ": \(values)"),
                                   cssClass: "ev-" + String(e.compressor.lowercased().map { $0.isLetter || $0.isNumber ? $0 : "-" }))
        }
    }

    func curves() -> String {
        let train = inputs.train, evals = inputs.evals
        var html = "<section id=\"curves\"><h2>Training curves</h2>"
        if !inputs.events.isEmpty {
            let kinds = Array(Set(inputs.events.map(\.compressor))).sorted()
            html += "<p class=\"lead\">Dashed lines: compression decisions ("
                + kinds.map { HTML.escape("\($0.prefix(1).uppercased())n = \($0) decision n") }.joined(separator: "; ") + ").</p>"
        }
        let nonFinite = train.filter { $0.loss == nil }.map(\.step)
        if !nonFinite.isEmpty {
            html += "<p class=\"lead\">The training loss was not a finite number at \(nonFinite.count) logged step(s), first at step "
                + "\(nonFinite[0]) (× on the chart).</p>"
        }
        html += "<h3>Loss</h3>" + SVGChart.line(series: [
            .init(name: "training loss", cssClass: "loss", points: train.map { (Double($0.step), $0.loss) }),
            .init(name: "test loss", cssClass: "test-loss", points: evals.map { (Double($0.step), $0.loss) }, dots: true),
        ], markers: markers, yLabel: "cross-entropy")
        html += "<h3>Test accuracy</h3>" + SVGChart.line(series: [
            .init(name: "test accuracy", cssClass: "accuracy", points: evals.map { (Double($0.step), $0.accuracy) }, dots: true),
        ], markers: markers, yLabel: "accuracy")
        let ranks = summary.int("world_size")
        html += "<h3>Throughput" + (ranks.map { " on \($0) rank\($0 == 1 ? "" : "s")" } ?? "") + "</h3>"
        html += SVGChart.line(series: [
            .init(name: "samples/s (whole job)", cssClass: "throughput", points: train.map { (Double($0.step), $0.samplesPerSecond) }),
        ], markers: markers, yLabel: "samples / s")
        return html + "</section>"
    }

    /// One before/after line: values, how to print them, and whether a change is in points.
    struct Comparison {
        let label: String
        let before: Double?
        let after: Double?
        var format = "%.0f"
        var points = false
    }

    var comparisons: [Comparison] {
        let s = summary, ref = inputs.reference?.summary
        let gap = s.object("gap_finetune"), pr = s.object("pruner"), sp = s.object("sparsifier"), q = s.object("quantizer")
        var rows: [Comparison] = []
        let paramsBefore = gap?.double("params_before") ?? pr?.double("params_before") ?? ref?.double("params")
        let paramsAfter = gap?.double("params_after") ?? pr?.double("params_after") ?? s.double("params")
        rows.append(.init(label: pr != nil && gap == nil ? "parameters (extracted model)" : "parameters",
                          before: paramsBefore, after: paramsAfter))
        if let sp, let params = s.double("params") {
            let zeros = sp.objects("layers").reduce(0.0) { total, layer in
                let count = (layer["shape"] as? [Any])?.compactMap { ($0 as? Int) ?? ($0 as? Double).map(Int.init) }.reduce(1, *) ?? 0
                return total + Double(count) * (layer.double("sparsity") ?? 0)
            }
            rows.append(.init(label: "non-zero parameters", before: params, after: params - zeros.rounded()))
        }
        rows.append(.init(label: pr != nil && gap == nil ? "FLOPs / sample (extracted model)" : "FLOPs / sample",
                          before: gap?.double("flops_before") ?? pr?.double("flops_before") ?? ref?.double("flops"),
                          after: gap?.double("flops_after") ?? pr?.double("flops_after") ?? s.double("flops")))
        if let q, let wbits = q.double("wbits") {
            rows.append(.init(label: "weight bits (quantized layers)", before: 32, after: wbits))
        }
        rows.append(.init(label: "test accuracy", before: ref?.double("test_accuracy"), after: s.double("test_accuracy"),
                          format: "%.4f", points: true))
        if let gap {
            rows.append(.init(label: "test accuracy (pruned → fine-tuned)", before: gap.double("accuracy_pruned"),
                              after: gap.double("accuracy_after_finetune"), format: "%.4f", points: true))
            rows.append(.init(label: "inference samples/s at batch 256",
                              before: gap.object("inference_before")?.double("batch256_samples_per_second"),
                              after: gap.object("inference_after")?.double("batch256_samples_per_second")))
            rows.append(.init(label: "inference µs at batch 1", before: gap.object("inference_before")?.double("batch1_microseconds"),
                              after: gap.object("inference_after")?.double("batch1_microseconds"), format: "%.1f"))
        }
        rows.append(.init(label: "test loss", before: ref?.double("test_loss"), after: s.double("test_loss"), format: "%.4f"))
        return rows.filter { $0.before != nil && $0.after != nil }
    }

    func beforeAfter() -> String {
        let rows = comparisons
        var html = "<section id=\"before-after\"><h2>Before and after</h2>"
        guard !rows.isEmpty else {
            return html + "<p class=\"lead\">Nothing to compare: the run has no compressor section and did not start from "
                + "another run's weights.</p></section>"
        }
        var source: [String] = []
        if let ref = inputs.reference { source.append("before = \(ref.relation), \(ref.directory.path)") }
        if summary["gap_finetune"] != nil { source.append("parameters, FLOPs and inference speed: the dense model vs the extracted one") }
        else if summary["pruner"] != nil { source.append("parameters and FLOPs: the dense model vs the extracted (physically smaller) model") }
        if !source.isEmpty { html += "<p class=\"lead\">\(HTML.escape(source.joined(separator: "; ")))</p>" }
        var table = [["", "before", "after", "change"]]
        for r in rows {
            let (b, a) = (r.before!, r.after!)
            let change = r.points ? String(format: "%+.2f pt", (a - b) * 100) : String(format: "%+.1f%%", (a / max(abs(b), 1e-12) - 1) * 100)
            table.append([r.label, String(format: r.format, b), String(format: r.format, a), change])
        }
        html += HTML.table(table, cssClass: "before-after")
        let ratios = rows.map { $0.after! / max(abs($0.before!), 1e-12) }
        let top = max(ratios.max() ?? 1, 1)
        html += "<div class=\"key\"><span style=\"background:#bbb\"></span>before"
            + "<span style=\"background:#1f77b4\"></span>after (relative to before)</div>"
        html += SVGChart.bars(zip(rows, ratios).map { r, ratio in
            SVGChart.BarRow(label: r.label, bars: [(1 / top, "before"), (ratio / top, "after")],
                            text: String(format: "%.1f%% of before", ratio * 100))
        })
        return html + "</section>"
    }

    func events() -> String {
        guard !inputs.events.isEmpty else { return "" }
        var rows = [["step", "compressor", "decision", "values"]]
        rows += inputs.events.map { e in
            ["\(e.step)", e.compressor, "\(e.trial)", e.values.map { "\($0.name) \(SVGChart.number($0.value))" }.joined(separator: ", ")]
        }
        return "<section id=\"events\"><h2>Compression decisions</h2>" + HTML.table(rows, numericFrom: 4) + "</section>"
    }

    func layers() -> String {
        let layers = summary.objects("layers")
        guard !layers.isEmpty else { return "" }
        var rows = [["layer", "op", "params", "FLOPs / sample"]]
        rows += layers.map { [$0["name"] as? String ?? "?", $0["op_type"] as? String ?? "", $0.int("params").map(String.init) ?? "",
                              $0.int("flops").map(String.init) ?? ""] }
        return "<section id=\"layers\"><h2>Layers</h2>" + HTML.table(rows, numericFrom: 2) + "</section>"
    }

    func config() -> String {
        var html = "<section id=\"config\"><h2>Job configuration</h2>"
        guard let config = inputs.config,
              let data = try? JSONSerialization.data(withJSONObject: config, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]) else {
            return html + "<p class=\"lead\">Not recorded (no config.json in the save_dir).</p></section>"
        }
        html += "<p class=\"lead\">config.json: the job file's keys as given (defaults apply to the others; docs/training.md).</p>"
        return html + "<pre>\(HTML.escape(String(decoding: data, as: UTF8.self)))</pre></section>"
    }

    func notes() -> String {
        guard !inputs.notes.isEmpty else { return "" }
        return "<section id=\"notes\" class=\"notes\"><h2>Notes</h2><ul>"
            + inputs.notes.map { "<li>\(HTML.escape($0))</li>" }.joined() + "</ul></section>"
    }
}
