import Foundation
import ECCollective
import ECNN
import ECOptim
import ECTensor

/// Runs training steps and calls its hooks around them, as TensorFlow's
/// `tf.train.MonitoredSession` (the seed's hook-style integration point).
///
/// ```swift
/// let session = try MonitoredSession(model: model, optimizer: SGD(...), hooks: [hook])
/// while !session.shouldStop {
///     let (x, y) = nextBatch()
///     try session.run(images: x, labels: y, globalBatchSize: 64)
/// }
/// try session.close()
/// ```
///
/// The session broadcasts the chief's parameters at creation (verified by checksum on every
/// rank) and wraps the optimizer in a `DistributedOptimizer` (gradients allreduced in fused
/// buckets before each update; a no-op for a world of one), so the training loop is the same on
/// one process and on N ranks. Batch norm keeps the replicas identical too: its running
/// statistics are averaged over the ranks after every step, or, with `syncBatchNorm`, every
/// pass normalises with the global batch's statistics (docs/distributed.md, "Batch norm on
/// several ranks").
public final class MonitoredSession {
    public let model: Model
    public let optimizer: DistributedOptimizer
    public let communicator: Communicator
    public private(set) var hooks: [SessionRunHook]
    /// Steps completed so far (restored from a checkpoint on resume).
    public internal(set) var globalStep: Int
    public private(set) var shouldStop = false
    /// Intra-process data parallelism: forward/backward passes run at once on this many
    /// threads, each on a slice of the shard (see `replicaCount(batch:)`); 1 = off.
    public var threadReplicas = 1
    /// Synchronised batch norm (`sync_batch_norm: true`): every batch-norm layer normalises
    /// with the mean and variance of the global batch — all ranks' and thread replicas'
    /// samples — instead of its own pass's, and the gradient flows through those global
    /// statistics. Models with batch norm may then run thread replicas.
    public var syncBatchNorm = false
    private var closed = false
    /// The model's batch-norm layers in execution order, and their running statistics.
    private lazy var batchNormLayers: [BatchNorm] = model.graph.steps.flatMap(\.nodeIndices).compactMap {
        model.graph.nodes[$0].op.layer as? BatchNorm
    }
    private lazy var runningStatistics = RunningStatistics(model: model)

    /// Test fault injection: the rank named by this environment variable flips one bit of the
    /// parameters it receives from the chief at creation, before they are verified.
    public static let corruptBroadcastVariable = "EC_FAULT_CORRUPT_BROADCAST"

    /// Creates the session: runs `begin`, makes parameters identical on every rank (the chief's
    /// values are broadcast), then runs `afterCreateSession`.
    ///
    /// - Parameter overlapGradients: sum gradient buckets of about `bucketBytes` over the ranks
    ///   while backward runs (`DistributedOptimizer.overlapBackward`), instead of all at once
    ///   after it; the same bits either way.
    public init(model: Model, optimizer: Optimizer, communicator: Communicator = SingleProcessCommunicator(),
                hooks: [SessionRunHook] = [], bucketBytes: Int = DistributedOptimizer.defaultBucketBytes, startStep: Int = 0,
                overlapGradients: Bool = DistributedOptimizer.defaultOverlap) throws {
        self.model = model
        self.communicator = communicator
        self.optimizer = DistributedOptimizer(optimizer, communicator: communicator, bucketBytes: bucketBytes)
        if communicator.size > 1 {
            if overlapGradients {
                try self.optimizer.overlapBackward(of: model)
            } else {
                self.optimizer.attachFlatGradients(model.parameters)
            }
        }
        self.hooks = hooks
        globalStep = startStep
        for h in hooks { try h.begin(self) }
        let corrupt = ProcessInfo.processInfo.environment[Self.corruptBroadcastVariable] == String(communicator.rank)
        try broadcastParameters(model.parameters, from: 0, communicator: communicator, corruptOnReceipt: corrupt)
        for h in hooks { try h.afterCreateSession(self) }
    }

    /// Adds a hook after creation (its `begin`/`afterCreateSession` run immediately).
    public func add(hook: SessionRunHook) throws {
        hooks.append(hook)
        try hook.begin(self)
        try hook.afterCreateSession(self)
    }

