import ECCollective
import ECTensor
import Foundation

/// One named check, run on every rank.
struct Scenario {
    let name: String
    let run: (Communicator) throws -> Void
}

enum Scenarios {
    static let all: [Scenario] = [
        Scenario(name: "world", run: world),
        Scenario(name: "allreduce") { try allreduce($0, .normal) },
        Scenario(name: "broadcast") { try broadcast($0, .normal) },
        Scenario(name: "reduce") { try reduce($0, .normal) },
        Scenario(name: "ordered") { try ordered($0, .normal) },
        Scenario(name: "gather") { try gather($0, .normal) },
        Scenario(name: "bucket", run: bucket),
        Scenario(name: "nonblocking", run: nonBlocking),
        Scenario(name: "chunked", run: chunked),
        Scenario(name: "barrier") { try $0.barrier() },
        Scenario(name: "finalize", run: finalize),
        // ECCompression's payload channel (PayloadScenarios.swift), run on their own by its tests.
        Scenario(name: "payload", run: payload),
        // Failure paths, run on their own by the tests (never part of `all`).
        Scenario(name: "fault", run: fault),
        Scenario(name: "hang", run: hang),
        Scenario(name: "payload-corrupt", run: payloadCorrupt),
    ]

    /// What `all` runs, in order (`finalize` must stay last).
    static let standard = ["world", "allreduce", "broadcast", "reduce", "ordered", "gather", "bucket", "nonblocking",
                           "chunked", "barrier", "finalize"]

    /// Ranks are distinct, cover 0..<size, and match the launcher's view.
    static func world(_ comm: Communicator) throws {
        try check((0..<comm.size).contains(comm.rank), "rank \(comm.rank) outside 0..<\(comm.size)")
        try check(comm.isChief == (comm.rank == 0), "isChief is \(comm.isChief) on rank \(comm.rank)")
        try check(World.isLaunchedByMPI() == (comm is MPICommunicator),
                  "launched by MPI: \(World.isLaunchedByMPI()), communicator: \(type(of: comm))")
        if let launcherRank = ProcessInfo.processInfo.environment["OMPI_COMM_WORLD_RANK"] {
            try check(launcherRank == String(comm.rank), "OMPI_COMM_WORLD_RANK \(launcherRank) vs rank \(comm.rank)")
        }
        let blobs = try comm.gather(Array(String(comm.rank).utf8), toRoot: 0)
        if comm.isChief {
            try checkEqual(blobs.map { String(decoding: $0, as: UTF8.self) }, (0..<comm.size).map(String.init),
                           "gathered ranks")
        }
    }

    /// Expected reduction over ranks `0..<size` of `value(rank)` (exact for the integer-valued
    /// and dyadic inputs used here, whatever order MPI sums in).
    static func combine<T: BinaryFloatingPoint>(_ op: ReduceOp, _ size: Int, _ value: (Int) -> T) -> T {
        var result = value(0)
        for r in 1..<Swift.max(size, 1) {
            switch op {
            case .sum, .average: result += value(r)
            case .max: result = Swift.max(result, value(r))
            case .min: result = Swift.min(result, value(r))
            }
        }
        return op == .average ? result / T(size) : result
    }

    static func allreduce(_ comm: Communicator, _ sizes: Sizes) throws {
        func float(_ r: Int, _ i: Int) -> Float { Float((r + 1) * (i % 17)) - Float(3 * r) }
        func double(_ r: Int, _ i: Int) -> Double { Double(r) * 0.25 - Double(i % 13) }
        for n in sizes.lengths {
            for op in ReduceOp.allCases {
                var floats = (0..<n).map { float(comm.rank, $0) }
                try comm.allreduce(&floats, op: op)
                try checkEqual(floats, (0..<n).map { i in combine(op, comm.size) { float($0, i) } },
                               "Float allreduce \(op) n=\(n)")
                var doubles = (0..<n).map { double(comm.rank, $0) }
                try comm.allreduce(&doubles, op: op)
                try checkEqual(doubles, (0..<n).map { i in combine(op, comm.size) { double($0, i) } },
                               "Double allreduce \(op) n=\(n)")
            }
            var tensor = Tensor(shape: [n], scalars: (0..<n).map { float(comm.rank, $0) })
            try comm.allreduce(&tensor, op: .average)
            try checkEqual(tensor.scalars, (0..<n).map { i in combine(.average, comm.size) { float($0, i) } },
                           "Tensor allreduce average n=\(n)")
        }
    }

