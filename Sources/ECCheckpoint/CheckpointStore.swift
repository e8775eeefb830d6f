import ECTensor
import Foundation

/// The checkpoints of a job, one directory per saved step under `save_dir/checkpoints/`:
///
/// ```
/// checkpoints/
///   step-00000120/
///     tensors.safetensors   model tensors (F32) + extra entries, readable by Python safetensors
///     state.json            the caller's JSON (step, epoch, RNG, config, compressor state)
///     manifest.json         written last: format version, step, file sizes and XXH64 checksums
/// ```
///
/// A checkpoint is built in a hidden staging directory (`.tmp-step-…`), each file written with
/// `AtomicFile` and the manifest last, then renamed into place; a crash at any point leaves
/// either no `step-…` directory or a complete one, and the previous checkpoints untouched.
/// Older checkpoints are deleted only after the new one is complete. One process (rank 0)
/// writes a store at a time; saving removes staging leftovers of crashed runs.
///
/// Loading is in `CheckpointStore+Loading.swift`.
public struct CheckpointStore {
    /// The `checkpoints/` directory; created by the first `save`.
    public let directory: URL

    /// Points in `save` where tests inject a failure (simulating a crash or an I/O error).
    enum SaveStage { case tensorsWritten, stateWritten, manifestWritten, committed }
    /// Called at each `SaveStage`; a throw aborts the save there. Tests only.
    var failpoint: (SaveStage) throws -> Void = { _ in }

    /// A store over `directory` (`save_dir/checkpoints`).
    public init(directory: URL) {
        self.directory = directory
    }

    /// `step-00000120`: the directory name of a step, zero-padded to 8 digits so names sort by step.
    public static func directoryName(step: Int) -> String {
        let digits = String(step)
        return "step-" + String(repeating: "0", count: max(0, 8 - digits.count)) + digits
    }

    /// The step of a `step-NNN` directory name, or nil for any other name.
    public static func step(fromDirectoryName name: String) -> Int? {
        guard name.hasPrefix("step-") else { return nil }
        let digits = name.dropFirst(5)
        guard !digits.isEmpty, digits.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
        return Int(digits)
    }

    /// The directory of step `step` (which may not exist).
    public func url(step: Int) -> URL {
        directory.appendingPathComponent(Self.directoryName(step: step), isDirectory: true)
    }

    /// Saves a complete checkpoint for `step`, then deletes all but the newest `keepLast`.
    ///
    /// An existing checkpoint for the same step is replaced. The new checkpoint always counts
    /// among the kept ones, even if checkpoints of later steps exist (a job resumed from an
    /// earlier step); the others are kept newest-step first.
    ///
    /// - Parameters:
    ///   - step: the training step, ≥ 0.
    ///   - tensors: Float32 tensors, saved as F32 entries under their names.
    ///   - extraEntries: further entries of any dtype (masks, int8 weights); their names must
    ///     differ from the tensors'.
    ///   - state: the caller's JSON, stored verbatim as `state.json`.
    ///   - keepLast: how many checkpoints to keep, ≥ 1.
    /// - Returns: the new checkpoint.
    /// - Throws: `invalidArgument` for a negative step or `keepLast` < 1, `duplicateTensor`
    ///   for a name in both `tensors` and `extraEntries`, `fileSystem` for I/O failures (the
    ///   previous checkpoints are then intact).
    @discardableResult
    public func save(step: Int, tensors: NamedTensors, extraEntries: [String: SafeTensorsEntry] = [:],
                     state: Data, keepLast: Int) throws -> CheckpointReference {
        guard step >= 0 else {
            throw CheckpointError.invalidArgument(name: "step", value: "\(step)", expected: "≥ 0")
        }
        guard keepLast >= 1 else {
            throw CheckpointError.invalidArgument(name: "keepLast", value: "\(keepLast)", expected: "≥ 1")
        }
        let target = url(step: step)
        let tensorsPath = target.appendingPathComponent(CheckpointManifest.tensorsFileName).path
        var contents = SafeTensors(tensors: tensors, metadata: ["step": "\(step)"])
        for name in extraEntries.keys.sorted() {
            guard contents[name] == nil else { throw CheckpointError.duplicateTensor(file: tensorsPath, tensor: name) }
            contents[name] = extraEntries[name]
        }
        let tensorsData = try contents.encoded(file: tensorsPath)

        try makeStoreDirectory()
        let staging = directory.appendingPathComponent(".tmp-\(target.lastPathComponent)-\(FileSystem.uniqueSuffix())")
        do {
            try write(staging: staging, target: target, step: step, tensorsData: tensorsData, state: state,
                      extraEntries: Array(extraEntries.keys))
        } catch let CheckpointError.fileSystem(operation, path, reason) where path.hasPrefix(staging.path) {
            // Name the checkpoint being written, not its hidden staging directory.
            throw CheckpointError.fileSystem(operation: "save checkpoint (\(operation))",
                                             path: target.path + path.dropFirst(staging.path.count), reason: reason)
        }
        try FileSystem.fsyncDirectory(directory)
        try failpoint(.committed)
        try prune(keepLast: keepLast, newStep: step)
        return CheckpointReference(step: step, url: target)
    }

