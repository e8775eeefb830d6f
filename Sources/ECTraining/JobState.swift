/// The JSON half of a checkpoint (`state.json`) — its schema, version 1: `format_version`,
/// `step` (the last step trained), `position` (the next batch: epoch and index), `seed`,
/// `world_size`, `model` and `batch_size`; each compressor's own JSON state sits beside these
/// under `"compressors": {kind: state}` (docs/formats.md).
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

    public init(formatVersion: Int, step: Int, position: BatchPosition, seed: UInt64, worldSize: Int, model: String,
                batchSize: Int) {
        self.formatVersion = formatVersion
        self.step = step
        self.position = position
        self.seed = seed
        self.worldSize = worldSize
        self.model = model
        self.batchSize = batchSize
    }
}
