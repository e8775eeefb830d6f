import Foundation

/// Rank-aware console output: the chief prints, workers stay quiet (errors are printed by
/// every rank, prefixed `[rank r/N]`). Progress is a redrawn bar on a terminal and plain lines
/// otherwise.
public final class Logger {
    public let rank: Int
    public let worldSize: Int
    public let quiet: Bool
    let isTerminal: Bool
    private var barShown = false

    public init(rank: Int = 0, worldSize: Int = 1, quiet: Bool = false) {
        self.rank = rank
        self.worldSize = worldSize
        self.quiet = quiet
        isTerminal = isatty(STDERR_FILENO) != 0
    }

    var speaks: Bool { rank == 0 && !quiet }

    public func info(_ message: String) {
        guard speaks else { return }
        clearBar()
        FileHandle.standardError.write(Data((message + "\n").utf8))
    }

    /// Something the user should know that does not stop the job (chief only, even when quiet).
    public func warning(_ message: String) {
        guard rank == 0 else { return }
        clearBar()
        FileHandle.standardError.write(Data("warning: \(message)\n".utf8))
    }

    public func error(_ message: String) {
        clearBar()
        FileHandle.standardError.write(Data("[rank \(rank)/\(worldSize)] error: \(message)\n".utf8))
    }

    public func progress(step: Int, total: Int, loss: Double, samplesPerSecond: Double, etaSeconds: Double) {
        guard speaks else { return }
        let eta = String(format: "%d:%02d", Int(etaSeconds) / 60, Int(etaSeconds) % 60)
        if isTerminal {
            let width = 24
            let filled = total > 0 ? min(width, width * step / total) : 0
            let bar = String(repeating: "█", count: filled) + String(repeating: "·", count: width - filled)
            let line = String(format: "\r%@ %d/%d  loss %.4f  %.0f samples/s  ETA %@\u{1B}[K",
                              bar, step, total, loss, samplesPerSecond, eta)
            FileHandle.standardError.write(Data(line.utf8))
            barShown = true
        } else {
            info(String(format: "step %d/%d  loss %.4f  %.0f samples/s  ETA %@", step, total, loss, samplesPerSecond, eta))
        }
    }

    public func endProgress() { clearBar() }

    private func clearBar() {
        if barShown {
            FileHandle.standardError.write(Data("\n".utf8))
            barShown = false
        }
    }
}
