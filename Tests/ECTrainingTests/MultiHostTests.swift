import ECTestSupport
import EasyCompression
import Foundation
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// Multi-host training through `launch/cluster` and `launch/dlc`, on one machine: two network
/// namespaces joined by a bridge play two hosts (`launch/netns-lab`, docs/distributed.md),
/// and `launch/netns-rsh` is mpirun's remote agent into them. The same tiny job trained on one
/// process without mpirun, as two thread replicas, must give the same weights bit for bit as
/// on one rank per "host" (sums over ranks are taken in rank order on any transport).
///
/// Needs root and `ip` (iproute2): skipped otherwise, unless `EC_REQUIRE_NETNS=1` (as
/// `launch/test` sets), which makes a missing lab a failure. The namespaces, bridge and
/// /etc/hosts lines are removed before each test (leftovers of a crashed run) and after it,
/// pass or fail. By hand: docs/distributed.md, "The multi-host test".
final class MultiHostTests: XCTestCase {
    private var lab = NetworkLab(hosts: ["ectest-master-0", "ectest-worker-0"], bridge: "br-ectest", subnet: "10.231.77")
    private var labLocked = false
    private var work: URL!

    private var launch: URL { TestPaths.repository.appendingPathComponent("launch") }

    override func setUpWithError() throws {
        work = try TestPaths.temporaryDirectory(name)
        if NetworkLab.unavailableReason == nil {
            try lab.lock()
            labLocked = true
            try lab.down()
        }
    }

    override func tearDownWithError() throws {
        defer {
            if labLocked { lab.unlock() }
            try? FileManager.default.removeItem(at: work)
        }
        guard labLocked else { return }
        try lab.down()
        XCTAssertEqual(try lab.leftovers(), [], "the lab was not fully removed")
        XCTAssertEqual(Self.processes(mentioning: work.path), [], "processes of this test outlived it")
    }

    // MARK: - Training across two hosts

    /// (a) vs (b): `launch/cluster` over a hostfile listing both namespaces, one rank each.
    func testClusterTrainsAcrossTwoHostsLikeOneProcess() throws {
        let expected = try trainOnOneProcess()
        try startLab()
        let hostfile = work.appendingPathComponent("hosts")
        try lab.hosts.map { "\($0) slots=1\n" }.joined().write(to: hostfile, atomically: true, encoding: .utf8)
        let saveDir = work.appendingPathComponent("cluster")
        let result = try ProcessRunner.run(
            [launch.appendingPathComponent("cluster").path, "--hostfile", hostfile.path, "--",
             try TestPaths.executable("easycompress"), "train", "--config", try job(saveDir)],
            environment: multiHostEnvironment, timeoutSeconds: 60)
        assertSucceeded(result, "launch/cluster")
        for host in lab.hosts {
            XCTAssertTrue(result.stdout.contains("Data for node: \(host)\t"), "no rank on \(host):\n\(result.stdout)")
        }
        try assertWeights(of: saveDir, equal: expected)
    }

    /// (a) vs (c): `launch/dlc` started in both namespaces with the platform's variables;
    /// node 0 finds node 1 by the default naming pattern (`${JOB_NAME}-worker-{i}`, JOB_NAME
    /// taken from MASTER_ADDR `ectest-master-0`).
    func testDLCTrainsAcrossTwoNodesLikeOneProcess() throws {
        let expected = try trainOnOneProcess()
        try startLab()
        let saveDir = work.appendingPathComponent("dlc")
        let (node0, node1) = try runDLC(["--", try TestPaths.executable("easycompress"), "train", "--config", try job(saveDir)])
        assertSucceeded(node0, "launch/dlc on node 0")
        assertSucceeded(node1, "launch/dlc on node 1")
        for host in lab.hosts {
            XCTAssertTrue(node0.stdout.contains("Data for node: \(host)\t"), "no rank on \(host):\n\(node0.stdout)")
        }
        XCTAssertTrue(node0.stderr.contains("on 2 rank(s)"), node0.stderr)
        XCTAssertTrue(node1.stderr.contains("the job ended with status 0"), node1.stderr)
        try assertWeights(of: saveDir, equal: expected)
    }

