import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The module's system-call funnel: every POSIX call goes through `call`, which retries
/// `EINTR` and turns a failure into `CheckpointError.fileSystem` carrying the path and the
/// errno text. Foundation file-manager errors are converted the same way.
enum FileSystem {
    /// Runs `body` until it does not fail with `EINTR`; a result of -1 throws with `errno`'s text.
    @discardableResult
    static func call<R: BinaryInteger>(_ operation: String, _ path: String, _ body: () -> R) throws -> R {
        while true {
            let result = body()
            if result != -1 { return result }
            let code = errno
            if code == EINTR { continue }
            throw CheckpointError.fileSystem(operation: operation, path: path, reason: errnoText(code))
        }
    }

    static func errnoText(_ code: Int32) -> String {
        "\(String(cString: strerror(code))) (errno \(code))"
    }

    /// Opens `path` with `flags` (and `mode` when creating); always close-on-exec.
    static func openFile(_ path: String, _ flags: Int32, mode: mode_t = 0o644) throws -> Int32 {
        try call("open", path) { open(path, flags | O_CLOEXEC, mode) }
    }

    static func closeFile(_ fd: Int32, _ path: String) throws {
        // EINTR from close must not be retried on Linux: the descriptor is already released.
        if close(fd) != 0, errno != EINTR {
            throw CheckpointError.fileSystem(operation: "close", path: path, reason: errnoText(errno))
        }
    }

    /// Writes every byte of `data`, continuing after short writes.
    static func writeAll(_ fd: Int32, _ data: Data, _ path: String) throws {
        try data.withUnsafeBytes { (buffer: UnsafeRawBufferPointer) in
            var offset = 0
            while offset < buffer.count {
                let written = try call("write", path) { write(fd, buffer.baseAddress! + offset, buffer.count - offset) }
                offset += written
            }
        }
    }

    static func syncFile(_ fd: Int32, _ path: String) throws {
        try call("fsync", path) { fsync(fd) }
    }

    /// Flushes a directory's entries (a completed `rename` or `mkdir`) to disk.
    static func fsyncDirectory(_ url: URL) throws {
        let fd = try openFile(url.path, O_RDONLY | O_DIRECTORY)
        defer { try? closeFile(fd, url.path) }
        try syncFile(fd, url.path)
    }

    static func renameItem(_ from: URL, to: URL) throws {
        try call("rename to \(to.path)", from.path) { rename(from.path, to.path) }
    }

    static func makeDirectory(_ url: URL) throws {
        try call("mkdir", url.path) { mkdir(url.path, 0o755) }
    }

    static func removeFile(_ url: URL) throws {
        try call("unlink", url.path) { unlink(url.path) }
    }

    /// The whole file.
    static func readFile(_ url: URL) throws -> Data {
        let fd = try openFile(url.path, O_RDONLY)
        defer { try? closeFile(fd, url.path) }
        var data = Data()
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let count = try chunk.withUnsafeMutableBytes { buffer in
                try call("read", url.path) { read(fd, buffer.baseAddress!, buffer.count) }
            }
            if count == 0 { return data }
            data.append(contentsOf: chunk[0..<count])
        }
    }

    /// Removes a file or a directory tree; a missing item is not an error.
    static func removeItem(_ url: URL) throws {
        do {
            try FileManager.default.removeItem(at: url)
        } catch let error as CocoaError where error.code == .fileNoSuchFile {
            return
        } catch {
            throw CheckpointError.fileSystem(operation: "remove", path: url.path, reason: error.localizedDescription)
        }
    }

    /// Names in a directory (unsorted), or nil when it does not exist.
    static func contentsOfDirectory(_ url: URL) throws -> [String]? {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) else { return nil }
        guard isDirectory.boolValue else {
            throw CheckpointError.fileSystem(operation: "list", path: url.path, reason: "not a directory")
        }
        do {
            return try FileManager.default.contentsOfDirectory(atPath: url.path)
        } catch {
            throw CheckpointError.fileSystem(operation: "list", path: url.path, reason: error.localizedDescription)
        }
    }

    static func exists(_ url: URL) -> Bool {
        FileManager.default.fileExists(atPath: url.path)
    }

    /// A random suffix for temporary names: process id and 64 random bits.
    static func uniqueSuffix() -> String {
        "\(getpid())-\(String(UInt64.random(in: 0...UInt64.max), radix: 16))"
    }
}
