import Foundation
import ECCollective
import ECNN
import ECTensor

/// Gradual block (or N:M) sparsity of Conv2D / MatMul kernels (the seed's `Sparsifier`, docs/sparsity.md).
///
/// - Kernels: the `weight` of every Conv2D / MatMul layer inside the config's scopes, seen as
///   `[inputs, outputs]` and tiled by `sparse_block_shape` (`BlockGrid`; partial edge blocks
///   are scored by their mean and count their real size).
/// - Criterion: a block's mean |w| at the decision step (magnitude, as Zhu & Gupta 2017); a
///   zeroed block stays zeroed (masks only grow).
/// - Schedule: after step k·step_interval, k = 1…num_trials, the sparsity rises to
///   s_k = S·(1 − (1 − k/n)³) (Zhu & Gupta's cubic, `GradualSchedule`), S = target_sparse_ratio
///   or (M − N)/M for an N:M pattern.
/// - Ranking: `local` — every kernel reaches s_k of its own elements; `global` — s_k of all the
///   kernels' elements, blocks ranked together; in both, short of the target by less than one
///   block, never above (`SparsitySelection`). N:M: every group of M consecutive inputs of one
///   output zeroes its ⌊s_k·M⌋ smallest |w| (after the last trial: keeps exactly N).
/// - Decisions (`MaskCompressor`): the chief scores and selects; one `.masks` payload (kernel
///   name → block mask `[gridRows, gridColumns]`, bit-packed, zstd) is broadcast; every rank,
///   the chief included, adopts the *decoded* masks, so they are bit-identical everywhere.
///   `applyMasks` zeroes the kernels' removed elements in values and optimizer slots (the hook
///   calls it after every step).
public final class Sparsifier: MaskCompressor {
    public let kind = "sparsifier"
    public let config: SparsifierConfig
    public let schedule: GradualSchedule

    /// One sparsified kernel.
    public struct Kernel: Equatable, Sendable {
        /// The parameter path (`conv1/weight`).
        public let parameter: String
        /// The kernel's shape (`[in, out]` or HWIO).
        public let shape: [Int]
        public let grid: BlockGrid
    }

    /// The sparsified kernels in name order (empty before `prepare`).
    public private(set) var kernels: [Kernel] = []
    /// How far the schedule has run.
    package var progress = TrialProgress()
    /// Trials done (0…numTrials).
    public var trialsDone: Int { progress.trialsDone }
    /// The step of the last decision, nil before the first.
    public var lastDecisionStep: Int? { progress.lastDecisionStep }
    /// Block keep flags per kernel (`true` = kept), row-major over its grid.
    var keep: [String: [Bool]] = [:]
    /// Per kernel with a zeroed block: the element mask to AND into the storage.
    package private(set) var masks = ElementMasks()
    var parameters: [String: Parameter] = [:]
    package private(set) var communicator: Communicator?
    package var timing = DecisionTiming()

    /// 1: the decision of a trial step is computed while the next step trains and applied after
    /// it, on every rank (`MaskCompressor`, "Delayed decisions"; `CompressionHook` sets it);
    /// 0: at once. The trainer's default is 1.
    public var decisionDelay: Int {
        get { timing.delay }
        set { timing.delay = newValue }  // 0 or 1 (`DecisionTiming.delay` checks)
    }

    /// - Throws: `CompressionConfigError` for a bad config.
    public init(config: SparsifierConfig) throws {
        try config.validate()
        self.config = config
        schedule = GradualSchedule(finalRatio: config.finalSparsity, stepInterval: config.stepInterval,
                                   numTrials: config.numTrials)
    }

    /// The block keep flags of kernel `parameter` (nil for a kernel not sparsified).
    public func keepFlags(parameter: String) -> [Bool]? { keep[parameter] }

    /// Zeroed elements / elements over every sparsified kernel.
    public var achievedSparsity: Double {
        let total = kernels.reduce(0) { $0 + $1.grid.elementCount }
        let zero = kernels.reduce(0) { $0 + $1.grid.zeroedElements(keep: keep[$1.parameter]!) }
        return total > 0 ? Double(zero) / Double(total) : 0
    }

    /// Finds the kernels and starts with every block kept.
    ///
    /// - Throws: `CompressionConfigError.unmatchedScope` for a scope that names no kernel,
    ///   `.nothingToSparsify` when the scopes select none.
    public func prepare(model: Model, communicator: Communicator) throws {
        let scopes = config.scopes
        let candidates = model.graph.allModules.filter { SparsifierConfig.sparsifiableOpTypes.contains($0.opType) }
            .flatMap { $0.ownParameters.filter { $0.role == .weight && $0.shape.count >= 2 }.map(\.name) }
        try ScopeFilter.requireMatches([("sparsifier.include_scopes", config.includeScopes),
                                        ("sparsifier.exclude_scopes", config.excludeScopes)],
                                       candidates: candidates, noun: "Conv2D/MatMul kernel", model: model.name)
        var found: [Kernel] = []
        var byName: [String: Parameter] = [:]
        for module in model.graph.allModules where SparsifierConfig.sparsifiableOpTypes.contains(module.opType) {
            for p in module.ownParameters where p.role == .weight && p.shape.count >= 2 && scopes.contains(p.name) {
                let block = config.pattern == nil ? config.sparseBlockShape : [1, 1]
                found.append(Kernel(parameter: p.name, shape: p.shape, grid: BlockGrid(kernelShape: p.shape, block: block)))
                byName[p.name] = p
            }
        }
        guard !found.isEmpty else {
            throw SparsifierError.nothingToSparsify(model: model.name, includeScopes: config.includeScopes,
                                                    excludeScopes: config.excludeScopes)
        }
        kernels = found.sorted { $0.parameter < $1.parameter }
        parameters = byName
        self.communicator = communicator
        keep = Dictionary(uniqueKeysWithValues: kernels.map { ($0.parameter, [Bool](repeating: true, count: $0.grid.blockCount)) })
        masks = ElementMasks()
        progress = TrialProgress()
    }

