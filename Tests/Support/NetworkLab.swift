import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Several "hosts" on this machine for multi-host tests: network namespaces joined by a bridge
/// and named in /etc/hosts, made and removed by `launch/netns-lab` (docs/distributed.md).
///
/// Needs root and `ip` (iproute2); `unavailableReason` says why not otherwise. One lab at a
/// time per machine: `lock()` takes an exclusive `flock` on `lockPath`, so that two test runs
/// (from two checkouts) never tear down each other's namespaces.
public struct NetworkLab {
    public private(set) var hosts: [String]
    public let bridge: String
    /// The /24 prefix: the bridge is `.1`, `hosts[k]` is `.(11 + k)`.
    public let subnet: String
    /// Each host's link rate in each direction (`EC_LAB_RATE`, e.g. `1gbit`); nil: unshaped.
    public private(set) var rate: String?
    public var cidr: String { "\(subnet).0/24" }
    public var script: String { TestPaths.repository.appendingPathComponent("launch/netns-lab").path }
    public static let lockPath = "/tmp/ec-network-lab.lock"

    private var environment: [String: String] {
        ["EC_LAB_BRIDGE": bridge, "EC_LAB_SUBNET": subnet, "EC_LAB_RATE": rate ?? ""]
    }
    private var lockDescriptor: Int32 = -1

    public init(hosts: [String], bridge: String, subnet: String, rate: String? = nil) {
        self.hosts = hosts
        self.bridge = bridge
        self.subnet = subnet
        self.rate = rate
    }

    /// This lab (and its lock, if held) with other hosts and link rate; take it down first
    /// when it is up.
    public func with(hosts: [String], rate: String?) -> NetworkLab {
        var copy = self
        copy.hosts = hosts
        copy.rate = rate
        return copy
    }

    /// The qdisc lines of `host`'s link as `tc` shows them (its eth0; empty when unshaped).
    public func shaping(of host: String) throws -> String {
        let tc = ["/usr/sbin/tc", "/sbin/tc", "/usr/bin/tc"].first { FileManager.default.isExecutableFile(atPath: $0) } ?? "tc"
        return try ProcessRunner.run([tc, "-n", host, "qdisc", "show", "dev", "eth0"], timeoutSeconds: 10).stdout
            .split(separator: "\n").filter { $0.contains("tbf") }.joined(separator: "\n")
    }

    /// The `ip` executable, if installed.
    public static var ipPath: String? {
        ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"].first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// Whether the lab must run (`EC_REQUIRE_NETNS=1`, set by `launch/test`): a machine that
    /// cannot host it then fails the multi-host tests instead of skipping them.
    public static var required: Bool { ProcessInfo.processInfo.environment["EC_REQUIRE_NETNS"] == "1" }

    /// Why this machine cannot host the lab, or nil when it can.
    public static var unavailableReason: String? {
        if getuid() != 0 { return "network namespaces need root (uid \(getuid()))" }
        if ipPath == nil { return "`ip` not found (Debian package iproute2)" }
        return nil
    }

    /// Takes the machine-wide lab lock, waiting up to `timeoutSeconds` for another run.
    public mutating func lock(timeoutSeconds: Double = 180) throws {
        guard lockDescriptor < 0 else { return }
        let fd = open(Self.lockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw HarnessError(description: "cannot open \(Self.lockPath): errno \(errno)") }
        let deadline = Date().addingTimeInterval(timeoutSeconds)
        while flock(fd, LOCK_EX | LOCK_NB) != 0 {
            guard Date() < deadline else {
                close(fd)
                throw HarnessError(description: "another test run holds \(Self.lockPath) for more than \(timeoutSeconds) s")
            }
            usleep(200_000)
        }
        lockDescriptor = fd
    }

    public mutating func unlock() {
        guard lockDescriptor >= 0 else { return }
        flock(lockDescriptor, LOCK_UN)
        close(lockDescriptor)
        lockDescriptor = -1
    }

    /// Creates the namespaces, bridge and /etc/hosts lines (removing leftovers first).
    public func up() throws { try run("up") }

    /// Removes everything `up` made, and kills any process still inside a namespace.
    public func down() throws { try run("down") }

    /// What is left of the lab on this machine (empty when clean): namespaces, the bridge,
    /// /etc/hosts lines.
    public func leftovers() throws -> [String] {
        var found = [String]()
        let ip = Self.ipPath ?? "ip"
        let namespaces = try ProcessRunner.run([ip, "netns", "list"], timeoutSeconds: 10).stdout
            .split(separator: "\n").compactMap { $0.split(separator: " ").first.map(String.init) }
        found += hosts.filter(namespaces.contains).map { "namespace \($0)" }
        if try ProcessRunner.run([ip, "link", "show", bridge], timeoutSeconds: 10).status == 0 { found.append("bridge \(bridge)") }
        let etcHosts = (try? String(contentsOfFile: "/etc/hosts", encoding: .utf8)) ?? ""
        found += etcHosts.split(separator: "\n").filter { line in
            line.contains("netns-lab \(bridge)") || hosts.contains { line.split(separator: " ").dropFirst().contains(Substring($0)) }
        }.map { "/etc/hosts: \($0)" }
        return found
    }

    private func run(_ command: String) throws {
        let result = try ProcessRunner.run([script, command] + hosts, environment: environment, timeoutSeconds: 30)
        guard result.status == 0, !result.timedOut else {
            throw HarnessError(description: "launch/netns-lab \(command) failed (\(result.status)): \(result.stderr)")
        }
    }
}