    /// Four hosts whose links are shaped to 1 Gbit/s each way (`EC_LAB_RATE`, a tc token
    /// bucket on both ends of every veth), one rank each through `launch/cluster`, gradients
    /// summed during backward (the default) and `--debug` comparing every parameter's checksum
    /// across the hosts every 2 steps: the job passes the checks, every host ran a rank, the
    /// links were shaped while it ran, and the weights equal one process of four thread replicas
    /// bit for bit.
    func testFourHostsOverAShapedLinkPassTheDebugChecks() throws {
        let expected = try trainOnOneProcess(replicas: 4)
        try lab.down()
        lab = lab.with(hosts: ["ectest-master-0", "ectest-worker-0", "ectest-worker-1", "ectest-worker-2"], rate: "1gbit")
        try startLab()
        for host in lab.hosts {
            let shaping = try lab.shaping(of: host)
            XCTAssertTrue(shaping.contains("rate 1Gbit"), "\(host): \(shaping)")
        }
        let hostfile = work.appendingPathComponent("hosts")
        try lab.hosts.map { "\($0) slots=1\n" }.joined().write(to: hostfile, atomically: true, encoding: .utf8)
        let saveDir = work.appendingPathComponent("four-hosts")
        let result = try ProcessRunner.run(
            [launch.appendingPathComponent("cluster").path, "--hostfile", hostfile.path, "--",
             try TestPaths.executable("easycompress"), "train", "--config", try job(saveDir, extra: "debug_check_every: 2"),
             "--debug"],
            environment: multiHostEnvironment, timeoutSeconds: 180)
        assertSucceeded(result, "launch/cluster on 4 shaped hosts")
        for host in lab.hosts {
            XCTAssertTrue(result.stdout.contains("Data for node: \(host)\t"), "no rank on \(host):\n\(result.stdout)")
        }
        XCTAssertTrue(result.stderr.contains("on 4 rank(s)"), result.stderr)
        XCTAssertTrue(result.stderr.contains("gradients summed during backward"), result.stderr)
        XCTAssertFalse(result.stderr.contains("diverged"), result.stderr)
        try assertWeights(of: saveDir, equal: expected, "4 shaped hosts vs 4 thread replicas")
    }

    /// Every node exits with the job's status, also when it fails.
    func testDLCPropagatesAFailedJobsStatusToEveryNode() throws {
        try startLab()
        let (node0, node1) = try runDLC(["--", "sh", "-c", "exit 3"])
        XCTAssertFalse(node0.timedOut || node1.timedOut, "timed out:\n\(node0.stderr)\n\(node1.stderr)")
        XCTAssertEqual(node0.status, 3, node0.stderr)
        XCTAssertEqual(node1.status, 3, node1.stderr)
        XCTAssertTrue(node1.stderr.contains("the job ended with status 3"), node1.stderr)
    }

    // MARK: - Arguments, variables and the host list (no namespaces needed)

    func testClusterUsageErrorsExitWithStatus2() throws {
        let hostfile = work.appendingPathComponent("hosts")
        try "h1 slots=2\nh2 slots=x\n".write(to: hostfile, atomically: true, encoding: .utf8)
        let noSlots = work.appendingPathComponent("no-slots")
        try "h1 slots=2\nh2  # cores decide\n".write(to: noSlots, atomically: true, encoding: .utf8)
        let cases: [([String], String)] = [
            (["prog"], "missing --hostfile FILE"),
            (["--hostfile", work.appendingPathComponent("nope").path, "prog"], "hostfile not found"),
            (["--hostfile", hostfile.path, "prog"], "hosts:2: slots must be a positive integer, got 'x'"),
            (["--hostfile", noSlots.path, "prog"], "-n N is needed: a host in"),
            (["--hostfile", noSlots.path, "-n", "0", "prog"], "-n must be a positive integer, got '0'"),
            (["--hostfile", noSlots.path, "-n", "2"], "missing the program"),
        ]
        for (arguments, message) in cases {
            let result = try script("cluster", arguments, [:])
            XCTAssertEqual(result.status, 2, "\(arguments): \(result.stderr)")
            XCTAssertTrue(result.stderr.contains(message), "\(arguments): expected «\(message)» in \(result.stderr)")
            XCTAssertTrue(result.stderr.contains("usage: launch/cluster --hostfile FILE"), result.stderr)
        }
    }