    static func broadcast(_ comm: Communicator, _ sizes: Sizes) throws {
        for root in Set(roots(comm) + [lastRoot(comm)]).sorted() {
            let isRoot = comm.rank == root
            for n in sizes.lengths {
                var bytes: [UInt8] = isRoot ? pattern(root, n) : [9, 9, 9]
                try comm.broadcast(&bytes, root: root)
                try checkEqual(bytes, pattern(root, n), "[UInt8] broadcast from \(root) n=\(n)")

                var data = isRoot ? Data(pattern(root + 1, n)) : Data([1])
                try comm.broadcast(&data, root: root)
                try checkEqual([UInt8](data), pattern(root + 1, n), "Data broadcast from \(root) n=\(n)")

                let values = (0..<n).map { Float($0) * 0.5 + Float(root) }
                var floats: [Float] = isRoot ? values : []
                try comm.broadcast(&floats, root: root)
                try checkEqual(floats, values, "[Float] broadcast from \(root) n=\(n)")

                var fixed = isRoot ? values : [Float](repeating: -1, count: n)
                try fixed.withUnsafeMutableBufferPointer { try comm.broadcast($0, root: root) }
                try checkEqual(fixed, values, "Float buffer broadcast from \(root) n=\(n)")

                var tensor = isRoot ? Tensor(shape: [n], scalars: values) : Tensor(shape: [n], repeating: 7)
                try comm.broadcast(&tensor, root: root)
                try checkEqual(tensor.scalars, values, "Tensor broadcast from \(root) n=\(n)")
            }
        }
        var bytes: [UInt8] = [1]
        do {
            try comm.broadcast(&bytes, root: comm.size)
            throw CheckFailure("broadcast from root \(comm.size) did not throw")
        } catch let error as CollectiveError {
            try check(error == .invalidRoot(root: comm.size, size: comm.size), "unexpected error \(error)")
        }
    }

    static func reduce(_ comm: Communicator, _ sizes: Sizes) throws {
        func value(_ r: Int, _ i: Int) -> Float { Float((r + 5) * (i % 7)) - Float(r) }
        for root in Set([0, lastRoot(comm)]).sorted() {
            for n in sizes.lengths {
                let mine = (0..<n).map { value(comm.rank, $0) }
                let sums = (0..<n).map { i in combine(.sum, comm.size) { value($0, i) } }
                var floats = mine
                try comm.reduce(&floats, toRoot: root)
                try checkEqual(floats, comm.rank == root ? sums : mine, "Float reduce to \(root) n=\(n)")
                var doubles = mine.map { Double($0) / 8 }
                try comm.reduce(&doubles, toRoot: root)
                try checkEqual(doubles, (comm.rank == root ? sums : mine).map { Double($0) / 8 },
                               "Double reduce to \(root) n=\(n)")
            }
        }
    }

