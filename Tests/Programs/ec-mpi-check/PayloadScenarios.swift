import ECCollective
import ECCompression
import ECTensor
import Foundation

// Scenarios of ECCompression's PayloadChannel, run by Tests/ECCompressionTests/PayloadMPITests.swift.
extension Scenarios {
    /// The chief broadcasts masks, scales and state for several steps; every rank computes the
    /// same decisions locally and checks that it received them bit for bit. A worker that
    /// expects another step gets `stepMismatch` (and the job goes on).
    static func payload(_ comm: Communicator) throws {
        let channel = PayloadChannel(communicator: comm)
        let steps = [0, 1, 120, 240]
        for step in steps {
            for (kind, entries) in [(PayloadKind.masks, payloadMasks(step: step)),
                                    (.scales, payloadScales(step: step)), (.state, [:])] {
                let payload = try channel.broadcast(kind: kind, step: step, entries: comm.isChief ? entries : nil)
                try check(payload.kind == kind && payload.step == step,
                          "\(kind) step \(step): got kind \(payload.kind), step \(payload.step)")
                try checkEqual(payload.names, entries.keys.sorted(), "\(kind) names at step \(step)")
                for (name, value) in entries {
                    try check(payload[name] == value, "\(kind) '\(name)' at step \(step) differs from the local value")
                }
            }
        }
        let metrics = channel.metrics
        try check(metrics.calls == 3 * steps.count, "\(metrics.calls) calls")
        try check(metrics.compressionRatio > 1, "compression ratio \(metrics.compressionRatio)")
        var counts = [Double(metrics.bytesSent), Double(metrics.uncompressedBytes)]
        var lowest = counts
        try comm.allreduce(&counts, op: .max)
        try comm.allreduce(&lowest, op: .min)
        try checkEqual(counts, lowest, "byte counts differ across ranks")

        // Workers that disagree with the chief about the step reject the payload.
        let workerStep = comm.isChief ? 5 : 6
        let masks = comm.isChief ? payloadMasks(step: 5) : nil
        do {
            _ = try channel.broadcast(kind: .masks, step: workerStep, entries: masks)
            try check(comm.isChief, "rank \(comm.rank) accepted a payload for step 5 while expecting 6")
        } catch let error as PayloadChannelError {
            try check(!comm.isChief && error.error == .stepMismatch(found: 5, expected: 6) && error.kind == .masks
                      && error.step == 6 && error.rank == comm.rank && error.stage == .verify, "unexpected error \(error)")
        }
    }

    /// Rank `$EC_FAULT_CORRUPT_PAYLOAD` (1 in the tests) corrupts the payload it receives: it must
    /// throw, and `failJob` must abort the whole job while the other ranks wait in a barrier.
    static func payloadCorrupt(_ comm: Communicator) throws {
        try check(comm.size >= 2, "payload-corrupt needs at least 2 ranks, got \(comm.size)")
        let variable = PayloadChannel.corruptPayloadVariable
        try check(ProcessInfo.processInfo.environment[variable] != nil, "payload-corrupt needs \(variable) set")
        let channel = PayloadChannel(communicator: comm, sender: "pruner")
        _ = try channel.broadcast(kind: .masks, step: 120, entries: comm.isChief ? payloadMasks(step: 120) : nil)
        try comm.barrier()
    }

    /// Masks of every structure, a function of `step` only: channel pruning (whole output
    /// channels of an HWIO kernel), random single weights, odd lengths, empty and scalar.
    static func payloadMasks(step: Int) -> [String: PayloadValue] {
        let kernel = [3, 3, 16, 32]
        let channelMask = (0..<kernel.reduce(1, *)).map { ($0 % 32 + step) % 3 != 0 }
        var rng = RNG(seed: UInt64(step))
        return [
            "block1/conv1/weight": .mask(Mask(shape: kernel, values: channelMask)),
            "conv1/bias": .mask(Mask((0..<7).map { ($0 + step) % 2 == 0 })),
            "fc1/weight": .mask(Mask(shape: [1001], values: (0..<1001).map { _ in rng.nextUniform() < 0.3 })),
            "fc2/bias": .mask(Mask(shape: [0], values: [])),
            "fc2/weight": .mask(Mask(shape: [], values: [step % 2 == 1])),
        ]
    }

    /// Step sizes with awkward bit patterns (NaN payloads, infinities, -0, subnormals).
    static func payloadScales(step: Int) -> [String: PayloadValue] {
        let awkward: [Float] = [Float(bitPattern: 0x7FC0_1234), -.infinity, .infinity, -0.0,
                                .leastNonzeroMagnitude, Float(step) / 1024]
        return [
            "conv1/weight/scale": .floats(Tensor(shape: [2, 3], scalars: awkward)),
            "fc1/weight/scale": .floats(Tensor(scalar: 0.01 * Float(step + 1))),
        ]
    }
}
