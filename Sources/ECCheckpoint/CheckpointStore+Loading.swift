import ECTensor
import Foundation

extension CheckpointStore {
    /// The checkpoints that have a manifest (complete as written; not yet verified), oldest first.
    /// Empty when the directory does not exist.
    public func checkpoints() throws -> [CheckpointReference] {
        try stepDirectories().filter {
            FileSystem.exists($0.url.appendingPathComponent(CheckpointManifest.fileName))
        }
    }

    /// The newest checkpoint whose manifest, file sizes and checksums verify, or nil if none does.
    ///
    /// Staging directories and step directories without a manifest (interrupted saves) are
    /// skipped, and so are corrupt checkpoints; each skipped step directory is reported to
    /// `onSkip` with the reason, so the caller can log it.
    ///
    /// - Throws: `fileSystem` only if the store directory cannot be listed.
    public func latest(onSkip: (CheckpointReference, CheckpointError) -> Void = { _, _ in }) throws
        -> CheckpointReference? {
        for candidate in try stepDirectories().reversed() {
            do {
                _ = try readVerified(candidate.url)
                return candidate
            } catch let error as CheckpointError {
                onSkip(candidate, error)
            }
        }
        return nil
    }

    /// Loads the newest checkpoint that loads without error (see `latest(onSkip:)`), or nil.
    public func loadLatest(onSkip: (CheckpointReference, CheckpointError) -> Void = { _, _ in }) throws
        -> Checkpoint? {
        for candidate in try stepDirectories().reversed() {
            do {
                return try load(candidate.url)
            } catch let error as CheckpointError {
                onSkip(candidate, error)
            }
        }
        return nil
    }

    /// Loads and verifies the checkpoint of `step`.
    ///
    /// - Throws: `checkpointNotFound` if there is no directory for `step`, otherwise as `load(_:)`.
    public func load(step: Int) throws -> Checkpoint {
        let url = url(step: step)
        guard FileSystem.exists(url) else {
            throw CheckpointError.checkpointNotFound(directory: directory.path, step: step)
        }
        return try load(url)
    }

    /// Loads and verifies the checkpoint directory at `url` (which may lie outside the store).
    ///
    /// - Throws: `checkpointNotFound` if `url` does not exist; `missingManifest`,
    ///   `invalidManifest` or `unsupportedManifestVersion` for a bad manifest; `sizeMismatch` or
    ///   `checksumMismatch` for a damaged file; any safetensors validation error; `missingTensor`
    ///   for an extra entry the manifest lists but the file lacks; `dtypeMismatch` for a model
    ///   tensor that is not F32; `fileSystem` for I/O failures.
    public func load(_ url: URL) throws -> Checkpoint {
        let (manifest, files) = try readVerified(url)
        let tensorsURL = url.appendingPathComponent(CheckpointManifest.tensorsFileName)
        let contents = try SafeTensors(decoding: files[CheckpointManifest.tensorsFileName]!, file: tensorsURL.path)
        var extraEntries: [String: SafeTensorsEntry] = [:]
        for name in manifest.extraEntries {
            guard let entry = contents[name] else {
                throw CheckpointError.missingTensor(file: tensorsURL.path, tensor: name)
            }
            extraEntries[name] = entry
        }
        var tensors = NamedTensors()
        for name in contents.names where extraEntries[name] == nil {
            let entry = contents[name]!
            guard let tensor = entry.tensor else {
                throw CheckpointError.dtypeMismatch(file: tensorsURL.path, tensor: name, expected: .f32,
                                                    actual: entry.dtype)
            }
            tensors[name] = tensor
        }
        return Checkpoint(step: manifest.step, url: url, tensors: tensors, extraEntries: extraEntries,
                          state: files[CheckpointManifest.stateFileName]!)
    }

    /// Verifies the checkpoint at `url` without decoding it: manifest, file sizes, checksums.
    public func verify(_ url: URL) throws {
        _ = try readVerified(url)
    }

    /// The `step-NNN` entries of the store directory, oldest first.
    private func stepDirectories() throws -> [CheckpointReference] {
        let names = try FileSystem.contentsOfDirectory(directory) ?? []
        return names.compactMap { name in
            Self.step(fromDirectoryName: name).map {
                CheckpointReference(step: $0, url: directory.appendingPathComponent(name, isDirectory: true))
            }
        }
        .sorted { ($0.step, $0.url.lastPathComponent) < ($1.step, $1.url.lastPathComponent) }
    }

    /// The manifest and the contents of every file it lists, each checked against its recorded
    /// size and checksum.
    private func readVerified(_ url: URL) throws -> (CheckpointManifest, [String: Data]) {
        guard FileSystem.exists(url) else {
            throw CheckpointError.checkpointNotFound(directory: url.path, step: nil)
        }
        let manifestURL = url.appendingPathComponent(CheckpointManifest.fileName)
        guard FileSystem.exists(manifestURL) else { throw CheckpointError.missingManifest(directory: url.path) }
        let manifest = try CheckpointManifest.decode(try FileSystem.readFile(manifestURL), file: manifestURL.path,
                                                     expectedStep: Self.step(fromDirectoryName: url.lastPathComponent))
        var files: [String: Data] = [:]
        for record in manifest.files {
            let fileURL = url.appendingPathComponent(record.name)
            let data = try FileSystem.readFile(fileURL)
            guard data.count == record.bytes else {
                throw CheckpointError.sizeMismatch(file: fileURL.path, expectedBytes: record.bytes,
                                                   actualBytes: data.count)
            }
            let checksum = XXHash64.hexDigest(XXHash64.hash(data))
            guard checksum == record.xxh64.lowercased() else {
                throw CheckpointError.checksumMismatch(file: fileURL.path, expected: record.xxh64, actual: checksum)
            }
            files[record.name] = data
        }
        return (manifest, files)
    }
}