    /// Sums are taken in rank order, `((x₀ + x₁) + x₂) + …`, bit for bit on every rank, for
    /// allreduce and reduce, Float and Double: the values are chosen so that every other
    /// association rounds differently (1 + 2²⁴ − 2²⁴ is 0 in this order, 1 in the others), and
    /// which rank holds which value turns with the element index.
    static func ordered(_ comm: Communicator, _ sizes: Sizes) throws {
        func value<T: BinaryFloatingPoint>(_ r: Int, _ i: Int, big: T) -> T {
            switch (r + i) % Swift.max(comm.size, 3) {
            case 0: return 1
            case 1: return big
            case 2: return -big
            default: return T(i % 5) * 0.25
            }
        }
        func inOrder<T: BinaryFloatingPoint>(_ i: Int, big: T) -> T {
            var sum = value(0, i, big: big)
            for r in 1..<comm.size { sum += value(r, i, big: big) }
            return sum
        }
        let bigFloat: Float = 16_777_216, bigDouble: Double = 9_007_199_254_740_992  // 2²⁴, 2⁵³
        for n in sizes.lengths + [comm.size - 1, 2 * comm.size + 1] {
            var floats = (0..<n).map { value(comm.rank, $0, big: bigFloat) }
            let expectedFloats = (0..<n).map { inOrder($0, big: bigFloat) }
            try comm.allreduce(&floats, op: .sum)
            try checkEqual(floats.map(\.bitPattern), expectedFloats.map(\.bitPattern), "Float allreduce in rank order n=\(n)")
            var doubles = (0..<n).map { value(comm.rank, $0, big: bigDouble) }
            let expectedDoubles = (0..<n).map { inOrder($0, big: bigDouble) }
            try comm.allreduce(&doubles, op: .sum)
            try checkEqual(doubles.map(\.bitPattern), expectedDoubles.map(\.bitPattern), "Double allreduce in rank order n=\(n)")
            let root = lastRoot(comm)
            let mine = (0..<n).map { value(comm.rank, $0, big: bigFloat) }
            var reduced = mine
            try comm.reduce(&reduced, toRoot: root)
            try checkEqual(reduced.map(\.bitPattern), (comm.rank == root ? expectedFloats : mine).map(\.bitPattern),
                           "Float reduce to \(root) in rank order n=\(n)")
            var reducedDoubles = (0..<n).map { value(comm.rank, $0, big: bigDouble) }
            try comm.reduce(&reducedDoubles, toRoot: 0)
            try checkEqual(reducedDoubles.map(\.bitPattern),
                           (comm.isChief ? expectedDoubles : (0..<n).map { value(comm.rank, $0, big: bigDouble) }).map(\.bitPattern),
                           "Double reduce to 0 in rank order n=\(n)")
        }
    }

    static func gather(_ comm: Communicator, _ sizes: Sizes) throws {
        func length(_ r: Int) -> Int { r == 1 ? sizes.large + 2 : 3 * r }
        for root in Set(roots(comm) + [lastRoot(comm)]).sorted() {
            let blobs = try comm.gather(pattern(100 + comm.rank, length(comm.rank)), toRoot: root)
            if comm.rank == root {
                try check(blobs.count == comm.size, "gather to \(root): \(blobs.count) blobs")
                for r in 0..<comm.size { try checkEqual(blobs[r], pattern(100 + r, length(r)), "blob of rank \(r)") }
            } else {
                try check(blobs.isEmpty, "gather to \(root): non-root rank got \(blobs.count) blobs")
            }
            let empties = try comm.gather([], toRoot: root)
            try check(empties == (comm.rank == root ? Array(repeating: [], count: comm.size) : []),
                      "gather of empty blobs to \(root): \(empties)")
        }
    }

