import ECTestSupport
import Foundation
import XCTest
@testable import ECReport

/// The run report on synthetic save_dirs: partial runs, one point, a diverged loss, every
/// compressor section (the sparsifier's with its agreed schema), and plots drawn from the data.
final class RunReportTests: XCTestCase {
    var work: URL!
    override func setUpWithError() throws { work = try TestPaths.temporaryDirectory(name) }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: work) }

    /// A save_dir holding the given files (JSON objects or raw text).
    func saveDir(_ name: String, summary: [String: Any]? = nil, metrics: [String]? = nil, config: [String: Any]? = nil) throws -> URL {
        let dir = work.appendingPathComponent(name)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        if let summary { try JSONSerialization.data(withJSONObject: summary).write(to: dir.appendingPathComponent("summary.json")) }
        if let config { try JSONSerialization.data(withJSONObject: config).write(to: dir.appendingPathComponent("config.json")) }
        if let metrics { try (metrics.joined(separator: "\n") + "\n").write(to: dir.appendingPathComponent("metrics.jsonl"), atomically: true, encoding: .utf8) }
        return dir
    }

    func render(_ dir: URL) throws -> String { try RunReport(saveDir: dir).render() }

    /// The `d` attribute of the first path with class `series <cssClass>`.
    func path(_ cssClass: String, in html: String) -> String? {
        guard let start = html.range(of: "<path class=\"series \(cssClass)\" d=\"") else { return nil }
        return String(html[start.upperBound...].prefix { $0 != "\"" })
    }

    static let baseSummary: [String: Any] = [
        "model": "fmnist-cnn", "world_size": 2, "steps": 40, "epochs": 0.5, "batch_size": 64, "seed": 42,
        "test_accuracy": 0.81, "test_loss": 0.52, "params": 421_642, "flops": 8_482_304,
        "train_samples_per_second": 3100.0, "train_seconds": 2.5,
        "layers": [["name": "conv1", "op_type": "Conv2D", "params": 320, "flops": 451_584]],
        "evaluations": [["step": 40, "test_accuracy": 0.81, "test_loss": 0.52]],
    ]

    func train(_ step: Int, _ loss: String, rate: Double = 3000) -> String {
        #"{"event":"train","loss":\#(loss),"samples_per_second":\#(rate),"step":\#(step)}"#
    }

    func testNotASaveDirIsAClearError() throws {
        XCTAssertThrowsError(try RunReport(saveDir: work.appendingPathComponent("nope"))) { error in
            XCTAssertEqual(error as? ReportError, .notASaveDir(path: work.appendingPathComponent("nope").path, reason: "no such directory"))
        }
        let empty = try saveDir("empty")
        XCTAssertThrowsError(try RunReport(saveDir: empty)) { error in
            XCTAssertTrue("\(error)".contains("holds neither summary.json nor metrics.jsonl"), "\(error)")
        }
        let bad = try saveDir("bad")
        try "[1, 2".write(to: bad.appendingPathComponent("summary.json"), atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try RunReport(saveDir: bad)) { error in
            XCTAssertEqual(error as? ReportError, .unreadable(file: bad.appendingPathComponent("summary.json").path, reason: "not a JSON object"))
        }
    }

    func testARunWithoutSummaryOrConfigShowsItsCurvesAndSaysWhatIsMissing() throws {
        let dir = try saveDir("running", metrics: [train(10, "2.1"), train(20, "1.4"), "{\"event\":\"train\",\"ste", ""])
        let html = try render(dir)
        XCTAssertTrue(html.contains("<section id=\"curves\""))
        XCTAssertNotNil(path("loss", in: html))
        for absent in ["id=\"pruner\"", "id=\"quantizer\"", "id=\"sparsifier\"", "id=\"layers\""] {
            XCTAssertFalse(html.contains(absent), absent)
        }
        XCTAssertTrue(html.contains("no summary.json (the run has not finished?)"))
        XCTAssertTrue(html.contains("metrics.jsonl: 1 unreadable line(s) skipped (line 3)"), "the truncated line is reported")
        XCTAssertTrue(html.contains("Not recorded (no config.json in the save_dir)."))
        XCTAssertTrue(html.contains("Nothing to compare"))
    }

    func testOnePointAndANonFiniteLossAreDrawnWithoutBreakingThePlot() throws {
        let one = try render(try saveDir("one", summary: Self.baseSummary, metrics: [train(5, "1.5")]))
        let d = try XCTUnwrap(path("loss", in: one))
        XCTAssertTrue(d.hasPrefix("M") && !d.contains("L"), "one point is one move: \(d)")
        XCTAssertTrue(one.contains("<circle class=\"dot loss\""), "a lone point gets a dot")

        // A diverged run: null (what MetricsLog writes for NaN) and a bare NaN (Python's json).
        let nan = try render(try saveDir("nan", summary: Self.baseSummary,
                                         metrics: [train(1, "2.3"), train(2, "2.0"), train(3, "null"), train(4, "NaN"), train(5, "1.8")]))
        let dn = try XCTUnwrap(path("loss", in: nan))
        XCTAssertEqual(dn.components(separatedBy: "M").count - 1, 2, "the line breaks at the non-finite values: \(dn)")
        XCTAssertFalse(dn.lowercased().contains("nan") || dn.contains("inf"), dn)
        XCTAssertEqual(nan.components(separatedBy: "class=\"invalid\"").count - 1, 2, "each non-finite value is marked")
        XCTAssertTrue(nan.contains("not a finite number at 2 logged step(s), first at step 3"))
    }

    func testPlotsAreDrawnFromTheData() throws {
        let a = try render(try saveDir("a", summary: Self.baseSummary, metrics: [train(10, "2.0"), train(20, "1.0"), train(30, "0.8")]))
        let b = try render(try saveDir("b", summary: Self.baseSummary, metrics: [train(10, "2.0"), train(20, "1.6"), train(30, "0.4")]))
        let again = try render(try saveDir("a2", summary: Self.baseSummary, metrics: [train(10, "2.0"), train(20, "1.0"), train(30, "0.8")]))
        let (pa, pb) = (try XCTUnwrap(path("loss", in: a)), try XCTUnwrap(path("loss", in: b)))
        XCTAssertNotEqual(pa, pb, "different losses, different paths")
        XCTAssertEqual(pa, path("loss", in: again), "same data, same drawing")
        XCTAssertEqual(pa.components(separatedBy: " L").count, 3, "one vertex per logged step: \(pa)")
        // x: step 10 on [0, 40] (the summary's last evaluation is at step 40) in a 688-px plot from x = 58.
        XCTAssertTrue(pa.hasPrefix("M230.0,"), pa)
    }

    static let sparsifier: [String: Any] = [
        "kind": "sparsifier", "target_sparse_ratio": 0.6, "sparse_block_shape": [1, 16], "pattern": NSNull(),
        "sort_range": "local", "achieved_sparsity": 0.58,
        "layers": [
            ["name": "conv1/weight", "shape": [3, 3, 1, 32], "sparsity": 0.5, "blocks": 18, "zero_blocks": 9, "zero_block_fraction": 0.5],
            ["name": "fc1/weight", "shape": [3136, 128], "sparsity": 0.6, "blocks": 25088, "zero_blocks": 15053,
             "zero_block_fraction": 0.6],
        ],
    ]

    static let quantizer: [String: Any] = [
        "kind": "quantizer", "bits": 8, "wbits": 4, "signed": false, "step_interval": 10, "num_trials": 3, "updates_done": 3,
        "layers": [
            ["layer": "conv1", "op_type": "Conv2D", "wbits": 4, "bits": 8, "signed": false, "per_channel": true, "fp32": false,
             "weight_scale": [0.01, 0.02, 0.04], "activation_scale": 0.0078],
            ["layer": "fc2", "op_type": "MatMul", "fp32": true, "reason": "fp32_layers"],
        ],
    ]

    func testSparsifierAndQuantizerTogether() throws {
        var summary = Self.baseSummary
        summary["sparsifier"] = Self.sparsifier
        summary["quantizer"] = Self.quantizer
        let html = try render(try saveDir("combined", summary: summary, metrics: [
            train(10, "2.0"), train(20, "1.5"),
            #"{"compressor":"sparsifier","event":"compression","sparsity":0.3,"step":10,"trial":1}"#,
            #"{"compressor":"quantizer","event":"compression","mean_relative_step_change":0.01,"step":10,"trial":1}"#,
        ]))
        for id in ["overview", "curves", "before-after", "sparsifier", "quantizer", "events", "layers", "config"] {
            XCTAssertTrue(html.contains("<section id=\"\(id)\""), "section \(id)")
        }
        XCTAssertTrue(html.contains("Target sparse ratio 0.6 (local ranking), block shape [1, 16]; achieved sparsity 0.5800."))
        XCTAssertTrue(html.contains("sparsity 0.600, 15053/25088 zero blocks"))
        // The sparsity bar is 0.6 of the 340-px track.
        XCTAssertTrue(html.contains("<rect class=\"bar sparsity\" x=\"190.0\" y=\"45.0\" width=\"204.0\""), "fc1's bar")
        XCTAssertTrue(html.contains("W4 A8 (unsigned), per channel"))
        XCTAssertTrue(html.contains("FP32 (fp32_layers)"))
        XCTAssertEqual(html.components(separatedBy: "<circle class=\"dot weight-scale\"").count - 1, 3, "one dot per channel scale")
        XCTAssertTrue(html.contains("class=\"marker ev-sparsifier\"") && html.contains("class=\"marker ev-quantizer\""))
        XCTAssertTrue(html.contains("<td>non-zero parameters</td><td class=\"num\">421642</td><td class=\"num\">180653</td>"),
                      "params − 288·0.5 − 401408·0.6")
        XCTAssertTrue(html.contains("<td>weight bits (quantized layers)</td><td class=\"num\">32</td><td class=\"num\">4</td>"))

        var nm = Self.sparsifier
        nm["pattern"] = "2:4"
        summary["sparsifier"] = nm
        XCTAssertTrue(try render(try saveDir("nm", summary: summary)).contains("block shape [1, 16], pattern 2:4;"))
    }

    func testBeforeIsTheRunThisOneStartedFrom() throws {
        // Jobs ran from `work` with relative paths: runs/fp32, then runs/pruned with init_from: runs/fp32.
        var fp32 = Self.baseSummary
        fp32["test_accuracy"] = 0.9
        _ = try saveDir("runs/fp32", summary: fp32)
        var pruned = Self.baseSummary
        pruned["pruner"] = ["kind": "pruner", "compression_ratio": 0.5, "achieved_ratio": 0.5, "prunable_params": 421_642,
                            "params_removed": 210_821, "params_before": 421_642, "params_after": 210_821, "flops_before": 8_482_304,
                            "flops_after": 5_000_000, "trials_done": 2, "num_trials": 2,
                            "groups": [["id": "conv1", "layers": ["conv1"], "prunable": true, "channels_before": 32, "channels_after": 16]]]
        let dir = try saveDir("runs/pruned", summary: pruned, config: ["init_from": "runs/fp32", "save_dir": "runs/pruned"])
        let html = try render(dir)
        XCTAssertTrue(html.contains("before = the run this one started from (runs/fp32)"), "found through the job's save_dir")
        XCTAssertTrue(html.contains("<td>test accuracy</td><td class=\"num\">0.9000</td><td class=\"num\">0.8100</td><td class=\"num\">-9.00 pt</td>"))
        XCTAssertTrue(html.contains("<td>parameters (extracted model)</td><td class=\"num\">421642</td><td class=\"num\">210821</td>"))
        XCTAssertTrue(html.contains("16 of 32 kept (50%)"))
        XCTAssertTrue(html.contains("&quot;init_from&quot; : &quot;runs/fp32&quot;"), "the job config, escaped")
    }
}
