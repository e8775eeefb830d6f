import CMPI
import Foundation

extension MPICommunicator {
    /// Non-blocking sums on communicators of their own (`MPI_Comm_dup`, collective), driven by a
    /// progress thread (`MPINonBlockingAllreduce`).
    public func makeNonBlockingAllreduce() throws -> any NonBlockingAllreduce {
        try ensureActive("makeNonBlockingAllreduce")
        return try MPINonBlockingAllreduce(world: self)
    }
}

/// `NonBlockingAllreduce` over MPI's non-blocking collectives, with sums in rank order.
///
/// Any number of ranks: the blocking path's rank-ordered sum in two non-blocking phases —
/// `MPI_Ialltoallv` (rank r receives chunk r of every rank's buffer), the chunks added in rank
/// order, then `MPI_Iallgatherv` of the summed chunks — so every element is
/// `((x₀ + x₁) + x₂) + …` as `MPICommunicator.allreduce` computes it (on two ranks `x₀ + x₁`,
/// which is what `MPI_Allreduce` gives whichever rank adds). Each rank sends and receives
/// (n−1)/n of the buffer in each phase, both directions at once; Open MPI's `MPI_Iallreduce`
/// (libnbc) reduces to one rank and broadcasts back below 4 ranks, so on two ranks the whole
/// buffer would cross the link twice, one direction after the other.
///
/// Each phase has a communicator of its own, duplicated from the world when the stream is made,
/// so the order of the collectives on each is the order of `start` on every rank, whatever the
/// world's other collectives (batch norm, payloads) do meanwhile; second phases start in
/// `start` order too (a later buffer waits for the earlier ones' first phase).
///
/// Progress: Open MPI moves non-blocking collectives over TCP only inside MPI calls, so a
/// progress thread polls (`MPI_Test`) every `pollMicroseconds` while sums are in flight and
/// sleeps otherwise; `waitAll` polls too, sleeping between polls instead of spinning (ranks
/// that share cores then leave them to the ranks still computing). Every MPI call holds the
/// process's MPI lock (`mpiCall`; the world is `MPI_THREAD_SERIALIZED`).
public final class MPINonBlockingAllreduce: NonBlockingAllreduce, @unchecked Sendable {
    /// How often the progress thread polls while sums are in flight, µs.
    public var pollMicroseconds: UInt32 = 100

    private let world: MPICommunicator
    private let exchange: MPI_Comm
    private let gather: MPI_Comm
    private let state = NSCondition()  // guards everything below
    private var operations: [Operation] = []
    private var nextGather = 0  // the first operation whose second phase has not started
    private var busySince: DispatchTime?
    private var failure: Error?
    private var stopping = false
    private var stopped = DispatchSemaphore(value: 0)
    private var threadRunning = false
    private var pool: [UnsafeMutableBufferPointer<Float>] = []  // receive buffers for reuse
    private var counters = NonBlockingAllreduceMetrics()

    public var metrics: NonBlockingAllreduceMetrics { state.withLock { counters } }
    public func resetMetrics() { state.withLock { counters = NonBlockingAllreduceMetrics() } }

    /// Duplicates the world's communicator (collective) and starts the progress thread.
    init(world: MPICommunicator) throws {
        self.world = world
        var exchange: MPI_Comm? = nil, gather: MPI_Comm? = nil
        try mpiCall("MPI_Comm_dup") { MPI_Comm_dup(world.comm, &exchange) }
        try mpiCall("MPI_Comm_dup") { MPI_Comm_dup(world.comm, &gather) }
        self.exchange = exchange!
        self.gather = gather!
        MPIRuntime.shared.register(self)
        threadRunning = true
        let thread = Thread { [self] in progressLoop() }
        thread.name = "ec-mpi-progress"
        thread.start()
    }

    deinit {
        for buffer in pool { buffer.deallocate() }
    }

    public func start(_ buffer: UnsafeMutableBufferPointer<Float>) throws {
        guard let base = buffer.baseAddress, buffer.count > 0 else { return }
        try world.ensureActive("NonBlockingAllreduce.start")
        state.lock()
        defer { state.unlock() }
        if let failure { throw failure }
        guard !stopping else { throw CollectiveError.finalized(operation: "NonBlockingAllreduce.start") }
        let piece = world.maxCountPerCall
        var offset = 0
        while offset < buffer.count {
            let n = Swift.min(piece, buffer.count - offset)
            let operation = Operation(base: base + offset, count: n, ranks: world.size, rank: world.rank)
            operation.received = takeBuffer(operation.mine * world.size)
            try operation.startExchange(on: exchange)
            operations.append(operation)
            offset += n
        }
        if busySince == nil { busySince = DispatchTime.now() }
        counters.sums += 1
        counters.bytes += buffer.count * MemoryLayout<Float>.stride
        state.signal()
    }

    public func waitAll() throws {
        let began = DispatchTime.now()
        state.lock()
        defer {
            counters.waits += 1
            counters.waitSeconds += seconds(since: began)
            state.unlock()
        }
        while true {
            if let failure { throw failure }
            try advance()
            if operations.isEmpty { return }
            state.unlock()
            usleep(20)
            state.lock()
        }
    }

