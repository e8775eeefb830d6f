import Foundation
import ECCheckpoint
import ECNN
import ECTensor

/// The JSON half of a checkpoint (`state.json`): where training stands.
public struct JobState: Codable, Equatable {
    public static let formatVersion = 1
    public var formatVersion: Int
    public var step: Int
    /// The next batch to train on.
    public var position: BatchPosition
    public var seed: UInt64
    public var worldSize: Int
    public var model: String
    public var batchSize: Int

    enum CodingKeys: String, CodingKey {
        case formatVersion = "format_version", step, position, seed, worldSize = "world_size", model
        case batchSize = "batch_size"
    }
}

/// Writes a checkpoint (model tensors + optimizer state in safetensors, `JobState` in JSON)
/// every `every` steps and at the end, on the chief only, atomically, keeping the last K.
public final class CheckpointHook: SessionRunHook {
    public let every: Int
    public let store: CheckpointStore
    public let keepLast: Int
    let config: JobConfig
    let log: Logger
    /// The batch position to record; the training loop keeps it current.
    public var position = BatchPosition(epoch: 0, stepInEpoch: 0)
    private var lastSaved = -1

    public init(every: Int, saveDir: URL, keepLast: Int, config: JobConfig, log: Logger) {
        self.every = every
        store = CheckpointStore(directory: saveDir.appendingPathComponent("checkpoints"))
        self.keepLast = keepLast
        self.config = config
        self.log = log
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
        let state = JobState(formatVersion: JobState.formatVersion, step: step, position: position, seed: config.seed,
                             worldSize: session.communicator.size, model: session.model.name, batchSize: config.batchSize)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let ref = try store.save(step: step, tensors: tensors, state: try encoder.encode(state), keepLast: keepLast)
        lastSaved = step
        log.info("checkpoint \(ref.url.path)")
    }
}
