import Foundation

/// What a run report is drawn from: the files a `save_dir` holds (`summary.json`,
/// `metrics.jsonl`, `config.json`) and, when the job started from another run's weights, that
/// run's `summary.json` (the "before" of the before/after table).
///
/// Reading is tolerant where a run can legitimately be partial (a run still going has no
/// summary yet; a crash can truncate the last metrics line; an old run has no config.json):
/// whatever is missing is left out of the report and listed in `notes`. A file that exists but
/// is not what it should be (summary.json that is not a JSON object) is an error.
struct ReportInputs {
    struct TrainPoint: Equatable {
        let step: Int
        /// nil when the logged loss was not a finite number (written as `null`: a diverged run).
        let loss: Double?
        let samplesPerSecond: Double?
    }

    struct EvalPoint: Equatable {
        let step: Int
        let accuracy: Double?
        let loss: Double?
    }

    struct Event {
        let compressor: String
        let step: Int
        let trial: Int
        /// The decision's numbers (`target_ratio`, `achieved_ratio`, `sparsity`, …), by name.
        let values: [(name: String, value: Double)]
    }

    /// The run whose weights this one started from, with how it was found.
    struct Reference {
        let directory: URL
        let relation: String
        let summary: [String: Any]
    }

    let saveDir: URL
    var summary: [String: Any]?
    var config: [String: Any]?
    var train: [TrainPoint] = []
    var evals: [EvalPoint] = []
    var events: [Event] = []
    var reference: Reference?
    /// What could not be read, in words, for the report's footer.
    var notes: [String] = []