    /// Stops the progress thread (waits for it); later `start`s throw. `MPICommunicator.finalize()`
    /// calls it for every stream before `MPI_Finalize`.
    public func close() {
        state.lock()
        let running = threadRunning
        stopping = true
        state.signal()
        state.unlock()
        if running { stopped.wait() }
    }

    // MARK: Progress

    private func progressLoop() {
        state.lock()
        while !stopping {
            if operations.isEmpty || failure != nil {
                state.wait()
                continue
            }
            do { try advance() } catch { failure = error }
            state.unlock()
            usleep(pollMicroseconds)
            state.lock()
        }
        threadRunning = false
        state.unlock()
        stopped.signal()
    }

    /// Polls the operations in flight (`state` held): first phases complete in order into
    /// second phases, second phases into results. Clears the list once all are done.
    private func advance() throws {
        while nextGather < operations.count {
            let operation = operations[nextGather]
            if operation.phase == .exchanging {
                guard try operation.test() else { break }
                operation.addInRankOrder()
                try operation.startGather(on: gather)
            }
            nextGather += 1
        }
        var pending = false
        for operation in operations where operation.phase == .final {
            if try operation.test() {
                operation.phase = .done
                if let received = operation.received { pool.append(received) }
                operation.received = nil
            } else {
                pending = true
            }
        }
        if !pending && nextGather == operations.count {
            operations.removeAll(keepingCapacity: true)
            nextGather = 0
            if let busySince { counters.busySeconds += seconds(since: busySince) }
            busySince = nil
        }
    }

    /// A receive buffer of at least `count` elements (reused across steps).
    private func takeBuffer(_ count: Int) -> UnsafeMutableBufferPointer<Float> {
        if let i = pool.firstIndex(where: { $0.count >= count }) { return pool.remove(at: i) }
        return UnsafeMutableBufferPointer<Float>.allocate(capacity: Swift.max(count, 1))
    }
}

/// One buffer (or piece of one, at most `maxCountPerCall` elements) being summed.
private final class Operation {
    enum Phase { case exchanging, final, done }

    let base: UnsafeMutablePointer<Float>
    let count: Int
    let ranks: Int
    let rank: Int
    var phase = Phase.final
    var request: MPI_Request? = cmpi_request_null()
    var received: UnsafeMutableBufferPointer<Float>?
    /// Chunk r of the buffer: `starts[r] ..< starts[r + 1]`.
    let starts: [Int]
    /// The arrays MPI may read until the operation completes (allocated: an array's `&` pointer
    /// lives only for the call): counts and displacements of the chunks (send side and
    /// `Iallgatherv`), and of the received rows.
    let sendCounts: UnsafeMutablePointer<Int32>, sendDisplacements: UnsafeMutablePointer<Int32>
    let receiveCounts: UnsafeMutablePointer<Int32>, receiveDisplacements: UnsafeMutablePointer<Int32>
    var mine: Int { starts[rank + 1] - starts[rank] }

    init(base: UnsafeMutablePointer<Float>, count: Int, ranks: Int, rank: Int) {
        self.base = base
        self.count = count
        self.ranks = ranks
        self.rank = rank
        let starts = (0...ranks).map { count * $0 / ranks }
        self.starts = starts
        let mine = starts[rank + 1] - starts[rank]
        func array(_ values: [Int]) -> UnsafeMutablePointer<Int32> {
            let p = UnsafeMutablePointer<Int32>.allocate(capacity: ranks)
            for (i, v) in values.enumerated() { p[i] = Int32(v) }
            return p
        }
        sendCounts = array((0..<ranks).map { starts[$0 + 1] - starts[$0] })
        sendDisplacements = array(Array(starts.dropLast()))
        receiveCounts = array([Int](repeating: mine, count: ranks))
        receiveDisplacements = array((0..<ranks).map { $0 * mine })
    }

    deinit {
        for p in [sendCounts, sendDisplacements, receiveCounts, receiveDisplacements] { p.deallocate() }
    }

    func startExchange(on comm: MPI_Comm) throws {
        phase = .exchanging
        try mpiCall("MPI_Ialltoallv") {
            MPI_Ialltoallv(base, sendCounts, sendDisplacements, cmpi_float(),
                           received!.baseAddress, receiveCounts, receiveDisplacements, cmpi_float(), comm, &request)
        }
    }

    /// This rank's chunk = the received rows added in rank order (as `rankOrderedAllreduce`).
    func addInRankOrder() {
        let n = mine, rows = received!.baseAddress!
        let out = base + starts[rank]
        for i in 0..<n { out[i] = rows[i] }
        for source in 1..<ranks {
            let row = rows + source * n
            for i in 0..<n { out[i] += row[i] }
        }
    }

    func startGather(on comm: MPI_Comm) throws {
        phase = .final
        try mpiCall("MPI_Iallgatherv") {
            MPI_Iallgatherv(cmpi_in_place(), 0, cmpi_float(), base, sendCounts, sendDisplacements, cmpi_float(),
                            comm, &request)
        }
    }

    /// Whether the phase in flight has completed (`MPI_Test`; also moves every other request on).
    func test() throws -> Bool {
        var flag: Int32 = 0
        try mpiCall("MPI_Test") { MPI_Test(&request, &flag, cmpi_status_ignore()) }
        return flag != 0
    }
}
