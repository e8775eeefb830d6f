/// Why a run report cannot be made: each case names the path and what is wrong with it.
public enum ReportError: Error, Equatable, CustomStringConvertible {
    /// The directory is not a training job's `save_dir`.
    case notASaveDir(path: String, reason: String)
    /// A file of the save_dir exists but cannot be read as what it should be.
    case unreadable(file: String, reason: String)

    public var description: String {
        switch self {
        case let .notASaveDir(path, reason):
            return "\(path) is not a training run's save_dir: \(reason)"
        case let .unreadable(file, reason):
            return "cannot read \(file): \(reason)"
        }
    }
}