    init(saveDir: URL) throws {
        self.saveDir = saveDir
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: saveDir.path, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw ReportError.notASaveDir(path: saveDir.path, reason: "no such directory")
        }
        let summaryURL = saveDir.appendingPathComponent("summary.json")
        let metricsURL = saveDir.appendingPathComponent("metrics.jsonl")
        let hasSummary = FileManager.default.fileExists(atPath: summaryURL.path)
        let hasMetrics = FileManager.default.fileExists(atPath: metricsURL.path)
        guard hasSummary || hasMetrics else {
            throw ReportError.notASaveDir(path: saveDir.path, reason: "it holds neither summary.json nor metrics.jsonl")
        }
        if hasSummary { summary = try Self.readObject(summaryURL) } else { notes.append("no summary.json (the run has not finished?)") }
        if hasMetrics { try readMetrics(metricsURL) } else { notes.append("no metrics.jsonl") }
        let configURL = saveDir.appendingPathComponent("config.json")
        if FileManager.default.fileExists(atPath: configURL.path) {
            config = try Self.readObject(configURL)
        } else {
            notes.append("no config.json (written by runs since the report was added)")
        }
        if evals.isEmpty, let history = summary?["evaluations"] as? [[String: Any]] {
            evals = history.compactMap { e in
                e.int("step").map { EvalPoint(step: $0, accuracy: e.double("test_accuracy"), loss: e.double("test_loss")) }
            }
        }
        reference = findReference()
    }

    /// A JSON file holding one object.
    static func readObject(_ url: URL) throws -> [String: Any] {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw ReportError.unreadable(file: url.path, reason: "\(error.localizedDescription)")
        }
        guard let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw ReportError.unreadable(file: url.path, reason: "not a JSON object")
        }
        return object
    }

    /// `metrics.jsonl`: `train`, `eval` and `compression` lines; other events are ignored
    /// (later versions may add some), unreadable lines are counted in `notes`.
    mutating func readMetrics(_ url: URL) throws {
        let text: String
        do { text = try String(contentsOf: url, encoding: .utf8) } catch {
            throw ReportError.unreadable(file: url.path, reason: "\(error.localizedDescription)")
        }
        var unreadable: [Int] = []
        for (index, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            guard !trimmed.isEmpty else { continue }
            guard let object = Self.parseLine(trimmed), let step = object.int("step") else {
                unreadable.append(index + 1)
                continue
            }
            switch object["event"] as? String {
            case "train":
                train.append(TrainPoint(step: step, loss: object.double("loss"), samplesPerSecond: object.double("samples_per_second")))
            case "eval":
                evals.append(EvalPoint(step: step, accuracy: object.double("test_accuracy"), loss: object.double("test_loss")))
            case "compression":
                let skip: Set<String> = ["event", "step", "trial", "compressor"]
                let values = object.keys.sorted().filter { !skip.contains($0) }.compactMap { k in object.double(k).map { (k, $0) } }
                events.append(Event(compressor: object["compressor"] as? String ?? "compressor", step: step,
                                    trial: object.int("trial") ?? 0, values: values))
            default: continue
            }
        }
        events.sort { ($0.step, $0.compressor) < ($1.step, $1.compressor) }
        if !unreadable.isEmpty {
            let shown = unreadable.prefix(5).map(String.init).joined(separator: ", ")
            notes.append("metrics.jsonl: \(unreadable.count) unreadable line(s) skipped (line \(shown)\(unreadable.count > 5 ? ", …" : ""))")
        }
    }

    /// One metrics line; bare `NaN` / `Infinity` (as Python's json module writes them) read as null.
    static func parseLine(_ line: String) -> [String: Any]? {
        if let object = (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any] { return object }
        let patched = line.replacingOccurrences(of: "-Infinity", with: "null")
            .replacingOccurrences(of: "Infinity", with: "null").replacingOccurrences(of: "NaN", with: "null")
        return (try? JSONSerialization.jsonObject(with: Data(patched.utf8))) as? [String: Any]
    }

    // MARK: the run this one started from

    /// The run whose weights this one started from: `gap_finetune.from` (the pruned run, whose
    /// own `init_from` is the FP32 model when it is recorded), else the job's `init_from` or
    /// the quantizer's `pretrained_model`.
    func findReference() -> Reference? {
        if let from = (summary?["gap_finetune"] as? [String: Any])?["from"] as? String, let pruned = locate(from) {
            let prunedConfig = try? Self.readObject(pruned.appendingPathComponent("config.json"))
            if let initFrom = prunedConfig?["init_from"] as? String, let fp32 = locate(initFrom, relativeTo: pruned, config: prunedConfig),
               let s = try? Self.readObject(fp32.appendingPathComponent("summary.json")) {
                return Reference(directory: fp32, relation: "the model the pruned run (\(from)) started from", summary: s)
            }
            if let s = try? Self.readObject(pruned.appendingPathComponent("summary.json")) {
                return Reference(directory: pruned, relation: "the pruned run", summary: s)
            }
        }
        let quantizer = (config?["compression"] as? [String: Any])?["quantizer"] as? [String: Any]
        let source = config?["init_from"] as? String
            ?? quantizer?["pretrained_model"] as? String ?? quantizer?["pretrain_model"] as? String
        guard let source, let dir = locate(source), let s = try? Self.readObject(dir.appendingPathComponent("summary.json")) else {
            return nil
        }
        return Reference(directory: dir, relation: "the run this one started from (\(source))", summary: s)
    }

    /// The save_dir a recorded path names. Relative paths were relative to the job's working
    /// directory, which is recovered from where the job's own `save_dir` ended up; a path
    /// inside a save_dir (a checkpoint, a weights file) leads to that save_dir.
    func locate(_ path: String, relativeTo run: URL? = nil, config runConfig: [String: Any]? = nil) -> URL? {
        var candidates: [URL] = []
        if path.hasPrefix("/") {
            candidates.append(URL(fileURLWithPath: path))
        } else {
            for base in Self.workingDirectories(run: run ?? saveDir, savedAs: (runConfig ?? config)?["save_dir"] as? String) {
                candidates.append(base.appendingPathComponent(path))
            }
        }
        for candidate in candidates {
            var dir = candidate.standardizedFileURL
            for _ in 0..<4 {
                if FileManager.default.fileExists(atPath: dir.appendingPathComponent("summary.json").path) { return dir }
                dir = dir.deletingLastPathComponent()
            }
        }
        return nil
    }

    /// The directory a run's relative `save_dir` was resolved from (when the path ends with
    /// it), then the current directory.
    static func workingDirectories(run: URL, savedAs: String?) -> [URL] {
        var bases: [URL] = []
        let runPath = run.standardizedFileURL.path
        if let savedAs, !savedAs.hasPrefix("/") {
            let relative = URL(fileURLWithPath: "/" + savedAs).standardizedFileURL.path
            if runPath.hasSuffix(relative) {
                bases.append(URL(fileURLWithPath: String(runPath.dropLast(relative.count)).isEmpty
                                 ? "/" : String(runPath.dropLast(relative.count))))
            }
        }
        bases.append(URL(fileURLWithPath: FileManager.default.currentDirectoryPath))
        return bases
    }
}

extension Dictionary where Key == String, Value == Any {
    /// A finite number under `key` (JSON numbers arrive as Int or Double), nil otherwise.
    func double(_ key: String) -> Double? {
        switch self[key] {
        case let d as Double: return d.isFinite ? d : nil
        case let i as Int: return Double(i)
        case let n as NSNumber: return n.doubleValue.isFinite ? n.doubleValue : nil
        default: return nil
        }
    }

    func int(_ key: String) -> Int? {
        switch self[key] {
        case let i as Int: return i
        case let d as Double where d == d.rounded() && abs(d) < 1e15: return Int(d)
        case let n as NSNumber: return n.intValue
        default: return nil
        }
    }

    func object(_ key: String) -> [String: Any]? { self[key] as? [String: Any] }
    func objects(_ key: String) -> [[String: Any]] { self[key] as? [[String: Any]] ?? [] }
}
