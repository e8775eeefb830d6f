import Foundation
import ECCheckpoint

/// A training run's report: one self-contained HTML page (inline SVG and CSS, no script, no
/// network) drawn from what the run left in its `save_dir` — what `easycompress report DIR`
/// writes and the chief writes at the end of `easycompress train` / `finetune` (unless the job
/// says `report: false`).
///
/// ```swift
/// let report = try RunReport(saveDir: URL(fileURLWithPath: "runs/fmnist-cnn-pruned"))
/// let url = try report.write()          // runs/fmnist-cnn-pruned/report.html
/// ```
///
/// Sections (each an element with this `id`, present when its data is): `overview` (model,
/// world size, steps, throughput, final accuracy), `curves` (training loss, test loss and
/// accuracy, throughput over steps, each compression decision marked), `before-after`
/// (parameters, FLOPs, accuracy, inference speed against the run it started from or the
/// extracted model), `pruner` (channels kept per group), `sparsifier` (sparsity and zero
/// blocks per layer), `quantizer` (bit widths and step sizes per layer), `events`, `layers`,
/// `config` (the job as run), and `notes` (inputs that were missing or unreadable).
public struct RunReport {
    public let saveDir: URL
    let inputs: ReportInputs

    /// Reads `saveDir`'s summary.json, metrics.jsonl and config.json (and the summary of the
    /// run it started from, when found).
    ///
    /// - Throws: `ReportError.notASaveDir` when the directory is missing or holds neither
    ///   summary.json nor metrics.jsonl; `ReportError.unreadable` for a file that is not JSON.
    public init(saveDir: URL) throws {
        self.saveDir = saveDir
        inputs = try ReportInputs(saveDir: saveDir)
    }

    /// The report's HTML.
    public func render() -> String {
        var body = header() + overview() + curves() + beforeAfter()
        body += pruner() + sparsifier() + quantizer() + events() + layers() + config() + notes()
        return """
        <!DOCTYPE html>
        <html lang="en"><head><meta charset="utf-8">
        <title>\(HTML.escape(title))</title>
        <style>\(Self.css)</style></head>
        <body>\(body)</body></html>

        """
    }

    /// Writes the report to `saveDir/report.html` (atomically) and returns its URL.
    @discardableResult
    public func write() throws -> URL {
        let url = saveDir.appendingPathComponent("report.html")
        try AtomicFile.write(Data(render().utf8), to: url)
        return url
    }

    var title: String { "Run report: \(saveDir.lastPathComponent)" }
    var summary: [String: Any] { inputs.summary ?? [:] }

    static let css = """
    body{font:14px/1.45 -apple-system,"Segoe UI",Helvetica,Arial,sans-serif;color:#222;margin:24px auto;max-width:800px;padding:0 16px}
    h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #ddd;padding-bottom:4px}
    h3{font-size:14px;margin:14px 0 4px;color:#444}.path{color:#777;font-size:12px}p.lead{margin:4px 0 8px;color:#444}
    .figures{display:grid;grid-template-columns:repeat(4,1fr);gap:8px}.figure{background:#f5f6f8;border-radius:6px;padding:6px 10px}
    .figure .k{font-size:11px;color:#666;text-transform:uppercase;letter-spacing:.03em}.figure .v{font-size:17px;font-weight:600}
    table{border-collapse:collapse;margin:6px 0;font-size:13px}th,td{padding:3px 10px;border-bottom:1px solid #eee;text-align:left}
    td.num{text-align:right;font-variant-numeric:tabular-nums}th{background:#f5f6f8}
    pre{background:#f5f6f8;padding:10px;border-radius:6px;font-size:12px;overflow:auto}
    svg.chart{display:block;margin:4px 0 10px;font-size:11px;fill:#444}
    .axis .grid{stroke:#eee}.axis .frame{fill:none;stroke:#ccc}.empty{fill:#999;font-size:13px}
    .series{fill:none;stroke-width:1.8}.dot{stroke:none}
    .series.loss{stroke:#1f77b4}.dot.loss{fill:#1f77b4}.series.test-loss{stroke:#ff7f0e}.dot.test-loss{fill:#ff7f0e}
    .series.accuracy{stroke:#2ca02c}.dot.accuracy{fill:#2ca02c}.series.throughput{stroke:#9467bd}.dot.throughput{fill:#9467bd}
    .marker line{stroke-dasharray:4 3;stroke-width:1.2}.marker text{font-size:10px}
    .ev-pruner line{stroke:#d62728}.ev-pruner text{fill:#d62728}.ev-quantizer line{stroke:#8c564b}.ev-quantizer text{fill:#8c564b}
    .ev-sparsifier line{stroke:#e377c2}.ev-sparsifier text{fill:#e377c2}.invalid{fill:#d62728;font-weight:700}
    .track{fill:#f0f0f0}.bar.kept{fill:#1f77b4}.bar.sparsity{fill:#e377c2}.bar.zero-blocks{fill:#7f7f7f}
    .bar.wbits{fill:#8c564b}.bar.bits{fill:#bcbd22}.bar.before{fill:#bbb}.bar.after{fill:#1f77b4}
    .weight-scale{fill:#8c564b;fill-opacity:.6}.activation-scale{fill:#bcbd22;stroke:#777;stroke-width:.5}
    .key span{display:inline-block;width:10px;height:10px;margin:0 4px 0 12px;vertical-align:-1px}
    .notes li{color:#8a6d3b}
    """
}
