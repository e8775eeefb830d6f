import Foundation

/// A learning-rate schedule: a base rate, a decay rule and an optional linear warmup, all
/// functions of the global step `t` (the number of optimizer steps already taken).
///
///     lr(t) = warmup(t) · decay(t)
///     warmup(t) = s + (1 − s)·t/W   for t < W,   1 otherwise      (W = warmupSteps, s = warmupStartFactor)
///     constant:  decay(t) = lr₀
///     step:      decay(t) = lr₀ · γ^⌊t/N⌋                          (N = stepSize, γ = gamma)
///     cosine:    decay(t) = lr_min + (lr₀ − lr_min)·½(1 + cos(π·min(t, T)/T))   (T = totalSteps)
///
/// Warmup (Goyal et al. 2017, "Accurate, Large Minibatch SGD") multiplies the decayed rate,
/// so the rate is continuous at `t = W`; the decay keeps counting from step 0 (timm's default),
/// so step-decay boundaries sit at absolute steps N, 2N, … whatever the warmup. With the
/// default start factor 0 the first step has rate 0. Cosine decay follows Loshchilov & Hutter
/// 2017 (SGDR, without restarts) and stays at `lr_min` after `T`.
///
/// Codable (synthesized) so a job config can carry it; decoding does not validate — call
/// `validate()` (every optimizer initializer does). Config keys used in error messages:
/// `optimizer.lr`, `optimizer.schedule.step_size`, `optimizer.schedule.gamma`,
/// `optimizer.schedule.total_steps`, `optimizer.schedule.min_lr`,
/// `optimizer.schedule.warmup_steps`, `optimizer.schedule.warmup_start_factor`.
public struct LRSchedule: Codable, Equatable, Sendable {
    /// How the rate falls after (and during) warmup.
    public enum Decay: Codable, Equatable, Sendable {
        /// The base rate throughout.
        case constant
        /// Multiply by `gamma` every `stepSize` steps (PyTorch `StepLR`).
        case step(stepSize: Int, gamma: Float)
        /// Half-cosine from the base rate at step 0 to `minLearningRate` at `totalSteps`.
        case cosine(totalSteps: Int, minLearningRate: Float)
    }

    /// The base rate lr₀ (`optimizer.lr`), > 0.
    public var learningRate: Float
    public var decay: Decay
    /// W ≥ 0; 0 disables warmup.
    public var warmupSteps: Int
    /// s ∈ [0, 1]: the fraction of the rate used at step 0 of the warmup.
    public var warmupStartFactor: Float

    public init(learningRate: Float, decay: Decay = .constant, warmupSteps: Int = 0,
                warmupStartFactor: Float = 0) {
        self.learningRate = learningRate
        self.decay = decay
        self.warmupSteps = warmupSteps
        self.warmupStartFactor = warmupStartFactor
    }

    /// A constant rate, optionally after a linear warmup.
    public static func constant(_ learningRate: Float, warmupSteps: Int = 0,
                                warmupStartFactor: Float = 0) -> LRSchedule {
        LRSchedule(learningRate: learningRate, decay: .constant, warmupSteps: warmupSteps,
                   warmupStartFactor: warmupStartFactor)
    }

    /// Step decay: lr₀·γ^⌊t/N⌋, optionally after a linear warmup.
    public static func stepDecay(_ learningRate: Float, stepSize: Int, gamma: Float, warmupSteps: Int = 0,
                                 warmupStartFactor: Float = 0) -> LRSchedule {
        LRSchedule(learningRate: learningRate, decay: .step(stepSize: stepSize, gamma: gamma),
                   warmupSteps: warmupSteps, warmupStartFactor: warmupStartFactor)
    }

    /// Cosine decay from lr₀ to `minLearningRate` over `totalSteps`, optionally after a warmup.
    public static func cosine(_ learningRate: Float, totalSteps: Int, minLearningRate: Float = 0,
                              warmupSteps: Int = 0, warmupStartFactor: Float = 0) -> LRSchedule {
        LRSchedule(learningRate: learningRate,
                   decay: .cosine(totalSteps: totalSteps, minLearningRate: minLearningRate),
                   warmupSteps: warmupSteps, warmupStartFactor: warmupStartFactor)
    }

    /// Checks every field.
    /// - Throws: `OptimizerError.invalidValue` naming the first bad key and its value.
    public func validate() throws {
        try require(learningRate > 0 && learningRate.isFinite, "optimizer.lr", learningRate, "> 0")
        try require(warmupSteps >= 0, "optimizer.schedule.warmup_steps", warmupSteps, ">= 0")
        try require(warmupStartFactor >= 0 && warmupStartFactor <= 1,
                    "optimizer.schedule.warmup_start_factor", warmupStartFactor, "in [0, 1]")
        switch decay {
        case .constant:
            break
        case let .step(stepSize, gamma):
            try require(stepSize > 0, "optimizer.schedule.step_size", stepSize, "> 0")
            try require(gamma > 0 && gamma <= 1, "optimizer.schedule.gamma", gamma, "in (0, 1]")
        case let .cosine(totalSteps, minLearningRate):
            try require(totalSteps > 0, "optimizer.schedule.total_steps", totalSteps, "> 0")
            try require(minLearningRate >= 0 && minLearningRate <= learningRate,
                        "optimizer.schedule.min_lr", minLearningRate,
                        "in [0, optimizer.lr] = [0, \(learningRate)]")
        }
    }

    /// The rate for the update that takes the optimizer from step `step` to `step + 1`.
    /// - Precondition: `step >= 0`.
    public func learningRate(at step: Int) -> Float {
        precondition(step >= 0, "learning rate asked for negative step \(step)")
        let t = Double(step)
        let base = Double(learningRate)
        var lr: Double
        switch decay {
        case .constant:
            lr = base
        case let .step(stepSize, gamma):
            lr = base * pow(Double(gamma), Double(step / stepSize))
        case let .cosine(totalSteps, minLearningRate):
            let progress = min(t, Double(totalSteps)) / Double(totalSteps)
            let floor = Double(minLearningRate)
            lr = floor + (base - floor) * 0.5 * (1 + cos(Double.pi * progress))
        }
        if step < warmupSteps {
            let s = Double(warmupStartFactor)
            lr *= s + (1 - s) * t / Double(warmupSteps)
        }
        return Float(lr)
    }
}

/// Throws `OptimizerError.invalidValue` unless `condition` holds (NaN fails every range check).
func require<V>(_ condition: Bool, _ key: String, _ value: V, _ requirement: String) throws {
    guard condition else {
        throw OptimizerError.invalidValue(key: key, value: "\(value)", requirement: requirement)
    }
}