    /// Bucketed allreduce equals one allreduce per tensor, for odd tensor sizes and buckets
    /// smaller than, between and larger than the tensors; buffers are reused across steps.
    static func bucket(_ comm: Communicator) throws {
        let tensorSizes = [1, 7, 13, 1001, 3, 257, 5, 0, 64]
        let total = tensorSizes.reduce(0, +)
        func tensors(_ r: Int, _ step: Int) -> [Tensor] {
            tensorSizes.enumerated().map { t, n in
                Tensor(shape: [n], scalars: (0..<n).map { Float((r + 2) * (($0 + t + step) % 23)) - Float(r) })
            }
        }
        for bucketBytes in [0, 4, 12, 64, 1000, 4100, 1 << 20] {
            for op in [ReduceOp.sum, .average] {
                let bucketer = GradientBucketer(bucketBytes: bucketBytes)
                for step in 0..<2 {
                    var fused = tensors(comm.rank, step)
                    var plain = fused
                    try bucketer.allreduce(&fused, op: op, comm: comm)
                    for t in plain.indices { try comm.allreduce(&plain[t], op: op) }
                    let all = (0..<comm.size).map { tensors($0, step) }
                    for t in tensorSizes.indices {
                        let what = "bucket \(bucketBytes) B, \(op), step \(step), tensor \(t)"
                        try checkEqual(fused[t].scalars, plain[t].scalars, "\(what) vs unbucketed")
                        let expected = (0..<tensorSizes[t]).map { i in combine(op, comm.size) { all[$0][t][flat: i] } }
                        try checkEqual(fused[t].scalars, expected, what)
                    }
                }
                let m = bucketer.metrics
                try check(m.steps == 2 && m.tensors == 2 * tensorSizes.count && m.bytesReduced == 2 * total * 4,
                          "bucket \(bucketBytes) B metrics \(m)")
                if bucketBytes == 1 << 20 { try check(m.calls == 2, "one call per step expected, got \(m.calls)") }
            }
        }
    }

    /// Non-blocking sums (`NonBlockingAllreduce`) equal the blocking allreduce bit for bit, in
    /// rank order, however the buffer is cut into pieces: values where every other association
    /// rounds differently (as `ordered`), pieces started from several threads one after
    /// another (as thread replicas start gradient buckets), blocking collectives on the world
    /// between the starts and the wait, three steps on one stream; with MPI calls limited to 7
    /// elements too (pieces split into several operations).
    static func nonBlocking(_ comm: Communicator) throws {
        let big: Float = 16_777_216
        func value(_ r: Int, _ i: Int, _ step: Int) -> Float {
            switch (r + i + step) % Swift.max(comm.size, 3) {
            case 0: return 1
            case 1: return big
            case 2: return -big
            default: return Float(i % 5) * 0.25 + Float(r)
            }
        }
        let count = 20_011
        let cuts: [[Int]] = [[count], [1, 7, 0, 13, 1001, 3, 257, 5], [4096, 4096, 4096, 4096], [9, 20_000]]
        let stream = try comm.makeNonBlockingAllreduce()
        defer { stream.close() }
        var started = 0
        for (c, cut) in cuts.enumerated() {
            for step in 0..<3 {
                var blocking = (0..<count).map { value(comm.rank, $0, step) }
                try comm.allreduce(&blocking, op: .sum)
                var overlapped = (0..<count).map { value(comm.rank, $0, step) }
                try overlapped.withUnsafeMutableBufferPointer { all in
                    var pieces: [UnsafeMutableBufferPointer<Float>] = []
                    var offset = 0
                    for n in cut + [count - cut.reduce(0, +)] where offset < count {
                        let m = Swift.min(n, count - offset)
                        pieces.append(UnsafeMutableBufferPointer(rebasing: all[offset..<(offset + m)]))
                        offset += m
                    }
                    started += pieces.filter { $0.count > 0 }.count
                    // Each piece started by a thread of its own, in piece order.
                    let turns = (0...pieces.count).map { _ in DispatchSemaphore(value: 0) }
                    let failures = FailureBox()
                    let done = DispatchGroup()
                    for (k, piece) in pieces.enumerated() {
                        done.enter()
                        let box = PieceBox(piece)
                        Thread {
                            turns[k].wait()
                            do { try stream.start(box.piece) } catch { failures.record(error) }
                            turns[k + 1].signal()
                            done.leave()
                        }.start()
                    }
                    turns[0].signal()
                    done.wait()
                    if let error = failures.first { throw error }
                    var other = [Float](repeating: Float(comm.rank), count: 3)
                    try comm.allreduce(&other, op: .max)  // world traffic while the sums are in flight
                    try check(other == [Float](repeating: Float(comm.size - 1), count: 3), "max while in flight: \(other)")
                    try stream.waitAll()
                }
                try checkEqual(overlapped.map(\.bitPattern), blocking.map(\.bitPattern), "cut \(c), step \(step)")
            }
        }
        let m = stream.metrics
        try check(m.sums == started && m.waits == 3 * cuts.count && m.bytes == 3 * cuts.count * count * 4, "metrics \(m)")
        if let mpi = comm as? MPICommunicator {
            mpi.maxCountPerCall = 7
            defer { mpi.maxCountPerCall = Int(Int32.max) }
            var blocking = (0..<503).map { value(comm.rank, $0, 9) }
            try comm.allreduce(&blocking, op: .sum)
            var overlapped = (0..<503).map { value(comm.rank, $0, 9) }
            try overlapped.withUnsafeMutableBufferPointer { all in
                try stream.start(UnsafeMutableBufferPointer(rebasing: all[0..<300]))
                try stream.start(UnsafeMutableBufferPointer(rebasing: all[300..<503]))
                try stream.waitAll()
            }
            try checkEqual(overlapped.map(\.bitPattern), blocking.map(\.bitPattern), "chunked pieces")
        }
    }

