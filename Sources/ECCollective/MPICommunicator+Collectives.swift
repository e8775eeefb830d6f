import CMPI

// The collectives of `MPICommunicator`: every one validates, then funnels each MPI call
// through `mpiCall`. Counts beyond `maxCountPerCall` are split into several calls.
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