    func testClusterAddsRootAgentInterfacesAndThreads() throws {
        let hostfile = work.appendingPathComponent("hosts")
        try "h1 slots=1\nh2 slots=1\n".write(to: hostfile, atomically: true, encoding: .utf8)
        let result = try script("cluster", ["--hostfile", hostfile.path, "-n", "3", "--", "prog", "a b"], [
            "LAUNCH_DRY_RUN": "1", "OPENBLAS_NUM_THREADS": "1", "EC_RSH_AGENT": "sh",
            "EC_NET_IF": "10.1.0.0/16", "MPIRUN_ARGS": "--mca btl tcp,self",
        ])
        XCTAssertEqual(result.status, 0, result.stderr)
        var expected = "OPENBLAS_NUM_THREADS=1 mpirun -np 3 --hostfile \(hostfile.path)"
        if getuid() == 0 { expected += " --allow-run-as-root" }
        expected += " --oversubscribe --bind-to none --mca plm_rsh_agent sh --mca btl_tcp_if_include 10.1.0.0/16"
            + " --mca oob_tcp_if_include 10.1.0.0/16 -x OPENBLAS_THREAD_TIMEOUT -x OPENBLAS_NUM_THREADS --mca btl tcp,self prog 'a b'\n"
        XCTAssertEqual(result.stdout, expected)
    }

    /// A link rate `tc` would not take is a usage error naming the variable.
    func testLabRejectsABadLinkRate() throws {
        for (command, environment) in [(["up", "h1"], ["EC_LAB_RATE": "fast"]), (["shape", "1 gbit", "h1"], [:])] {
            let result = try script("netns-lab", command, environment.merging(["EC_LAB_BRIDGE": "br-ecbad"]) { $1 })
            XCTAssertEqual(result.status, 2, "\(command): \(result.stderr)")
            XCTAssertTrue(result.stderr.contains("EC_LAB_RATE must be a tc rate such as 10gbit"), result.stderr)
        }
    }

    /// EC_HOSTS wins over a hostfile, which wins over the naming pattern.
    func testDLCHostListPrecedence() throws {
        let hostfile = work.appendingPathComponent("hostfile")
        try "f1 slots=2\nf2 slots=2\n".write(to: hostfile, atomically: true, encoding: .utf8)
        let pattern = ["RANK": "0", "MASTER_PORT": "29400", "MASTER_ADDR": "job7-master-0", "WORLD_SIZE": "2"]

        let fromList = try dryRunHosts(pattern.merging(["EC_HOSTS": "h1:2,h2", "EC_HOSTFILE": hostfile.path,
                                                        "WORLD_SIZE": ""]) { $1 })
        XCTAssertEqual(fromList.hosts, ["h1 slots=2", "h2 slots=1"])
        XCTAssertTrue(fromList.command.contains("mpirun -np 3 "), fromList.command)

        let fromFile = try dryRunHosts(pattern.merging(["EC_HOSTFILE": hostfile.path, "NPROC_PER_NODE": "1"]) { $1 })
        XCTAssertEqual(fromFile.hosts, ["f1 slots=2", "f2 slots=2"])
        XCTAssertTrue(fromFile.command.contains("mpirun -np 2 "), fromFile.command)

        if !FileManager.default.fileExists(atPath: "/etc/mpi/hostfile") {
            let fromPattern = try dryRunHosts(pattern.merging(["NPROC_PER_NODE": "2", "WORLD_SIZE": "3"]) { $1 })
            XCTAssertEqual(fromPattern.hosts, ["job7-master-0 slots=2", "job7-worker-0 slots=2", "job7-worker-1 slots=2"])
            XCTAssertTrue(fromPattern.command.contains("mpirun -np 6 "), fromPattern.command)
            let custom = try dryRunHosts(pattern.merging(["EC_WORKER_PATTERN": "node{rank}.cluster"]) { $1 })
            XCTAssertEqual(custom.hosts, ["job7-master-0 slots=1", "node1.cluster slots=1"])
        }
    }

