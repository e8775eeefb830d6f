import Foundation
import ECNN
import ECTensor

/// Inference throughput and latency of a model, measured in-process (for before/after tables).
public struct InferenceSpeed: Codable, Equatable {
    /// Samples per second at batch 256.
    public let batch256SamplesPerSecond: Double
    /// Median latency of one sample, microseconds.
    public let batch1Microseconds: Double

    public init(batch256SamplesPerSecond: Double, batch1Microseconds: Double) {
        self.batch256SamplesPerSecond = batch256SamplesPerSecond
        self.batch1Microseconds = batch1Microseconds
    }

    enum CodingKeys: String, CodingKey {
        case batch256SamplesPerSecond = "batch256_samples_per_second", batch1Microseconds = "batch1_microseconds"
    }

    /// Times `model` on `data`'s first samples: 5 warm-up calls, then batches of 256 for about
    /// `seconds`, then single samples for about `seconds` (median of 5 rounds).
    public static func measure(_ model: Model, on data: Dataset, seconds: Double = 0.5,
                               options: InferenceOptions = .standard) -> InferenceSpeed {
        let (big, _) = data.gather(0..<min(256, data.count))
        let (one, _) = data.gather(0..<1)
        func run(_ x: Tensor) { _ = model.predict(x, options: options) }
        for _ in 0..<5 { run(big); run(one) }
        func rate(_ x: Tensor, budget: Double) -> Double {
            var rounds: [Double] = []
            for _ in 0..<5 {
                var n = 0
                let start = DispatchTime.now()
                var elapsed = 0.0
                while elapsed < budget / 5 {
                    run(x)
                    n += 1
                    elapsed = Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
                }
                rounds.append(elapsed / Double(n))
            }
            return rounds.sorted()[2]
        }
        return InferenceSpeed(batch256SamplesPerSecond: Double(big.shape[0]) / rate(big, budget: seconds),
                              batch1Microseconds: rate(one, budget: seconds) * 1e6)
    }
}