    /// One training step on this rank's shard: forward, backward, (allreduced) update, hooks.
    ///
    /// - Parameters:
    ///   - images: this rank's shard `[b] + model.inputShape`.
    ///   - labels: the shard's labels.
    ///   - globalBatchSize: the global batch the shards make up; the loss is normalised by it
    ///     so the sum of the ranks' gradients is the global mean gradient.
    @discardableResult
    public func run(images: Tensor, labels: [Int32], globalBatchSize: Int) throws -> StepResult {
        precondition(!closed, "run on a closed session")
        let start = DispatchTime.now()
        let context = RunContext(session: self, step: globalStep + 1)
        for h in hooks { try h.beforeRun(context) }
        let localLoss = forwardBackward(images: images, labels: labels, globalBatchSize: globalBatchSize)
        if !syncBatchNorm { try runningStatistics.average(localSamples: labels.count, communicator: communicator) }
        try optimizer.step(model.parameters)
        globalStep += 1
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
        let result = StepResult(step: globalStep, localLoss: localLoss, localSamples: labels.count,
                                globalSamples: globalBatchSize, seconds: seconds)
        for h in hooks { try h.afterRun(context, result: result) }
        if context.stopRequested { shouldStop = true }
        return result
    }

    /// Zeroes the gradients, then runs forward and backward, leaving this shard's gradients in
    /// each parameter's `grad`. The graph is released on return, so no tensor still shares a
    /// parameter's storage when the optimizer updates it in place (no copy-on-write copies).
    ///
    /// An empty shard (a global batch smaller than the world) contributes zero gradients and
    /// zero loss, and its rank still takes part in the allreduce (and, with synchronised batch
    /// norm, in every layer's sums).
    ///
    /// With overlapped gradients (`DistributedOptimizer.overlapsBackward`) every pass hands each
    /// final gradient to the step's `OverlappedBackward`, which sums the passes' gradients into
    /// `Parameter.grad` and starts the buckets' sums over the ranks while backward goes on; the
    /// optimizer's `step` waits for them.
    func forwardBackward(images: Tensor, labels: [Int32], globalBatchSize: Int) -> Float {
        model.graph.zeroGrad()
        let synchronised = syncBatchNorm && !batchNormLayers.isEmpty
        let replicas = labels.isEmpty ? 1 : replicaCount(batch: labels.count)
        let overlapped = optimizer.beginBackward(replicas: replicas)
        defer { overlapped?.finishBackward() }  // the buckets not started yet (all of them for an empty shard)
        guard !labels.isEmpty else {
            if synchronised {
                SyncBatchNormStep(communicator: communicator, replicas: 1).takePartWithoutSamples(layers: batchNormLayers)
            }
            return 0
        }
        let sync = synchronised ? SyncBatchNormStep(communicator: communicator, replicas: replicas) : nil
        if replicas > 1 {
            return forwardBackward(images: images, labels: labels, globalBatchSize: globalBatchSize, replicas: replicas,
                                   sync: sync, overlapped: overlapped)
        }
        let ctx = ForwardContext.training()
        ctx.batchShare = BatchShare(pass: labels.count, global: globalBatchSize)
        ctx.batchStatistics = sync?.reducer(replica: 0)
        if let overlapped { ctx.gradientSink = { overlapped.deliver($0, $1, replica: 0) } }
        let loss = model(Variable(images), ctx).softmaxCrossEntropy(labels: labels, normalizer: globalBatchSize)
        ctx.tape!.backward(from: loss)
        return loss.value.scalarValue
    }

    /// How many thread replicas this step may use: `threadReplicas`, unless the model keeps
    /// per-batch state a concurrent pass would race on (batch norm's running statistics —
    /// unless synchronised, when one replica moves them for all — or a layer transform that
    /// does not support replicas: the quantizer does once its step sizes exist) or the shard is
    /// too small to give every replica 8 samples.
    func replicaCount(batch: Int) -> Int {
        guard threadReplicas > 1, model.transform?.supportsReplicas ?? true, batchNormLayers.isEmpty || syncBatchNorm
        else { return 1 }
        return min(threadReplicas, batch / 8)
    }

