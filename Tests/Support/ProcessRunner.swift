import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The outcome of a child process run by `ProcessRunner`.
public struct ProcessResult {
    /// The exit status, or 128 + the signal number if a signal ended it.
    public var status: Int32
    public var stdout: String
    public var stderr: String
    /// Whether the deadline passed and the process tree was killed.
    public var timedOut: Bool
    public var seconds: Double
}

/// Runs a command (usually `mpirun …`) with a deadline, so that a hang fails a test instead of
/// hanging `swift test`.
///
/// The child starts in a session of its own (`POSIX_SPAWN_SETSID`). Open MPI puts each rank in
/// its own process group but leaves it in mpirun's session, so at the deadline the runner
/// sends SIGTERM to mpirun (which then kills its ranks), waits a grace period, and finally
/// SIGKILLs every process left in that session. Output goes to files (no pipe can fill up).
public enum ProcessRunner {
    /// `POSIX_SPAWN_SETSID` from glibc's <spawn.h> (a GNU extension Swift's Glibc does not import).
    private static let posixSpawnSetsid: Int16 = 0x80

    public static func run(_ arguments: [String], environment overrides: [String: String] = [:],
                    timeoutSeconds: Double, graceSeconds: Double = 3) throws -> ProcessResult {
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("ec-process-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let outPath = directory.appendingPathComponent("stdout").path
        let errPath = directory.appendingPathComponent("stderr").path

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_addopen(&actions, 2, errPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        posix_spawnattr_setflags(&attributes, posixSpawnSetsid)

        let environment = ProcessInfo.processInfo.environment.merging(overrides) { $1 }
        let argv = arguments.map { strdup($0) } + [nil]
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { (argv + envp).forEach { free($0) } }

        let start = Date()
        var pid: pid_t = 0
        let spawned = posix_spawnp(&pid, arguments[0], &actions, &attributes, argv, envp)
        guard spawned == 0 else {
            throw NSError(domain: "ProcessRunner", code: Int(spawned),
                          userInfo: [NSLocalizedDescriptionKey: "cannot start \(arguments[0]): errno \(spawned)"])
        }

        var status: Int32 = 0
        var timedOut = false
        if !waitForExit(pid, &status, until: start.addingTimeInterval(timeoutSeconds)) {
            timedOut = true
            kill(-pid, SIGTERM)
            if !waitForExit(pid, &status, until: Date().addingTimeInterval(graceSeconds)) {
                killSession(pid)
                waitpid(pid, &status, 0)
            }
        }
        killSession(pid)  // ranks that outlived mpirun, if any
        let seconds = Date().timeIntervalSince(start)
        let exitCode = status & 0x7f == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        return ProcessResult(status: exitCode, stdout: (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? "",
                             stderr: (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? "",
                             timedOut: timedOut, seconds: seconds)
    }

    /// Polls `waitpid` until the child exits (true) or `deadline` passes (false).
    private static func waitForExit(_ pid: pid_t, _ status: inout Int32, until deadline: Date) -> Bool {
        while Date() < deadline {
            if waitpid(pid, &status, WNOHANG) == pid { return true }
            usleep(20_000)
        }
        return false
    }

    /// SIGKILLs every process whose session id is `session` (read from /proc/<pid>/stat).
    public static func killSession(_ session: pid_t) {
        for pid in sessionMembers(session) { kill(pid, SIGKILL) }
    }

    /// Processes still alive (not zombies) in session `session`.
    public static func sessionMembers(_ session: pid_t) -> [pid_t] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap { entry -> pid_t? in
            guard let pid = pid_t(entry),
                  let stat = try? String(contentsOfFile: "/proc/\(entry)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { return nil }
            // Fields after "(comm) ": state ppid pgrp session …
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            guard fields.count > 3, fields[0] != "Z", pid_t(fields[3]) == session else { return nil }
            return pid
        }
    }
}

/// A test-harness failure, e.g. a missing program.
public struct HarnessError: Error, CustomStringConvertible {
    public let description: String
    public init(description: String) { self.description = description }
}

