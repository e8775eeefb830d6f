import ECReport
import Foundation
import ECNN

/// `save_dir/summary.json`, written by the chief at the end of every run (schema in
/// docs/formats.md). Later sections (pruner, quantizer, sparsifier) are added by compressors.
public struct TrainSummary: Codable {
    public var model: String
    public var worldSize: Int
    public var steps: Int
    public var epochs: Double
    public var batchSize: Int
    public var seed: UInt64
    public var testAccuracy: Double
    public var testLoss: Double
    public var params: Int
    public var flops: Int
    public var trainSamplesPerSecond: Double
    public var trainSeconds: Double
    public var layers: [LayerSummary]
    public var evaluations: [EvaluationPoint]

    public struct EvaluationPoint: Codable, Equatable {
        public let step: Int
        public let testAccuracy: Double
        public let testLoss: Double
        enum CodingKeys: String, CodingKey { case step, testAccuracy = "test_accuracy", testLoss = "test_loss" }
    }

    enum CodingKeys: String, CodingKey {
        case model, worldSize = "world_size", steps, epochs, batchSize = "batch_size", seed
        case testAccuracy = "test_accuracy", testLoss = "test_loss", params, flops
        case trainSamplesPerSecond = "train_samples_per_second", trainSeconds = "train_seconds", layers, evaluations
    }

    /// Pretty-printed JSON with sorted keys; `sections` (each a JSON object, e.g. a
    /// compressor's `pruner` section) are added under their names.
    public func jsonData(sections: [String: Data] = [:]) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let base = try encoder.encode(self)
        guard !sections.isEmpty else { return base }
        var object = try JSONSerialization.jsonObject(with: base) as! [String: Any]
        for (name, data) in sections { object[name] = try JSONSerialization.jsonObject(with: data) }
        return try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
    }

    /// The human-readable table printed at the end of a run.
    public var table: String {
        var rows = [["layer", "op", "params", "FLOPs/sample"]]
        rows += layers.map { [$0.name, $0.opType, "\($0.params)", "\($0.flops)"] }
        rows.append(["total", "", "\(params)", "\(flops)"])
        return TextTable.render(rows) + "\n" + String(
            format: "test accuracy %.4f, test loss %.4f; %d steps on %d rank(s), %.0f samples/s",
            testAccuracy, testLoss, steps, worldSize, trainSamplesPerSecond)
    }
}
