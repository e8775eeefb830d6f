import ECCollective
import ECCompression
import ECNN
import ECTensor

/// Debug mode (`--debug`): every `every` steps all ranks compare a checksum of each parameter
/// (running statistics included) and of each compressor decision (masks, step sizes) and fail
/// loudly, naming the first tensor that differs, when replicas have diverged.
///
/// The checksum of a tensor is its exact bit pattern folded into a 64-bit hash; comparing the
/// allreduced minimum and maximum of each hash tells whether every rank holds the same bits.
public final class ConsistencyCheckHook: SessionRunHook {
    public let every: Int
    let compressors: [Compressor]
    public private(set) var checks = 0

    public init(every: Int, compressors: [Compressor] = []) {
        self.every = every
        self.compressors = compressors
    }

    public func afterCreateSession(_ session: MonitoredSession) throws {
        try check(session, step: session.globalStep)
    }

    public func afterRun(_ context: RunContext, result: StepResult) throws {
        guard every > 0, result.step % every == 0 else { return }
        try check(context.session, step: result.step)
    }

    public func check(_ session: MonitoredSession, step: Int) throws {
        checks += 1
        var tensors = session.model.stateDict()
        for c in compressors { for (name, t) in c.decisionTensors.sorted { tensors[name] = t } }
        let params = tensors.sorted
        guard session.communicator.size > 1 else { return }
        // Hashes as two exactly representable halves (Double holds 32-bit integers exactly).
        var low = params.map { Double(checksum($0.tensor) & 0xFFFF_FFFF) }
        var high = params.map { Double(checksum($0.tensor) >> 32) }
        var lowMax = low, highMax = high
        let comm = session.communicator
        try comm.allreduce(&low, op: .min); try comm.allreduce(&lowMax, op: .max)
        try comm.allreduce(&high, op: .min); try comm.allreduce(&highMax, op: .max)
        for (i, p) in params.enumerated() where low[i] != lowMax[i] || high[i] != highMax[i] {
            throw TrainingError.replicasDiverged(step: step, tensor: p.name)
        }
    }

    /// FNV-1a over the tensor's Float bit patterns.
    func checksum(_ t: Tensor) -> UInt64 {
        t.withUnsafeBufferPointer { buf in
            var h: UInt64 = 0xCBF2_9CE4_8422_2325
            for v in buf {
                h = (h ^ UInt64(v.bitPattern)) &* 0x0000_0100_0000_01B3
            }
            return h
        }
    }
}