    func testDLCNamesTheBadVariable() throws {
        let good = ["RANK": "0", "MASTER_PORT": "29400", "MASTER_ADDR": "m", "WORLD_SIZE": "2", "EC_HOSTS": "a,b"]
        let cases: [([String: String], String)] = [
            (["RANK": ""], "RANK is not set"),
            (["RANK": "x"], "RANK must be a non-negative integer, got 'x'"),
            (["RANK": "2"], "RANK must be below WORLD_SIZE=2, got 2"),
            (["MASTER_PORT": ""], "MASTER_PORT is not set"),
            (["MASTER_PORT": "99999"], "MASTER_PORT must be a port number in 1…65535, got '99999'"),
            (["WORLD_SIZE": "0"], "WORLD_SIZE must be a positive integer"),
            (["WORLD_SIZE": "3"], "WORLD_SIZE=3 but EC_HOSTS lists 2 host(s)"),
            (["NPROC_PER_NODE": "two"], "NPROC_PER_NODE must be a positive integer, got 'two'"),
            (["EC_HOSTS": "a,,b"], "EC_HOSTS has an empty entry"),
            (["EC_HOSTS": "a:0,b"], "EC_HOSTS: slots of 'a' must be a positive integer, got '0'"),
            (["EC_HOSTS": "", "EC_HOSTFILE": "/nonexistent/hosts"], "EC_HOSTFILE: hostfile not found"),
            (["EC_HOSTS": "", "EC_HOSTFILE": "", "EC_WORKER_PATTERN": "w"], "EC_WORKER_PATTERN must contain {i}"),
            (["EC_DLC_POLL_SECONDS": "0"], "EC_DLC_POLL_SECONDS must be a positive number of seconds"),
            (["RANK": "1", "MASTER_ADDR": ""], "MASTER_ADDR is not set"),
        ]
        for (overrides, message) in cases {
            if overrides["EC_HOSTFILE"] == "", FileManager.default.fileExists(atPath: "/etc/mpi/hostfile") { continue }
            let result = try script("dlc", ["prog"], dlcEnvironment(good.merging(overrides) { $1 }).merging(["LAUNCH_DRY_RUN": "1"]) { $1 })
            XCTAssertEqual(result.status, 2, "\(overrides): \(result.stdout) \(result.stderr)")
            XCTAssertTrue(result.stderr.contains(message), "\(overrides): expected «\(message)» in \(result.stderr)")
        }
    }

    // MARK: - Helpers

    /// (a): the job on one process without mpirun (a world of one), as `replicas` thread
    /// replicas of one BLAS thread each — what that many ranks of one thread compute. Computed
    /// once per run and replica count.
    private static var oneProcessWeights: [Int: NamedTensors] = [:]

    private func trainOnOneProcess(replicas: Int = 2) throws -> NamedTensors {
        if let weights = Self.oneProcessWeights[replicas] { return weights }
        let saveDir = work.appendingPathComponent("one-process-\(replicas)")
        let config = try job(saveDir, extra: "threads: 1\nthread_replicas: \(replicas)")
        let result = try ProcessRunner.run([try TestPaths.executable("easycompress"), "train", "--config", config],
                                           environment: ["OPENBLAS_NUM_THREADS": "1"], timeoutSeconds: 60)
        assertSucceeded(result, "easycompress train (one process)")
        let weights = try WeightLoader.readTensors(from: saveDir.path)
        Self.oneProcessWeights[replicas] = weights
        return weights
    }

    /// 4 steps of global batch 64 on 256 samples: every rank count sees the same global batches.
    private func job(_ saveDir: URL, extra: String = "") throws -> String {
        let path = work.appendingPathComponent("\(saveDir.lastPathComponent).yaml")
        try """
        model: fmnist-cnn
        dataset: {limit_train: 256, limit_test: 200}
        steps: 4
        batch_size: 64
        seed: 7
        save_dir: \(saveDir.path)
        \(extra)
        """.write(to: path, atomically: true, encoding: .utf8)
        return path.path
    }

    private func startLab() throws {
        if let reason = NetworkLab.unavailableReason {
            if NetworkLab.required {
                throw HarnessError(description: "the multi-host test must run (EC_REQUIRE_NETNS=1) but cannot: \(reason)")
            }
            throw XCTSkip("multi-host test skipped: \(reason)")
        }
        try lab.up()
    }

    /// What both launchers need to reach the namespaces; `--display-map` shows where ranks ran.
    private var multiHostEnvironment: [String: String] {
        ["EC_RSH_AGENT": launch.appendingPathComponent("netns-rsh").path, "EC_NET_IF": lab.cidr,
         "MPIRUN_ARGS": "--mca btl tcp,self --display-map", "OPENBLAS_NUM_THREADS": "1"]
    }

    /// The platform's variables for node `RANK`; unset ones are "" (the scripts treat both alike).
    private func dlcEnvironment(_ variables: [String: String]) -> [String: String] {
        let platform = ["RANK", "MASTER_ADDR", "MASTER_PORT", "WORLD_SIZE", "NPROC_PER_NODE", "JOB_NAME", "EC_HOSTS",
                        "EC_HOSTFILE", "EC_WORKER_PATTERN", "EC_DLC_POLL_SECONDS", "LAUNCH_DRY_RUN"]
        return Dictionary(uniqueKeysWithValues: platform.map { ($0, "") }).merging(variables) { $1 }
    }