    /// Writes the checkpoint's files into `staging`, then renames it to `target`; on failure
    /// the staging directory is removed.
    private func write(staging: URL, target: URL, step: Int, tensorsData: Data, state: Data,
                       extraEntries: [String]) throws {
        try FileSystem.makeDirectory(staging)
        var committed = false
        defer { if !committed { try? FileSystem.removeItem(staging) } }

        try AtomicFile.write(tensorsData, to: staging.appendingPathComponent(CheckpointManifest.tensorsFileName))
        try failpoint(.tensorsWritten)
        try AtomicFile.write(state, to: staging.appendingPathComponent(CheckpointManifest.stateFileName))
        try failpoint(.stateWritten)
        let manifest = CheckpointManifest(step: step,
                                          files: [(CheckpointManifest.stateFileName, state),
                                                  (CheckpointManifest.tensorsFileName, tensorsData)],
                                          extraEntries: extraEntries)
        try AtomicFile.write(try manifest.encoded(), to: staging.appendingPathComponent(CheckpointManifest.fileName))
        try failpoint(.manifestWritten)

        try commit(staging, to: target)
        committed = true
    }

    private func makeStoreDirectory() throws {
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        } catch {
            throw CheckpointError.fileSystem(operation: "mkdir", path: directory.path,
                                             reason: error.localizedDescription)
        }
    }

    /// Renames the complete staging directory to `target`, moving an existing `target` aside
    /// first (and back if the rename fails). A crash between the two renames leaves both copies
    /// under hidden names: `latest` then falls back to the previous step, never to a torn one.
    private func commit(_ staging: URL, to target: URL) throws {
        guard FileSystem.exists(target) else { return try FileSystem.renameItem(staging, to: target) }
        let trash = directory.appendingPathComponent(".trash-\(target.lastPathComponent)-\(FileSystem.uniqueSuffix())")
        try FileSystem.renameItem(target, to: trash)
        do {
            try FileSystem.renameItem(staging, to: target)
        } catch {
            try? FileSystem.renameItem(trash, to: target)
            throw error
        }
        try? FileSystem.removeItem(trash)
    }

    /// Deletes complete checkpoints beyond the newest `keepLast` (always keeping `newStep`),
    /// incomplete step directories older than `newStep`, and staging or trash leftovers.
    /// A checkpoint loses its manifest first, so a deletion cut short leaves an incomplete
    /// directory rather than a damaged one that looks complete.
    private func prune(keepLast: Int, newStep: Int) throws {
        var complete: [CheckpointReference] = []
        for name in try FileSystem.contentsOfDirectory(directory) ?? [] {
            let url = directory.appendingPathComponent(name)
            if name.hasPrefix(".tmp-step-") || name.hasPrefix(".trash-step-") {
                try FileSystem.removeItem(url)
            } else if let step = Self.step(fromDirectoryName: name), step != newStep {
                if FileSystem.exists(url.appendingPathComponent(CheckpointManifest.fileName)) {
                    complete.append(CheckpointReference(step: step, url: url))
                } else if step < newStep {
                    try FileSystem.removeItem(url)
                }
            }
        }
        for old in complete.sorted(by: { $0.step > $1.step }).dropFirst(keepLast - 1) {
            try FileSystem.removeItem(old.url.appendingPathComponent(CheckpointManifest.fileName))
            try FileSystem.removeItem(old.url)
        }
    }
}
