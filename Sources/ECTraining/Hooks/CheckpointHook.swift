import Foundation
import ECCheckpoint
import ECCompression
import ECNN
import ECOptim
import ECTensor

/// Writes a checkpoint (model tensors, optimizer state and each compressor's tensors in
/// safetensors; `JobState` plus each compressor's JSON state in `state.json`, under
/// `"compressors": {kind: state}`) every `every` steps and at the end, on the chief only,
/// atomically, keeping the last K; and restores the newest one to resume.
public final class CheckpointHook: SessionRunHook {
    public let every: Int
    public let saveDir: URL
    public let store: CheckpointStore
    public let keepLast: Int
    let seed: UInt64
    let batchSize: Int
    let compressors: [Compressor]
    let log: Logger
    /// The batch position to record; the training loop keeps it current.
    public var position = BatchPosition(epoch: 0, stepInEpoch: 0)
    private var lastSaved = -1

    public init(every: Int, saveDir: URL, keepLast: Int, seed: UInt64, batchSize: Int,
                compressors: [Compressor] = [], log: Logger) {
        self.every = every
        self.saveDir = saveDir
        store = CheckpointStore(directory: saveDir.appendingPathComponent("checkpoints"))
        self.keepLast = keepLast
        self.seed = seed
        self.batchSize = batchSize
        self.compressors = compressors
        self.log = log
    }

    /// The chief records the model's architecture beside the checkpoints (`model.json`).
    public func afterCreateSession(_ session: MonitoredSession) throws {
        guard session.communicator.isChief else { return }
        try SavedRun.writeModel(session.model, to: saveDir)
    }

    public func afterRun(_ context: RunContext, result: StepResult) throws {
        guard every > 0, result.step % every == 0 else { return }
        try save(context.session, step: result.step)
    }

    /// Saves now (chief only), unless this step is already saved.
    public func save(_ session: MonitoredSession, step: Int) throws {
        guard session.communicator.isChief, step != lastSaved else { return }
        var tensors = session.model.stateDict()
        for (name, t) in session.optimizer.inner.exportState().sorted { tensors[name] = t }
        var compressorStates: [String: Any] = [:]
        for c in compressors {
            for (name, t) in c.checkpointTensors().sorted { tensors[name] = t }
            compressorStates[c.kind] = try JSONSerialization.jsonObject(with: c.checkpointState())
        }
        let state = JobState(formatVersion: JobState.formatVersion, step: step, position: position, seed: seed,
                             worldSize: session.communicator.size, model: session.model.name, batchSize: batchSize)
        var object = try JSONSerialization.jsonObject(with: JSONEncoder().encode(state)) as! [String: Any]
        object["compressors"] = compressorStates
        let json = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
        let ref = try store.save(step: step, tensors: tensors, state: json, keepLast: keepLast)
        lastSaved = step
        log.info("checkpoint \(ref.url.path)")
    }

    /// What a checkpoint holds for one compressor, restored once the compressor is prepared.
    public struct CompressorState {
        public let tensors: NamedTensors
        public let state: Data
    }

    /// Loads the newest checkpoint into the model and optimizer, and returns each compressor's
    /// saved state by kind (to hand to its `CompressionHook`, which restores it right after
    /// `prepare`); nil when there is no checkpoint. A checkpoint of another job (model, batch
    /// size, seed) or without a compressor's state is an error, and so are checkpoints that all
    /// fail verification (`TrainingError.noUsableCheckpoint`: starting over from step 0 instead
    /// would silently throw the run away). Newer checkpoints skipped for an older valid one are
    /// warned about.
    public func restore(model: Model, optimizer: Optimizer, worldSize: Int)
        throws -> (step: Int, position: BatchPosition, compressors: [String: CompressorState])? {
        var damaged: [String] = []
        let found = try SavedRun.latestCheckpoint(in: saveDir) { skipped, reason in
            damaged.append("\(skipped.url.lastPathComponent): \(reason)")
            log.warning("skipping checkpoint \(skipped.url.path): \(reason)")
        }
        guard let checkpoint = found else {
            if damaged.isEmpty { return nil }
            throw TrainingError.noUsableCheckpoint(directory: store.directory.path, damaged: damaged)
        }
        if !damaged.isEmpty { log.warning("resuming from \(checkpoint.url.path), the newest checkpoint that verifies") }
        let state = try SavedRun.jobState(of: checkpoint)
        guard state.model == model.name, state.batchSize == batchSize, state.seed == seed else {
            throw TrainingError.incompatibleWeights(
                source: checkpoint.url.path,
                reason: "it was written by a job with model \(state.model), batch_size \(state.batchSize), seed \(state.seed); "
                    + "this job has \(model.name), \(batchSize), \(seed)")
        }
        if state.worldSize != worldSize {
            // The data position and the global batch are world-size independent, so the job
            // continues correctly; only bit-identity with an uninterrupted run needs the same N.
            log.warning("\(checkpoint.url.path) was written by a job on \(state.worldSize) rank(s), this one runs on "
                        + "\(worldSize): training continues from it, but not bit for bit as the original world size would")
        }
        let weights = try WeightLoader.weights(for: model, from: checkpoint.tensors, file: checkpoint.tensorsPath)
        try optimizer.importState(checkpoint.tensors, for: model.parameters)
        var saved: [String: CompressorState] = [:]
        for c in compressors {
            guard let own = try SavedRun.compressorState(c.kind, in: checkpoint) else {
                throw TrainingError.incompatibleWeights(source: checkpoint.url.path, reason: "it has no \(c.kind) state")
            }
            saved[c.kind] = own
        }
        WeightLoader.assign(weights, to: model)
        return (state.step, state.position, saved)
    }
}
