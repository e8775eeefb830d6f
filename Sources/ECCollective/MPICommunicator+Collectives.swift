import CMPI

// The collectives of `MPICommunicator`: every one validates, then funnels each MPI call
// through `mpiCall`. Counts beyond `maxCountPerCall` are split into several calls. Sums over
// three or more ranks are taken in rank order (`Communicator`'s documentation).
extension MPICommunicator {
    public func allreduce(_ buffer: UnsafeMutableBufferPointer<Float>, op: ReduceOp) throws {
        try allreduce(UnsafeMutableRawPointer(buffer.baseAddress), count: buffer.count,
                      stride: MemoryLayout<Float>.stride, type: cmpi_float(), op: op)
        if op == .average {
            let n = Float(size)
            for i in buffer.indices { buffer[i] /= n }
        }
    }

    public func allreduce(_ buffer: UnsafeMutableBufferPointer<Double>, op: ReduceOp) throws {
        try allreduce(UnsafeMutableRawPointer(buffer.baseAddress), count: buffer.count,
                      stride: MemoryLayout<Double>.stride, type: cmpi_double(), op: op)
        if op == .average {
            let n = Double(size)
            for i in buffer.indices { buffer[i] /= n }
        }
    }

    public func reduce(_ buffer: UnsafeMutableBufferPointer<Float>, toRoot root: Int) throws {
        try reduce(UnsafeMutableRawPointer(buffer.baseAddress), count: buffer.count,
                   stride: MemoryLayout<Float>.stride, type: cmpi_float(), root: root)
    }

    public func reduce(_ buffer: UnsafeMutableBufferPointer<Double>, toRoot root: Int) throws {
        try reduce(UnsafeMutableRawPointer(buffer.baseAddress), count: buffer.count,
                   stride: MemoryLayout<Double>.stride, type: cmpi_double(), root: root)
    }

    public func broadcast(_ buffer: UnsafeMutableRawBufferPointer, root: Int) throws {
        try ensureActive("broadcast")
        try validate(root: root)
        guard let base = buffer.baseAddress else { return }
        try forEachChunk(of: buffer.count) { offset, n in
            try mpiCall("MPI_Bcast") { MPI_Bcast(base + offset, n, cmpi_byte(), Int32(root), comm) }
        }
    }

    /// Gathers variable-length blobs: first every rank learns all lengths (`MPI_Allgather`),
    /// then the bytes travel in rounds of `MPI_Gatherv`, each carrying at most
    /// `maxCountPerCall / size` bytes per rank so that the root's displacements fit in `Int32`.
    public func gather(_ blob: [UInt8], toRoot root: Int) throws -> [[UInt8]] {
        try ensureActive("gather")
        try validate(root: root)
        var mine = UInt64(blob.count)
        var lengths = [UInt64](repeating: 0, count: size)
        try mpiCall("MPI_Allgather") {
            MPI_Allgather(&mine, 1, cmpi_uint64(), &lengths, 1, cmpi_uint64(), comm)
        }
        for length in lengths where length > UInt64(Int.max) {
            throw CollectiveError.invalidLength(what: "gather", length: length)
        }
        let isRoot = rank == root
        var blobs: [[UInt8]] = []
        if isRoot {
            blobs = lengths.map { length in
                var blob = [UInt8]()
                blob.reserveCapacity(Int(length))
                return blob
            }
        }

        let perRank = Swift.max(1, maxCountPerCall / size)
        let longest = Int(lengths.max() ?? 0)
        var counts = [Int32](repeating: 0, count: size)
        var displacements = [Int32](repeating: 0, count: size)
        var received = [UInt8]()
        var start = 0
        while start < longest {
            var total = 0
            for i in 0..<size {
                counts[i] = Int32(Swift.max(0, Swift.min(Int(lengths[i]) - start, perRank)))
                displacements[i] = Int32(total)
                total += Int(counts[i])
            }
            let sendCount = counts[rank]
            if isRoot { received = [UInt8](repeating: 0, count: total) }
            try blob.withUnsafeBytes { send in
                try received.withUnsafeMutableBytes { recv in
                    try mpiCall("MPI_Gatherv") {
                        MPI_Gatherv(sendCount > 0 ? send.baseAddress! + start : nil, sendCount, cmpi_byte(),
                                    recv.baseAddress, &counts, &displacements, cmpi_byte(), Int32(root), comm)
                    }
                }
            }
            if isRoot {
                for i in 0..<size where counts[i] > 0 {
                    let from = Int(displacements[i])
                    blobs[i].append(contentsOf: received[from..<from + Int(counts[i])])
                }
            }
            start += perRank
        }
        return blobs
    }

    // MARK: Untyped cores

