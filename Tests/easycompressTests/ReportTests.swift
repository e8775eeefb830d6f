import ECTestSupport
import Foundation
import XCTest

/// The run report as a user meets it: real short jobs (FP32 → prune on 2 ranks → GapFinetune)
/// leave a report.html that headless Chromium renders, with the expected sections and plots
/// drawn from each run's numbers; `easycompress report DIR` rewrites it; `report: false` opts out.
final class ReportTests: XCTestCase {
    var work: URL!
    override func setUpWithError() throws { work = try TestPaths.temporaryDirectory(name) }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: work) }

    func job(_ name: String, _ body: String) throws -> (config: String, saveDir: URL) {
        let saveDir = work.appendingPathComponent(name)
        let config = work.appendingPathComponent("\(name).yaml").path
        try """
            model: fmnist-cnn
            dataset: {limit_train: 1280, limit_test: 500}
            batch_size: 64
            seed: 5
            log_every: 2
            save_dir: \(saveDir.path)
            \(body)
            """.write(toFile: config, atomically: true, encoding: .utf8)
        return (config, saveDir)
    }

    func cli(_ args: [String], ranks: Int = 1) throws -> ProcessResult {
        let program = [try TestPaths.executable("easycompress")] + args
        let r = ranks > 1 ? try MPIRun.run(ranks: ranks, program, timeoutSeconds: 240)
            : try ProcessRunner.run(program, environment: ["OPENBLAS_NUM_THREADS": "1"], timeoutSeconds: 240)
        XCTAssertFalse(r.timedOut, "\(args) timed out")
        XCTAssertEqual(r.status, 0, "\(args): \(r.stderr)")
        return r
    }

    func report(_ saveDir: URL) throws -> String {
        try String(contentsOf: saveDir.appendingPathComponent("report.html"), encoding: .utf8)
    }

    func lossPath(_ html: String) -> String? {
        guard let start = html.range(of: "<path class=\"series loss\" d=\"") else { return nil }
        return String(html[start.upperBound...].prefix { $0 != "\"" })
    }

    func testPipelineReportsRenderInChromium() throws {
        let fp32 = try job("fp32", "steps: 16\neval_every: 8")
        _ = try cli(["train", "--config", fp32.config])
        let pruned = try job("pruned", """
            steps: 24
            eval_every: 8
            init_from: \(fp32.saveDir.path)
            compression:
              pruner: {compression_ratio: 0.5, step_interval: 6, num_trials: 3}
            """)
        let train = try cli(["train", "--config", pruned.config], ranks: 2)
        XCTAssertTrue(train.stderr.contains("report: \(pruned.saveDir.path)/report.html"), train.stderr)
        let small = try job("small", "steps: 8")
        _ = try cli(["finetune", "--from", pruned.saveDir.path, "--config", small.config])

        // The pruned run: curves with its 3 decisions marked, channels kept, before = the FP32 run.
        let html = try report(pruned.saveDir)
        for id in ["overview", "curves", "before-after", "pruner", "events", "layers", "config"] {
            XCTAssertTrue(html.contains("<section id=\"\(id)\""), "section \(id)")
        }
        XCTAssertFalse(html.contains("<script"), "no script")
        let local = html.replacingOccurrences(of: "xmlns=\"http://www.w3.org/2000/svg\"", with: "")
        for reference in ["http:", "https:", "<link", "<img", "src="] {
            XCTAssertFalse(local.contains(reference), "self-contained: no \(reference)")
        }
        XCTAssertTrue(html.contains("<div class=\"v\">2 ranks</div>"))
        XCTAssertEqual(html.components(separatedBy: "<g class=\"marker ev-pruner\">").count - 1, 3 * 3, "3 decisions on 3 charts")
        XCTAssertTrue(html.contains("before = the run this one started from (\(fp32.saveDir.path))"))
        XCTAssertTrue(html.contains("<td>parameters (extracted model)</td><td class=\"num\">421642</td>"))
        let prunedPath = try XCTUnwrap(lossPath(html))
        XCTAssertEqual(prunedPath.components(separatedBy: " L").count, 12, "a vertex per logged step (24 / log_every 2)")
        XCTAssertNotEqual(prunedPath, lossPath(try report(fp32.saveDir)), "each run's curve is drawn from its own losses")

        // The fine-tuned run: before/after with inference speed, channels from GapFinetune.
        let smallHTML = try report(small.saveDir)
        XCTAssertTrue(smallHTML.contains("<td>inference samples/s at batch 256</td>"), "gap_finetune figures")
        XCTAssertTrue(smallHTML.contains("before = the model the pruned run"), "the FP32 run found through the pruned run")
        XCTAssertTrue(smallHTML.contains("<section id=\"pruner\""))

        // `easycompress report` rewrites the same page (the report depends only on the files).
        try FileManager.default.removeItem(at: pruned.saveDir.appendingPathComponent("report.html"))
        let again = try cli(["report", pruned.saveDir.path])
        XCTAssertEqual(again.stdout.trimmingCharacters(in: .whitespacesAndNewlines), pruned.saveDir.path + "/report.html")
        XCTAssertEqual(try report(pruned.saveDir), html)

        // Rendered as a user sees it, against an empty page of the same size rendered the same way.
        guard HeadlessBrowser.executable != nil || HeadlessBrowser.required else {
            throw XCTSkip("chromium is not installed (launch/setup-deps installs it)")
        }
        let (width, height) = (900, 2400)
        let png = work.appendingPathComponent("report.png"), blankPNG = work.appendingPathComponent("blank.png")
        let blank = work.appendingPathComponent("blank.html")
        try "<!DOCTYPE html><html><body></body></html>".write(to: blank, atomically: true, encoding: .utf8)
        for (page, out) in [(pruned.saveDir.appendingPathComponent("report.html"), png), (blank, blankPNG)] {
            let r = try HeadlessBrowser.screenshot(page, to: out, width: width, height: height)
            XCTAssertEqual(r.status, 0, r.stderr)
        }
        let image = try Data(contentsOf: png), empty = try Data(contentsOf: blankPNG)
        let size = try XCTUnwrap(HeadlessBrowser.pngSize(image), "not a PNG")
        XCTAssertEqual(size.width, width)
        XCTAssertEqual(size.height, height)
        XCTAssertGreaterThan(image.count, 5 * empty.count, "the page draws far more than an empty one (\(image.count) vs \(empty.count) bytes)")
    }

    func testReportFalseWritesNoReport() throws {
        let run = try job("quiet", "steps: 2\nreport: false")
        _ = try cli(["train", "--config", run.config])
        XCTAssertTrue(FileManager.default.fileExists(atPath: run.saveDir.appendingPathComponent("config.json").path))
        XCTAssertFalse(FileManager.default.fileExists(atPath: run.saveDir.appendingPathComponent("report.html").path))
    }

    func testReportOfADirectoryThatIsNoRunIsAClearError() throws {
        let r = try ProcessRunner.run([try TestPaths.executable("easycompress"), "report", work.path], timeoutSeconds: 30)
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.stderr.contains("is not a training run's save_dir: it holds neither summary.json nor metrics.jsonl"), r.stderr)
    }
}