    /// At a trial step, every rank: the chief selects and broadcasts, all adopt the decoded
    /// masks (`MaskCompressor.decideOnSchedule`). Returns the trial's event
    /// (`target_sparsity`, `sparsity`).
    ///
    /// - Throws: `SparsifierError.notPrepared`; the channel's errors;
    ///   `SparsifierError.decisionMismatch` for a payload that does not fit the kernels.
    @discardableResult
    public func afterStep(_ step: Int, model: Model, channel: PayloadChannel) throws -> CompressionEvent? {
        try decideOnSchedule(step, channel: channel)
    }

    /// With `decisionDelay` 1, the chief starts computing the decision of step − 1 (if it was a
    /// trial step) in the background.
    public func beforeStep(_ step: Int, model: Model) throws {
        startDelayedDecision(beforeStep: step)
    }

    /// Applies a delayed decision of the last step (every rank), which no later step will.
    @discardableResult
    public func afterLastStep(_ step: Int, model: Model, channel: PayloadChannel) throws -> CompressionEvent? {
        try concludeDelayed(lastStep: step, channel: channel)
    }

    public func applyMasks(to tensor: inout Tensor, parameter: String) {
        applyElementMasks(to: &tensor, parameter: parameter)
    }

    package func eventValues(trial: Int) -> [String: Double] {
        ["target_sparsity": schedule.targetFraction(afterTrial: trial), "sparsity": achievedSparsity]
    }

    package func notPrepared(_ operation: String) -> Error { SparsifierError.notPrepared(operation: operation) }

    /// The chief's masks for `trial` — kernel name → block mask — from the kernels' values and
    /// keep flags as they are now. The values are shared, not copied, and released as soon as
    /// they are scored: the optimizer's next in-place update copies a kernel only if the
    /// decision still holds it then.
    package func decision(trial: Int) -> @Sendable () -> [String: PayloadValue] {
        let target = schedule.targetFraction(afterTrial: trial)
        let kernels = kernels, keep = keep, pattern = config.pattern, global = config.sortRange == .global
        let snapshot = WeightSnapshot(kernels.map { parameters[$0.parameter]!.value })
        return {
            let chosen: [[Bool]]
            if let pattern {
                chosen = zip(kernels, snapshot.take()).map { k, w in
                    SparsitySelection.pattern(pattern, grid: k.grid, weights: w.scalars, keep: keep[k.parameter]!, fraction: target)
                }
            } else {
                let layers = zip(kernels, snapshot.take()).map { k, w in
                    SparsitySelection.Layer(grid: k.grid, scores: k.grid.meanMagnitudes(w), keep: keep[k.parameter]!)
                }
                chosen = global ? SparsitySelection.global(layers, target: target) : SparsitySelection.local(layers, target: target)
            }
            var entries: [String: PayloadValue] = [:]
            for (k, flags) in zip(kernels, chosen) { entries[k.parameter] = .mask(Mask(shape: k.grid.maskShape, values: flags)) }
            return entries
        }
    }

    /// Adopts decoded masks after checking they fit the kernels and only add zeros.
    package func adopt(_ payload: Payload) throws {
        if let extra = payload.names.first(where: { keep[$0] == nil }) {
            throw SparsifierError.decisionMismatch(parameter: extra, reason: "no sparsified kernel has this name")
        }
        var received: [String: [Bool]] = [:]
        for k in kernels {
            guard let mask = payload.mask(named: k.parameter) else {
                throw SparsifierError.decisionMismatch(parameter: k.parameter, reason: "no mask in the payload")
            }
            guard mask.shape == k.grid.maskShape else {
                throw SparsifierError.decisionMismatch(parameter: k.parameter,
                                                       reason: "mask shape \(mask.shape), expected \(k.grid.maskShape)")
            }
            if let b = zip(mask.values, keep[k.parameter]!).enumerated().first(where: { $0.element.0 && !$0.element.1 })?.offset {
                throw SparsifierError.decisionMismatch(parameter: k.parameter, reason: "block \(b) was zeroed and is kept again")
            }
            received[k.parameter] = mask.values
        }
        setKeep(received)
    }

    /// Replaces the keep flags and recomputes the element masks.
    func setKeep(_ flags: [String: [Bool]]) {
        keep = flags
        var byKernel: [String: [UInt32]] = [:]
        for k in kernels where flags[k.parameter]!.contains(false) {
            byKernel[k.parameter] = k.grid.elementMask(keep: flags[k.parameter]!)
        }
        masks = ElementMasks(byKernel)
    }

    public var decisionTensors: NamedTensors {
        NamedTensors(kernels.map { (Self.maskName($0.parameter), Self.maskTensor(keep[$0.parameter]!, grid: $0.grid)) })
    }

    static func maskName(_ parameter: String) -> String { "sparsifier/mask/\(parameter)" }
    static func maskTensor(_ flags: [Bool], grid: BlockGrid) -> Tensor {
        Tensor(shape: grid.maskShape, scalars: flags.map { $0 ? 1 : 0 })
    }
}

/// Weight values handed to a decision on another thread, taken once (then no longer held).
final class WeightSnapshot: @unchecked Sendable {
    private let lock = NSLock()
    private var values: [Tensor]?

    init(_ values: [Tensor]) { self.values = values }

    func take() -> [Tensor] {
        lock.withLock {
            defer { values = nil }
            return values ?? []
        }
    }
}