    private func allreduce(_ base: UnsafeMutableRawPointer?, count: Int, stride: Int,
                           type: MPI_Datatype, op: ReduceOp) throws {
        try ensureActive("allreduce")
        guard let base else { return }
        if size > 2, op == .sum || op == .average {  // sums in rank order (the type's documentation)
            if stride == MemoryLayout<Float>.stride {
                try forEachChunk(of: count) { offset, n in
                    try rankOrderedAllreduce(base.assumingMemoryBound(to: Float.self) + Int(offset), count: Int(n), type: type)
                }
            } else {
                try forEachChunk(of: count) { offset, n in
                    try rankOrderedAllreduce(base.assumingMemoryBound(to: Double.self) + Int(offset), count: Int(n), type: type)
                }
            }
            return
        }
        let mpiOp: MPI_Op
        switch op {
        case .sum, .average: mpiOp = cmpi_op_sum()
        case .max: mpiOp = cmpi_op_max()
        case .min: mpiOp = cmpi_op_min()
        }
        try forEachChunk(of: count) { offset, n in
            try mpiCall("MPI_Allreduce") {
                MPI_Allreduce(cmpi_in_place(), base + offset * stride, n, type, mpiOp, comm)
            }
        }
    }

    /// Root reduces in place (`MPI_IN_PLACE`); the others send their buffer and keep it.
    private func reduce(_ base: UnsafeMutableRawPointer?, count: Int, stride: Int,
                        type: MPI_Datatype, root: Int) throws {
        try ensureActive("reduce")
        try validate(root: root)
        guard let base else { return }
        if size > 2 {  // sums in rank order (the type's documentation)
            let piece = Swift.max(1, maxCountPerCall / size)
            var offset = 0
            while offset < count {
                let n = Swift.min(piece, count - offset)
                if stride == MemoryLayout<Float>.stride {
                    try rankOrderedReduce(base.assumingMemoryBound(to: Float.self) + offset, count: n, type: type, root: root)
                } else {
                    try rankOrderedReduce(base.assumingMemoryBound(to: Double.self) + offset, count: n, type: type, root: root)
                }
                offset += n
            }
            return
        }
        let isRoot = rank == root
        try forEachChunk(of: count) { offset, n in
            let chunk = base + offset * stride
            try mpiCall("MPI_Reduce") {
                isRoot
                    ? MPI_Reduce(cmpi_in_place(), chunk, n, type, cmpi_op_sum(), Int32(root), comm)
                    : MPI_Reduce(chunk, nil, n, type, cmpi_op_sum(), Int32(root), comm)
            }
        }
    }
}

// MARK: Sums in rank order

extension MPICommunicator {
    /// The sum of every rank's `count` values at `base`, taken in rank order
    /// `((x₀ + x₁) + x₂) + …` and written on every rank: rank r receives chunk r of every
    /// rank's buffer (`MPI_Alltoallv`), adds them in rank order, and every rank collects the
    /// summed chunks (`MPI_Allgatherv`). The bytes moved are those of a ring allreduce;
    /// `count ≤ maxCountPerCall`, so every displacement fits MPI's `int`.
    func rankOrderedAllreduce<T: BinaryFloatingPoint>(_ base: UnsafeMutablePointer<T>, count: Int, type: MPI_Datatype) throws {
        let starts = (0...size).map { count * $0 / size }
        let counts = (0..<size).map { Int32(starts[$0 + 1] - starts[$0]) }
        let mine = Int(counts[rank])
        var received = [T](repeating: 0, count: mine * size)
        var sendDisplacements = starts.dropLast().map { Int32($0) }
        var receiveCounts = [Int32](repeating: Int32(mine), count: size)
        var receiveDisplacements = (0..<size).map { Int32($0 * mine) }
        var sendCounts = counts
        try received.withUnsafeMutableBufferPointer { r in
            try mpiCall("MPI_Alltoallv") {
                MPI_Alltoallv(base, &sendCounts, &sendDisplacements, type,
                              r.baseAddress, &receiveCounts, &receiveDisplacements, type, comm)
            }
            let out = base + starts[rank]
            for i in 0..<mine { out[i] = r[i] }
            for source in 1..<size {
                let row = r.baseAddress! + source * mine
                for i in 0..<mine { out[i] += row[i] }
            }
        }
        var displacements = starts.dropLast().map { Int32($0) }
        var allCounts = counts
        try mpiCall("MPI_Allgatherv") {
            MPI_Allgatherv(cmpi_in_place(), 0, type, base, &allCounts, &displacements, type, comm)
        }
    }

    /// The sum of every rank's `count` values in rank order on `root` (`MPI_Gather`, then the
    /// root adds the rows in rank order); the other ranks' buffers are unchanged.
    /// `count · size ≤ maxCountPerCall`.
    func rankOrderedReduce<T: BinaryFloatingPoint>(_ base: UnsafeMutablePointer<T>, count: Int, type: MPI_Datatype,
                                                  root: Int) throws {
        let isRoot = rank == root
        var rows = [T](repeating: 0, count: isRoot ? count * size : 0)
        try rows.withUnsafeMutableBufferPointer { r in
            try mpiCall("MPI_Gather") {
                MPI_Gather(base, Int32(count), type, r.baseAddress, Int32(count), type, Int32(root), comm)
            }
            guard isRoot else { return }
            for i in 0..<count { base[i] = r[i] }
            for source in 1..<size {
                let row = r.baseAddress! + source * count
                for i in 0..<count { base[i] += row[i] }
            }
        }
    }
}