    /// Starts `launch/dlc arguments` in both namespaces, node 1 first (it waits for node 0).
    private func runDLC(_ arguments: [String]) throws -> (node0: ProcessResult, node1: ProcessResult) {
        let dlc = launch.appendingPathComponent("dlc").path
        func node(_ rank: Int) -> () throws -> ProcessResult {
            let environment = multiHostEnvironment.merging(dlcEnvironment([
                "RANK": "\(rank)", "WORLD_SIZE": "2", "NPROC_PER_NODE": "1", "MASTER_ADDR": lab.hosts[0],
                "MASTER_PORT": "29431", "EC_DLC_POLL_SECONDS": "0.2", "EC_DLC_START_TIMEOUT_SECONDS": "30",
                "EC_DLC_LINGER_SECONDS": "10",
            ])) { $1 }
            return { try ProcessRunner.run([self.lab.script, "exec", self.lab.hosts[rank], dlc] + arguments,
                                           environment: environment, timeoutSeconds: 60) }
        }
        let worker = Background(node(1))
        let node0 = Result { try node(0)() }
        let node1 = Result { try worker.wait() }  // always joined, even if node 0 could not start
        return (try node0.get(), try node1.get())
    }

    private func script(_ name: String, _ arguments: [String], _ environment: [String: String]) throws -> ProcessResult {
        try ProcessRunner.run([launch.appendingPathComponent(name).path] + arguments, environment: environment, timeoutSeconds: 30)
    }

    /// The host lines and the mpirun command `launch/dlc` (node 0) prints in a dry run.
    private func dryRunHosts(_ variables: [String: String],
                             file: StaticString = #filePath, line: UInt = #line) throws -> (hosts: [String], command: String) {
        let result = try script("dlc", ["prog"], dlcEnvironment(variables).merging(["LAUNCH_DRY_RUN": "1"]) { $1 })
        XCTAssertEqual(result.status, 0, result.stderr, file: file, line: line)
        let lines = result.stdout.split(separator: "\n").map(String.init)
        return (lines.filter { !$0.hasPrefix("#") && !$0.hasPrefix("mpirun ") }, lines.last ?? "")
    }

    private func assertSucceeded(_ result: ProcessResult, _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertFalse(result.timedOut, "\(what) timed out after \(result.seconds) s", file: file, line: line)
        XCTAssertEqual(result.status, 0, "\(what) failed:\n\(result.stdout)\n\(result.stderr)", file: file, line: line)
    }

    /// The last checkpoint of `saveDir` holds `expected`'s tensors (weights and optimizer
    /// state) bit for bit: each rank computes its half-batch's gradient as a thread replica
    /// does, and the two halves are added in the same order over TCP as in the process.
    private func assertWeights(of saveDir: URL, equal expected: NamedTensors, _ what: String = "2 hosts vs 2 thread replicas",
                               file: StaticString = #filePath, line: UInt = #line) throws {
        XCTAssertTrue(FileManager.default.fileExists(atPath: saveDir.appendingPathComponent("checkpoints/step-00000004").path),
                      "no final checkpoint in \(saveDir.path)", file: file, line: line)
        assertBitIdentical(try WeightLoader.readTensors(from: saveDir.path), expected, what, file: file, line: line)
    }

    /// Live processes whose command line mentions `text` (here: this test's work directory).
    private static func processes(mentioning text: String) -> [String] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap { entry in
            guard pid_t(entry) != nil, let data = FileManager.default.contents(atPath: "/proc/\(entry)/cmdline"),
                  !data.isEmpty else { return nil }
            let command = String(decoding: data.map { $0 == 0 ? 32 : $0 }, as: UTF8.self)
            return command.contains(text) ? "\(entry): \(command)" : nil
        }
    }
}

/// Runs a throwing closure on another thread; `wait()` returns its result.
private final class Background<T> {
    private let done = DispatchSemaphore(value: 0)
    private var result: Result<T, Error>?

    init(_ body: @escaping () throws -> T) {
        Thread { [self] in
            result = Result { try body() }
            done.signal()
        }.start()
    }

    func wait() throws -> T {
        done.wait()
        return try result!.get()
    }
}
