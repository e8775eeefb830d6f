import Foundation
import ECCollective
import ECNN
import ECTensor

/// Synchronised batch norm for one training step (`sync_batch_norm: true`): each batch-norm
/// layer's per-channel sums are added over this rank's thread replicas, in replica order, then
/// over the ranks (`Communicator.allreduce`, in rank order) — so N ranks of one replica and one
/// rank of N replicas add the same numbers in the same order and compute the same bits.
///
/// Every replica calls `sum` at the same points of its pass (`BatchStatisticsReducer`); the
/// replicas meet there (they run together, `Parallel.replicas(together:)`), the last to arrive
/// adds them up and takes part in the collective for the rank, and every replica continues with
/// the total. A collective that fails ends the job (`failJob`): a layer's forward or backward
/// pass cannot throw, and the other ranks would otherwise wait for this one forever.
final class SyncBatchNormStep {
    let communicator: Communicator
    let replicas: Int
    private let condition = NSCondition()
    private var slots: [[Double]]
    private var arrived = 0
    private var generation = 0
    private var total: [Double] = []

    init(communicator: Communicator, replicas: Int) {
        precondition(replicas >= 1, "SyncBatchNormStep: \(replicas) replicas")
        self.communicator = communicator
        self.replicas = replicas
        slots = Array(repeating: [], count: replicas)
    }

    /// The reducer replica `r`'s forward context uses.
    func reducer(replica r: Int) -> BatchStatisticsReducer { Replica(step: self, index: r) }

    /// Replica `r`'s values in, the sum over every replica and rank out.
    func sum(_ values: inout [Double], replica r: Int) {
        guard replicas > 1 else { return allreduce(&values) }
        condition.lock()
        defer { condition.unlock() }
        slots[r] = values
        arrived += 1
        let mine = generation
        if arrived == replicas {
            var sum = slots[0]
            for other in 1..<replicas {
                precondition(slots[other].count == sum.count, "sync batch norm: replicas disagree on the layer")
                for i in sum.indices { sum[i] += slots[other][i] }
            }
            allreduce(&sum)
            total = sum
            arrived = 0
            generation += 1
            condition.broadcast()
        } else {
            while generation == mine { condition.wait() }
        }
        values = total
    }

    /// What a rank with an empty shard does in one step: zeros at every point where the ranks
    /// with samples sum (each layer's two forward sums in execution order, then each layer's
    /// backward sum in reverse order), so that every rank makes the same collectives, and the
    /// layers' running statistics moved by the global batch's, as on every other rank.
    func takePartWithoutSamples(layers: [BatchNorm]) {
        precondition(replicas == 1, "a rank without samples runs no replicas")
        let reducer = reducer(replica: 0)
        for layer in layers {
            BatchNormStatistics.forwardWithoutSamples(runningMean: &layer.movingMean.value,
                                                      runningVariance: &layer.movingVariance.value,
                                                      momentum: layer.momentum, statistics: reducer)
        }
        for layer in layers.reversed() { BatchNormStatistics.backwardWithoutSamples(channels: layer.channels, statistics: reducer) }
    }

    private func allreduce(_ values: inout [Double]) {
        do {
            try communicator.allreduce(&values, op: .sum)
        } catch {
            failJob(TrainingError.syncBatchNorm(reason: "\(error)"), comm: communicator)
        }
    }

    private final class Replica: BatchStatisticsReducer {
        let step: SyncBatchNormStep
        let index: Int
        init(step: SyncBatchNormStep, index: Int) {
            self.step = step
            self.index = index
        }
        func sum(_ values: inout [Double]) { step.sum(&values, replica: index) }
        var updatesRunningStatistics: Bool { index == 0 }
    }
}

/// The running statistics (`.movingMean`, `.movingVariance`) of a model trained without
/// synchronised batch norm: each rank moves its own from its shard's batch statistics, so after
/// every step they are replaced by their average over the ranks, weighted by each rank's
/// samples in the step (an empty shard counts for nothing), identically on every rank.
///
/// The running statistics are exponential moving averages, r ← m·r + (1−m)·b, linear in the
/// batch statistics b; averaging them after every step therefore gives what one process would
/// keep if it moved them by the sample-weighted mean of the ranks' batch statistics — for the
/// mean exactly the global batch's mean. One allreduce of a few hundred numbers per step
/// (docs/distributed.md has the measured cost).
public struct RunningStatistics {
    /// The model's running statistics in name order.
    public let parameters: [Parameter]

    public init(model: Model) {
        parameters = model.parameters.filter { $0.role == .movingMean || $0.role == .movingVariance }
    }

    public var isEmpty: Bool { parameters.isEmpty }

    /// Replaces every running statistic with its sample-weighted average over the ranks.
    public func average(localSamples: Int, communicator: Communicator) throws {
        guard communicator.size > 1, !parameters.isEmpty else { return }
        let weight = Double(localSamples)
        var buffer = [weight]
        buffer.reserveCapacity(1 + parameters.reduce(0) { $0 + $1.value.count })
        for p in parameters { p.value.withUnsafeBufferPointer { for v in $0 { buffer.append(weight * Double(v)) } } }
        try communicator.allreduce(&buffer, op: .sum)
        let samples = buffer[0]
        guard samples > 0 else { return }
        var offset = 1
        for p in parameters {
            p.value.withUnsafeMutableBufferPointer { values in
                for i in values.indices { values[i] = Float(buffer[offset + i] / samples) }
            }
            offset += p.value.count
        }
    }
}
