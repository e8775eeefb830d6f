import Foundation

/// Appends one JSON object per line to `save_dir/metrics.jsonl` (chief only). Each line has
/// an `event` ("train", "eval", …), the `step`, and event-specific numbers. A number that is
/// not finite (a diverged loss) is written as `null`, which JSON can hold.
public final class MetricsLog {
    public let url: URL
    private let handle: FileHandle?

    /// Opens (truncating) the metrics file; `enabled: false` gives a log that writes nothing
    /// (used on worker ranks).
    public init(url: URL, enabled: Bool, append: Bool = false) throws {
        self.url = url
        guard enabled else { handle = nil; return }
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        if !append || !FileManager.default.fileExists(atPath: url.path) {
            _ = FileManager.default.createFile(atPath: url.path, contents: nil)
        }
        handle = try FileHandle(forWritingTo: url)
        handle?.seekToEndOfFile()
    }

    deinit { try? handle?.close() }

    public func write(_ event: String, step: Int, _ values: [String: Any]) {
        guard let handle else { return }
        var object = values.mapValues { value -> Any in
            if let d = value as? Double, !d.isFinite { return NSNull() }
            return value
        }
        object["event"] = event
        object["step"] = step
        guard let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]) else { return }
        handle.write(data)
        handle.write(Data([0x0A]))
    }

    /// On resume from the checkpoint of `step`: drops the lines written after it (the resumed
    /// job writes them again) and a last line cut off by the interruption, so every step is
    /// logged once.
    public func discardLines(after step: Int) {
        guard let handle, let data = try? Data(contentsOf: url) else { return }
        var kept = Data()
        for line in data.split(separator: 0x0A, omittingEmptySubsequences: true) {
            guard let object = try? JSONSerialization.jsonObject(with: Data(line)) as? [String: Any],
                  let lineStep = object["step"] as? Int, lineStep <= step else { continue }
            kept.append(contentsOf: line)
            kept.append(0x0A)
        }
        handle.truncateFile(atOffset: 0)
        handle.write(kept)
    }
}