    /// The collectives again with MPI calls limited to 7 elements, so every buffer crosses
    /// chunk boundaries (the path taken beyond Int32.max elements).
    static func chunked(_ comm: Communicator) throws {
        guard let mpi = comm as? MPICommunicator else { return }
        mpi.maxCountPerCall = 7
        defer { mpi.maxCountPerCall = Int(Int32.max) }
        try allreduce(comm, .chunked)
        try broadcast(comm, .chunked)
        try reduce(comm, .chunked)
        try ordered(comm, .chunked)
        try gather(comm, .chunked)
    }

    /// After `finalize()`: further finalizes are no-ops, collectives and new worlds throw.
    static func finalize(_ comm: Communicator) throws {
        guard let mpi = comm as? MPICommunicator else { return }
        try mpi.finalize()
        try mpi.finalize()
        do {
            try mpi.barrier()
            throw CheckFailure("barrier after finalize did not throw")
        } catch let error as CollectiveError {
            try check(error == .finalized(operation: "barrier"), "unexpected error \(error)")
        }
        do {
            _ = try MPICommunicator()
            throw CheckFailure("MPICommunicator() after finalize did not throw")
        } catch let error as CollectiveError {
            try check(error == .finalized(operation: "MPICommunicator.init"), "unexpected error \(error)")
        }
    }

    /// Rank 1 fails while the others wait in an allreduce: the job must abort, not hang.
    static func fault(_ comm: Communicator) throws {
        try check(comm.size >= 2, "fault needs at least 2 ranks, got \(comm.size)")
        if comm.rank == 1 { throw CheckFailure("injected fault on rank 1") }
        var values: [Float] = [1, 2, 3]
        try comm.allreduce(&values, op: .sum)
        throw CheckFailure("allreduce returned although rank 1 never joined")
    }

    /// Never finishes (rank 0 sleeps, the others wait in a barrier): tests the harness timeout.
    static func hang(_ comm: Communicator) throws {
        print("PID \(getpid()) rank \(comm.rank)")
        fflush(stdout)
        if comm.rank == 0 { sleep(600) }
        try comm.barrier()
    }
}

/// The first error recorded by any thread.
final class FailureBox: @unchecked Sendable {
    private let lock = NSLock()
    private var errors: [Error] = []
    func record(_ error: Error) { lock.withLock { errors.append(error) } }
    var first: Error? { lock.withLock { errors.first } }
}

/// A piece of a buffer handed to another thread (the scenario keeps the buffer alive).
struct PieceBox: @unchecked Sendable {
    let piece: UnsafeMutableBufferPointer<Float>
    init(_ piece: UnsafeMutableBufferPointer<Float>) { self.piece = piece }
}
