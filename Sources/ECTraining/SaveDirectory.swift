import Foundation
import ECCheckpoint
import ECCompression
#if canImport(Glibc)
import Glibc
#endif

/// A job's `save_dir` before it is written: what run it already holds, whether this process
/// can write there, and — once every check of the job has passed — clearing a run that
/// `--overwrite` replaces. Every failure is a `ConfigError` on the key `save_dir` that names
/// the path and what to do (no Foundation error domains, no temporary file names).
public struct SaveDirectory {
    /// The directory as the job names it.
    public let path: String
    public var url: URL { URL(fileURLWithPath: path) }

    public init(path: String) {
        self.path = path
    }

    /// What a training run writes into its save_dir (docs/formats.md): these, and only these,
    /// are what `--overwrite` removes. Other files (an export the user wrote there) stay.
    public static let runFiles = ["checkpoints", "summary.json", "metrics.jsonl", "config.json", "report.html",
                                  QuantizationPlan.fileName]

    /// A run found in a save_dir.
    public struct ExistingRun: Equatable, CustomStringConvertible {
        /// The run's files and folders present (of `runFiles`), `checkpoints/` with a slash.
        public var files: [String]
        /// The newest checkpoint's step (from its folder name; not verified), else the steps of
        /// `summary.json`.
        public var step: Int?
        /// The model, from `summary.json`, the newest checkpoint's `state.json` or `config.json`.
        public var model: String?
        /// When the run last wrote any of its files.
        public var lastWritten: Date?
        /// Whether it has a `summary.json` (it ran to the end).
        public var finished: Bool

        public var description: String {
            var parts: [String] = []
            if let model { parts.append(model) }
            if let step { parts.append("step \(step)" + (finished ? " (finished)" : " (not finished)")) }
            if let lastWritten { parts.append("last written \(Self.format(lastWritten))") }
            return (parts.isEmpty ? "" : parts.joined(separator: ", ") + "; ") + files.joined(separator: ", ")
        }

        static func format(_ date: Date) -> String {
            let f = DateFormatter()
            f.locale = Locale(identifier: "en_US_POSIX")
            f.timeZone = TimeZone(identifier: "UTC")
            f.dateFormat = "yyyy-MM-dd HH:mm 'UTC'"
            return f.string(from: date)
        }
    }

    /// The run this save_dir holds, or nil when it holds none of a run's files (a missing or
    /// empty directory, or one with only other files).
    public func existingRun() -> ExistingRun? {
        let fm = FileManager.default
        var files: [String] = []
        var newest: Date?
        func touch(_ url: URL) {
            guard let date = (try? fm.attributesOfItem(atPath: url.path))?[.modificationDate] as? Date else { return }
            newest = max(newest ?? date, date)
        }
        var steps: [(step: Int, url: URL)] = []
        for name in Self.runFiles {
            let item = url.appendingPathComponent(name)
            var isDirectory: ObjCBool = false
            guard fm.fileExists(atPath: item.path, isDirectory: &isDirectory) else { continue }
            if name == "checkpoints" {
                let entries = isDirectory.boolValue ? ((try? fm.contentsOfDirectory(atPath: item.path)) ?? []) : []
                steps = entries.compactMap { entry in
                    CheckpointStore.step(fromDirectoryName: entry).map { ($0, item.appendingPathComponent(entry)) }
                }.sorted { $0.step < $1.step }
                // An empty checkpoints/ (a run stopped before its first checkpoint) still counts.
                files.append("checkpoints/" + (steps.isEmpty ? "" : " (\(steps.count) checkpoint\(steps.count == 1 ? "" : "s"))"))
                steps.forEach { touch($0.url) }
            } else {
                files.append(name)
            }
            touch(item)
        }
        guard !files.isEmpty else { return nil }
        let summary = json(url.appendingPathComponent("summary.json"))
        let state = steps.last.flatMap { json($0.url.appendingPathComponent("state.json")) }
        let config = json(url.appendingPathComponent("config.json"))
        let configModel: String? = (config?["model"] as? String)
            ?? ((config?["model"] as? [String: Any])?["onnx"] as? String).map { URL(fileURLWithPath: $0).deletingPathExtension().lastPathComponent }
        return ExistingRun(files: files, step: steps.last?.step ?? (summary?["steps"] as? Int),
                           model: (summary?["model"] as? String) ?? (state?["model"] as? String) ?? configModel,
                           lastWritten: newest, finished: summary != nil)
    }

