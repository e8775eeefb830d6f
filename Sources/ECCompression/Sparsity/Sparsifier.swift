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

    public func applyMasks(to tensor: inout Tensor, parameter: String) {
        applyElementMasks(to: &tensor, parameter: parameter)
    }

    package func eventValues(trial: Int) -> [String: Double] {
        ["target_sparsity": schedule.targetFraction(afterTrial: trial), "sparsity": achievedSparsity]
    }

    package func notPrepared(_ operation: String) -> Error { SparsifierError.notPrepared(operation: operation) }

    /// The chief's masks for `trial`: kernel name → block mask.
    package func decide(trial: Int) -> [String: PayloadValue] {
        let target = schedule.targetFraction(afterTrial: trial)
        var chosen: [[Bool]]
        if let pattern = config.pattern {
            chosen = kernels.map {
                SparsitySelection.pattern(pattern, grid: $0.grid, weights: parameters[$0.parameter]!.value.scalars,
                                          keep: keep[$0.parameter]!, fraction: target)
            }
        } else {
            let layers = kernels.map {
                SparsitySelection.Layer(grid: $0.grid, scores: $0.grid.meanMagnitudes(parameters[$0.parameter]!.value),
                                        keep: keep[$0.parameter]!)
            }
            chosen = config.sortRange == .global ? SparsitySelection.global(layers, target: target)
                                                 : SparsitySelection.local(layers, target: target)
        }
        var entries: [String: PayloadValue] = [:]
        for (k, flags) in zip(kernels, chosen) { entries[k.parameter] = .mask(Mask(shape: k.grid.maskShape, values: flags)) }
        return entries
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