    /// Thread replicas: the shard is cut into `replicas` contiguous slices; each runs forward
    /// and backward at once on its own thread (one BLAS thread each) into its own gradient
    /// accumulator; the gradients are then summed into `Parameter.grad` in replica order, so
    /// the result is deterministic for a given replica count — and, with the shards cut as
    /// ranks cut them, bit-identical to that many ranks of one thread each.
    private func forwardBackward(images: Tensor, labels: [Int32], globalBatchSize: Int, replicas: Int,
                                 sync: SyncBatchNormStep?, overlapped: OverlappedBackward?) -> Float {
        let accumulators = (0..<replicas).map { _ in GradientAccumulator() }
        var losses = [Float](repeating: 0, count: replicas)
        losses.withUnsafeMutableBufferPointer { buffer in
            let lossOut = buffer
            let pass: (Int) -> Void = { [self] r in
                // The same cut as ranks' shards: a world of `replicas` ranks trains like this.
                let range = BatchSchedule.shard(of: labels.count, rank: r, worldSize: replicas)
                let ctx = ForwardContext(tape: Tape(), training: true, gradients: accumulators[r])
                ctx.batchShare = BatchShare(pass: range.count, global: globalBatchSize)
                ctx.batchStatistics = sync?.reducer(replica: r)
                if let overlapped { ctx.gradientSink = { overlapped.deliver($0, $1, replica: r) } }
                let loss = model(Variable(images.rows(range)), ctx).softmaxCrossEntropy(labels: Array(labels[range]),
                                                                                         normalizer: globalBatchSize)
                ctx.tape!.backward(from: loss)
                lossOut[r] = loss.value.scalarValue
            }
            // Synchronised batch norm: the replicas wait for each other at every layer.
            if sync != nil { Parallel.replicasTogether(replicas, pass) } else { Parallel.replicas(replicas, pass) }
        }
        if overlapped == nil {  // else summed as each parameter's gradients became final
            for p in model.parameters where p.isTrainable {
                for a in accumulators { if let g = a.gradient(of: p) { p.grad.addScaled(g) } }
            }
        }
        model.transform?.absorbReplicaGradients(accumulators)
        return losses.reduce(0, +)
    }

    /// Requests the end of training (takes effect before the next step).
    public func requestStop() { shouldStop = true }

    /// Runs every hook's `end` once.
    public func close() throws {
        guard !closed else { return }
        closed = true
        for h in hooks { try h.end(self) }
    }
}

/// Broadcasts every parameter (running statistics included) from `root`, in canonical order,
/// and verifies what arrived as every payload is verified: the root broadcasts the XXH64 of
/// each parameter's bytes, and a rank whose copy hashes otherwise throws
/// `TrainingError.initialBroadcastCorrupted`, naming the first such parameter (the caller ends
/// the job; nobody trains on a corrupted copy).
///
/// - Parameter corruptOnReceipt: tests only — flip one bit of the first parameter received
///   (on a rank other than `root`) before verifying.
public func broadcastParameters(_ parameters: [Parameter], from root: Int, communicator: Communicator,
                                corruptOnReceipt: Bool = false) throws {
    guard communicator.size > 1 else { return }
    let ordered = parameters.sorted(by: { $0.name < $1.name })
    for p in ordered {
        try p.value.withUnsafeMutableBufferPointer { try communicator.broadcast($0, root: root) }
    }
    if corruptOnReceipt, communicator.rank != root, let first = ordered.first(where: { $0.value.count > 0 }) {
        first.value.withUnsafeMutableBufferPointer { $0.withMemoryRebound(to: UInt32.self) { $0[0] ^= 1 } }
    }
    let received = ordered.map { p in p.value.withUnsafeBufferPointer { XXHash64.hash(UnsafeRawBufferPointer($0)) } }
    var sent = received
    try sent.withUnsafeMutableBytes { try communicator.broadcast($0, root: root) }
    if let i = ordered.indices.first(where: { received[$0] != sent[$0] }) {
        throw TrainingError.initialBroadcastCorrupted(rank: communicator.rank, tensor: ordered[i].name,
                                                      received: received[i], sent: sent[i])
    }
}