    private func json(_ url: URL) -> [String: Any]? {
        guard let data = try? Data(contentsOf: url) else { return nil }
        return (try? JSONSerialization.jsonObject(with: data)) as? [String: Any]
    }

    /// The refusal to train into a save_dir holding `run` without `--resume` or `--overwrite`.
    public func runExistsError(_ run: ExistingRun) -> ConfigError {
        .invalid(path: "save_dir", reason: "\(path) already holds a run (\(run)); nothing was changed. "
                 + "To continue that run, add --resume (or resume: true in the job); to replace it, add --overwrite; "
                 + "or choose another save_dir")
    }

    /// Checks that this process can create `path` and write into it, without writing anything
    /// that stays: `path` (or, when it does not exist yet, its nearest existing parent) must be
    /// a directory on a writable file system that this user may write to. A hidden probe
    /// directory is made and removed there, which catches what permission bits do not (a
    /// read-only mount seen by root, pseudo file systems).
    ///
    /// - Throws: `ConfigError.invalid(path: "save_dir", …)` naming the path, the reason and the fix.
    public func checkWritable() throws {
        guard !path.isEmpty else {
            throw ConfigError.invalid(path: "save_dir", reason: "is empty; hint: give a directory such as runs/my-job")
        }
        let fm = FileManager.default
        var existing = url.standardizedFileURL
        var isDirectory: ObjCBool = false
        while !fm.fileExists(atPath: existing.path, isDirectory: &isDirectory) {
            let parent = existing.deletingLastPathComponent()
            if parent.path == existing.path { break }
            existing = parent
        }
        let fix = "hint: choose a save_dir on a writable disk (e.g. under runs/ in a directory you own)"
        guard isDirectory.boolValue else {
            let which = existing.path == url.standardizedFileURL.path ? "is a file" : "cannot be created: \(existing.path) is a file"
            throw ConfigError.invalid(path: "save_dir", reason: "\(path) \(which), not a directory; "
                                      + "hint: choose another save_dir, or move that file away")
        }
        for item in [existing] + Self.runFiles.map({ url.appendingPathComponent($0) }) where fm.fileExists(atPath: item.path) {
            if access(item.path, W_OK) != 0 {
                throw ConfigError.invalid(path: "save_dir", reason: describe(errno, at: item.path) + "; " + fix)
            }
        }
        let probe = existing.appendingPathComponent(".easycompress-write-check-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        if mkdir(probe.path, 0o700) != 0 {
            throw ConfigError.invalid(path: "save_dir", reason: describe(errno, at: existing.path) + "; " + fix)
        }
        rmdir(probe.path)
    }

    /// The save_dir's problem in words, from a failed call's errno at `item`.
    private func describe(_ code: Int32, at item: String) -> String {
        let place = item == url.standardizedFileURL.path || item == path ? path : "\(path) (at \(item))"
        switch code {
        case EROFS: return "\(place) is on a read-only file system"
        case EACCES, EPERM: return "\(place) is not writable by this user"
        case ENOSPC, EDQUOT: return "\(place) has no space left"
        default: return "\(place) cannot be written: \(String(cString: strerror(code)))"
        }
    }

    /// Creates the directory (and its parents) if needed.
    ///
    /// - Throws: `ConfigError` on `save_dir` naming the path and the reason.
    public func create() throws {
        do {
            try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        } catch {
            throw ConfigError.invalid(path: "save_dir", reason: "cannot create \(path): \(Self.reason(error))")
        }
    }

    /// Removes the run's own files (`runFiles`) before `--overwrite` writes a new run there.
    public func clearRun() throws {
        for name in Self.runFiles {
            let item = url.appendingPathComponent(name)
            guard FileManager.default.fileExists(atPath: item.path) else { continue }
            do {
                try FileManager.default.removeItem(at: item)
            } catch {
                throw ConfigError.invalid(path: "save_dir", reason: "cannot remove \(item.path) to overwrite the run: "
                                          + Self.reason(error))
            }
        }
    }

    /// A Foundation or POSIX error as one plain phrase.
    static func reason(_ error: Error) -> String {
        let ns = error as NSError
        if let underlying = ns.userInfo[NSUnderlyingErrorKey] as? NSError, underlying.domain == NSPOSIXErrorDomain {
            return String(cString: strerror(Int32(underlying.code)))
        }
        if ns.domain == NSPOSIXErrorDomain { return String(cString: strerror(Int32(ns.code))) }
        return ns.domain == NSCocoaErrorDomain ? ns.localizedDescription : "\(error)"
    }
}
