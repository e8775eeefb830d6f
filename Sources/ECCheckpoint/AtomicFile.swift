import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Whole-file writes that a crash cannot leave half done.
///
/// `write(_:to:)` writes a temporary file in the target's directory, `fsync`s it, `rename`s it
/// over the target (atomic on POSIX file systems) and `fsync`s the directory so the rename
/// itself is durable. A reader — or a job restarted after a crash — sees either the old file or
/// the complete new one, never a prefix.
public enum AtomicFile {
    /// Atomically replaces (or creates) the file at `url` with `data`.
    ///
    /// On any failure before the rename, the previous file at `url` is untouched and the
    /// temporary file is removed. A failure of the final directory `fsync` is reported even
    /// though the new file is already in place (its durability is then unknown).
    ///
    /// - Throws: `CheckpointError.fileSystem` with the failing operation, path and errno text.
    public static func write(_ data: Data, to url: URL) throws {
        try write(data, to: url, beforeRename: {})
    }

    /// `write(_:to:)` with a hook run just before the rename; tests make it throw to simulate
    /// a failure at the last moment.
    static func write(_ data: Data, to url: URL, beforeRename: () throws -> Void) throws {
        do {
            try writeViaTemporary(data, to: url, beforeRename: beforeRename)
        } catch let CheckpointError.fileSystem(operation, path, reason) where path != url.path {
            // Name the file the caller asked for, not the hidden temporary one (whose name means
            // nothing to a user): "write" covers creating, writing, syncing and renaming it.
            let step = operation.hasPrefix("rename") ? "write (rename into place)" : "write (\(operation))"
            throw CheckpointError.fileSystem(operation: step, path: url.path, reason: reason)
        }
    }

    private static func writeViaTemporary(_ data: Data, to url: URL, beforeRename: () throws -> Void) throws {
        let directory = url.deletingLastPathComponent()
        let temporary = directory.appendingPathComponent(temporaryName(for: url.lastPathComponent))
        var fd = try FileSystem.openFile(temporary.path, O_WRONLY | O_CREAT | O_EXCL)
        var renamed = false
        defer {
            if fd >= 0 { try? FileSystem.closeFile(fd, temporary.path) }
            if !renamed { try? FileSystem.removeFile(temporary) }
        }
        try FileSystem.writeAll(fd, data, temporary.path)
        try FileSystem.syncFile(fd, temporary.path)
        let closing = fd
        fd = -1
        try FileSystem.closeFile(closing, temporary.path)
        try beforeRename()
        try FileSystem.renameItem(temporary, to: url)
        renamed = true
        try FileSystem.fsyncDirectory(directory)
    }

    /// `.name.tmp-<pid>-<random>`: hidden, unique, and never equal to a name the caller uses.
    static func temporaryName(for name: String) -> String {
        ".\(name).tmp-\(FileSystem.uniqueSuffix())"
    }
}
