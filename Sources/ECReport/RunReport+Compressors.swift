import Foundation

/// The per-layer sections of the compressors' `summary.json` sections (schemas in docs/formats.md).
extension RunReport {
    /// Channels kept per channel group: the `pruner` section, or a fine-tuning run's
    /// `gap_finetune.channels`.
    func pruner() -> String {
        let s = summary
        var rows: [SVGChart.BarRow] = []
        var html = "<section id=\"pruner\"><h2>Pruner: channels kept</h2>"
        if let p = s.object("pruner") {
            let groups = p.objects("groups")
            let prunable = groups.filter { $0["prunable"] as? Bool ?? true }
            html += "<p class=\"lead\">" + HTML.escape(String(
                format: "Target compression_ratio %.3g, achieved %.4f (%d of %d prunable parameters removed) after %d of %d trials; "
                    + "%d channel group(s), %d not prunable (the classifier's outputs, excluded scopes).",
                p.double("compression_ratio") ?? .nan, p.double("achieved_ratio") ?? .nan, p.int("params_removed") ?? 0,
                p.int("prunable_params") ?? 0, p.int("trials_done") ?? 0, p.int("num_trials") ?? 0,
                groups.count, groups.count - prunable.count)) + "</p>"
            rows = prunable.map { g in
                let before = g.int("channels_before") ?? 0, after = g.int("channels_after") ?? before
                let layers = (g["layers"] as? [String])?.joined(separator: ", ") ?? (g["id"] as? String ?? "?")
                return channelRow(layers, before: before, after: after)
            }
        } else if let channels = s.object("gap_finetune")?.object("channels") {
            html += "<p class=\"lead\">The extracted model's channel groups (from the pruned run "
                + HTML.escape(s.object("gap_finetune")?["from"] as? String ?? "") + ").</p>"
            rows = channels.keys.sorted().compactMap { id in
                guard let pair = channels[id] as? [Int], pair.count == 2 else { return nil }
                return channelRow(id, before: pair[0], after: pair[1])
            }
        } else {
            return ""
        }
        return html + SVGChart.bars(rows) + "</section>"
    }

    func channelRow(_ label: String, before: Int, after: Int) -> SVGChart.BarRow {
        let fraction = before > 0 ? Double(after) / Double(before) : 0
        return SVGChart.BarRow(label: label, bars: [(fraction, "kept")],
                               text: String(format: "%d of %d kept (%.0f%%)", after, before, fraction * 100))
    }

    /// Sparsity and zero blocks per layer (the `sparsifier` section).
    func sparsifier() -> String {
        guard let sp = summary.object("sparsifier") else { return "" }
        let shape = (sp["sparse_block_shape"] as? [Int]).map { "[\($0.map(String.init).joined(separator: ", "))]" } ?? "?"
        let pattern = (sp["pattern"] as? String).map { ", pattern \($0)" } ?? ""
        var html = "<section id=\"sparsifier\"><h2>Sparsifier: sparsity per layer</h2><p class=\"lead\">"
        html += HTML.escape(String(format: "Target sparse ratio %.3g (%@ ranking), block shape %@%@; achieved sparsity %.4f.",
                                   sp.double("target_sparse_ratio") ?? .nan, sp["sort_range"] as? String ?? "?", shape, pattern,
                                   sp.double("achieved_sparsity") ?? .nan)) + "</p>"
        html += "<div class=\"key\"><span style=\"background:#e377c2\"></span>sparsity (zero weights)"
            + "<span style=\"background:#7f7f7f\"></span>zero blocks</div>"
        let rows = sp.objects("layers").map { l in
            SVGChart.BarRow(label: l["name"] as? String ?? "?",
                            bars: [(l.double("sparsity") ?? 0, "sparsity"), (l.double("zero_block_fraction") ?? 0, "zero-blocks")],
                            text: String(format: "sparsity %.3f, %d/%d zero blocks", l.double("sparsity") ?? .nan,
                                         l.int("zero_blocks") ?? 0, l.int("blocks") ?? 0))
        }
        return html + SVGChart.bars(rows) + "</section>"
    }

    /// Bit widths and step sizes per layer (the `quantizer` section).
    func quantizer() -> String {
        guard let q = summary.object("quantizer") else { return "" }
        var html = "<section id=\"quantizer\"><h2>Quantizer: bit widths and step sizes</h2><p class=\"lead\">"
        html += HTML.escape(String(format: "W%d A%d (%@ activations), %d of %d step-size updates every %d steps.",
                                   q.int("wbits") ?? 0, q.int("bits") ?? 0, (q["signed"] as? Bool ?? true) ? "signed" : "unsigned",
                                   q.int("updates_done") ?? 0, q.int("num_trials") ?? 0, q.int("step_interval") ?? 0)) + "</p>"
        let layers = q.objects("layers")
        html += "<h3>Bit widths</h3><div class=\"key\"><span style=\"background:#8c564b\"></span>weights"
            + "<span style=\"background:#bcbd22\"></span>input activations (of 8 bits)</div>"
        html += SVGChart.bars(layers.map { l in
            let name = l["layer"] as? String ?? "?"
            if l["fp32"] as? Bool == true {
                return SVGChart.BarRow(label: name, bars: [(1, "before"), (1, "before")],
                                       text: "FP32 (\(l["reason"] as? String ?? "kept"))")
            }
            let w = l.int("wbits") ?? 0, a = l.int("bits") ?? 0
            return SVGChart.BarRow(label: name, bars: [(Double(w) / 8, "wbits"), (Double(a) / 8, "bits")],
                                   text: "W\(w) A\(a)" + ((l["signed"] as? Bool ?? true) ? "" : " (unsigned)")
                                       + ((l["per_channel"] as? Bool ?? false) ? ", per channel" : ""))
        })
        let quantized = layers.filter { $0["fp32"] as? Bool != true }
        html += "<h3>Step sizes (scales)</h3><div class=\"key\"><span style=\"background:#8c564b\"></span>weight step size"
            + " (one per output channel with per_channel)<span style=\"background:#bcbd22\"></span>input-activation step size</div>"
        html += SVGChart.scales(quantized.map { l in
            (l["layer"] as? String ?? "?", (l["weight_scale"] as? [Any] ?? []).compactMap { ($0 as? Double) ?? ($0 as? Int).map(Double.init) },
             l.double("activation_scale"))
        })
        return html + "</section>"
    }
}
