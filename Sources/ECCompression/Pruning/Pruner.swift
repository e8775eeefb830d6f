import ECCollective
import ECNN
import ECTensor

/// Gradual, importance-driven structured pruning of channels (the seed's `Pruner`, docs/pruning.md).
///
/// - Importance: each prunable group's channels carry an EMA of their first-order Taylor score
///   (Molchanov et al. 2019, see `TaylorImportance`), I ← α·I + (1−α)·score, started at the
///   first score and updated after every step until the last trial — on the chief only
///   (the chief decides, docs/distributed.md); `importanceUpdates` counts the updates this process made (0 on workers).
/// - Schedule: after step k·stepInterval, k = 1…numTrials, the pruned fraction rises to
///   r_k = R·(1 − (1 − k/n)³) (Zhu & Gupta 2017, see `GradualSchedule`).
/// - Unit: the fraction of the prunable layers' parameters removed (`PrunerConfig`): the
///   denominator is the element count of the kernels and biases of every Conv2D/MatMul layer
///   holding a slice of a prunable group (producers and consumers); the numerator counts the
///   elements of those parameters that the pruned channels cover, each once.
/// - Selection: `ChannelSelection.global` / `.local`; monotone; ≥ 1 channel kept per group;
///   non-prunable groups are never touched.
/// - Decisions (`MaskCompressor`): at a trial the chief selects, broadcasts one `.masks`
///   payload (group id → a `Mask` over the group's channels), and every rank, the chief
///   included, adopts the *decoded* payload, so keep flags are bit-identical everywhere.
///   `applyMasks` zeroes the pruned elements (the hook calls it on values and optimizer slots
///   after every step) from per-parameter element masks computed once per decision.
///
/// The groups come from `groupsProvider`, called once by `prepare` with the model. The
/// training side passes the graph analysis, e.g.
///
///     Pruner(config: c) { model in
///         ChannelGroups.build(model: model, prunableOpTypes: c.prunableOpTypes,
///                             scopes: ScopeFilter(include: c.includeScopes, exclude: c.excludeScopes))
///     }
///
/// so scopes and op types are applied there (`ChannelGroup.prunable`), not here.
public final class Pruner: MaskCompressor {
    public let kind = "pruner"
    public let config: PrunerConfig
    public let schedule: GradualSchedule
    private let groupsProvider: (Model) throws -> [ChannelGroup]

    /// Every channel group of the model, in id order (empty before `prepare`).
    public private(set) var groups: [ChannelGroup] = []
    /// The groups that may be pruned, in id order.
    public var prunableGroups: [ChannelGroup] { groups.filter(\.prunable) }
    /// Importance EMA updates computed by this process; always 0 on a worker.
    public private(set) var importanceUpdates = 0
    /// How far the schedule has run.
    package var progress = TrialProgress()
    /// Trials done (0…numTrials).
    public var trialsDone: Int { progress.trialsDone }
    /// The step of the last decision, nil before the first.
    public var lastDecisionStep: Int? { progress.lastDecisionStep }

    var importance: [String: [Float]] = [:]
    var importanceInitialized = false
    var keep: [String: [Bool]] = [:]
    var elements = PrunedElements(elementCounts: [:], counted: [])
    package private(set) var masks = ElementMasks()
    var parameters: [String: Parameter] = [:]
    var elementCounts: [String: Int] = [:]
    private var scoredSlices: [String: [(ChannelSlice, Parameter)]] = [:]
    /// The world given to `prepare` (nil before).
    package private(set) var communicator: Communicator?
    package var timing = DecisionTiming()

    /// 1: the decision of a trial step is computed while the next step trains and applied after
    /// it, on every rank (`MaskCompressor`, "Delayed decisions"; `CompressionHook` sets it);
    /// 0: at once. The trainer's default is 1.
    public var decisionDelay: Int {
        get { timing.delay }
        set { timing.delay = newValue }  // 0 or 1 (`DecisionTiming.delay` checks)
    }

    /// - Parameters:
    ///   - config: validated here.
    ///   - groupsProvider: the model's channel groups (see the type's documentation).
    /// - Throws: `CompressionConfigError` for a bad config.
    public init(config: PrunerConfig, groupsProvider: @escaping (Model) throws -> [ChannelGroup]) throws {
        try config.validate()
        self.config = config
        schedule = GradualSchedule(finalRatio: config.compressionRatio, stepInterval: config.stepInterval,
                                   numTrials: config.numTrials)
        self.groupsProvider = groupsProvider
    }

    /// A pruner over fixed, already built groups.
    public convenience init(config: PrunerConfig, groups: [ChannelGroup]) throws {
        try self.init(config: config) { _ in groups }
    }

    /// Prunable groups' keep flags (`true` = kept), nil for an unknown or non-prunable group.
    public func keepFlags(group id: String) -> [Bool]? { keep[id] }
    /// Prunable groups' importance EMA, nil for an unknown or non-prunable group.
    public func importance(group id: String) -> [Float]? { importance[id] }
    /// The denominator of the ratio: prunable layers' kernel and bias elements.
    public private(set) var prunableParameterCount = 0
    /// The numerator: those of them the pruned channels remove.
    public var removedParameterCount: Int { elements.removedCounted }
    /// removed / prunable parameters (0 when nothing is prunable).
    public var achievedRatio: Double {
        prunableParameterCount > 0 ? Double(removedParameterCount) / Double(prunableParameterCount) : 0
    }

    /// Builds the groups, checks them against the model and starts with every channel kept.
    ///
    /// - Throws: whatever `groupsProvider` throws; `PrunerError.invalidGroup` for a group that
    ///   does not fit the model.
    public func prepare(model: Model, communicator: Communicator) throws {
        let byName = Dictionary(model.parameters.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        let built = try groupsProvider(model).sorted { $0.id < $1.id }
        try Self.check(built, parameters: byName)
        groups = built
        parameters = byName
        self.communicator = communicator
        let prunable = built.filter(\.prunable)
        elementCounts = [:]
        for slice in prunable.flatMap(\.slices) { elementCounts[slice.parameter] = byName[slice.parameter]!.value.count }
        // Counted: kernels and biases of the layers (scopes) holding a prunable slice.
        let layers = Set(prunable.flatMap(\.slices).map { Self.layerScope(of: $0.parameter) })
        let counted = byName.values.filter {
            ($0.role == .weight || $0.role == .bias) && layers.contains(Self.layerScope(of: $0.name))
        }
        prunableParameterCount = counted.reduce(0) { $0 + $1.value.count }
        importance = Dictionary(uniqueKeysWithValues: prunable.map { ($0.id, [Float](repeating: 0, count: $0.channels)) })
        keep = Dictionary(uniqueKeysWithValues: prunable.map { ($0.id, [Bool](repeating: true, count: $0.channels)) })
        scoredSlices = Dictionary(uniqueKeysWithValues: prunable.map {
            ($0.id, TaylorImportance.scoredSlices(of: $0, parameters: byName))
        })
        importanceInitialized = false
        importanceUpdates = 0
        progress = TrialProgress()
        elements = PrunedElements(elementCounts: elementCounts, counted: Set(counted.map(\.name)))
        masks = ElementMasks()
    }

    /// Chief: updates the importance EMA. At a trial step, every rank: the chief selects and
    /// broadcasts, all adopt the decoded decision (`MaskCompressor.decideOnSchedule`).
    ///
    /// - Throws: `PrunerError.notPrepared`; the channel's `CollectiveError`/`PayloadError`;
    ///   `PrunerError.decisionMismatch` for a payload that does not fit the groups. Any throw
    ///   must end the job (`failJob`).
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

    /// Zeroes the pruned elements of `tensor` (parameter `parameter`'s value or an optimizer
    /// slot of the same shape) in one pass; a no-op for a parameter with nothing pruned.
    public func applyMasks(to tensor: inout Tensor, parameter: String) {
        applyElementMasks(to: &tensor, parameter: parameter)
    }

    package func observe() { updateImportance() }

    package func eventValues(trial: Int) -> [String: Double] {
        ["target_ratio": schedule.targetFraction(afterTrial: trial), "achieved_ratio": achievedRatio]
    }

    package func notPrepared(_ operation: String) -> Error { PrunerError.notPrepared(operation: operation) }

    /// I ← α·I + (1−α)·score for every prunable group (I ← score the first time).
    func updateImportance() {
        let alpha = Float(config.emaAlpha)
        for group in groups where group.prunable {
            let score = TaylorImportance.scores(channels: group.channels, slices: scoredSlices[group.id]!)
            if !importanceInitialized {
                importance[group.id] = score
            } else {
                importance[group.id] = zip(importance[group.id]!, score).map { alpha * $0 + (1 - alpha) * $1 }
            }
        }
        importanceInitialized = true
        importanceUpdates += 1
    }

    /// The chief's selection for `trial` — group id → keep mask over its channels — from the
    /// importance, keep flags and element counts as they are now (copies: training may go on).
    package func decision(trial: Int) -> @Sendable () -> [String: PayloadValue] {
        let prunable = prunableGroups, importance = importance, keep = keep, elements = elements
        let target = schedule.targetFraction(afterTrial: trial) * Double(prunableParameterCount)
        let local = config.pruneSortRange == .local, cost = config.sortCost
        let widths = ChannelWidths(multiple: config.channelMultiple, narrowMultiple: config.narrowChannelMultiple)
        return {
            var newKeep = keep, newElements = elements
            if local {
                ChannelSelection.local(groups: prunable, importance: importance, keep: &newKeep, elements: &newElements,
                                       target: target, widths: widths)
            } else {
                ChannelSelection.global(groups: prunable, importance: importance, keep: &newKeep, elements: &newElements,
                                        target: target, widths: widths, cost: cost)
            }
            return newKeep.mapValues { .mask(Mask($0)) }
        }
    }

    /// Adopts decoded decisions after checking they fit the prunable groups and only prune.
    package func adopt(_ payload: Payload) throws {
        let prunable = prunableGroups
        if let extra = payload.names.first(where: { keep[$0] == nil }) {
            throw PrunerError.decisionMismatch(group: extra, reason: "no prunable group has this id")
        }
        var received: [String: [Bool]] = [:]
        for group in prunable {
            guard let mask = payload.mask(named: group.id) else {
                throw PrunerError.decisionMismatch(group: group.id, reason: "no mask in the payload")
            }
            try Self.checkDecision(mask, group: group, current: keep[group.id]!)
            received[group.id] = mask.values
        }
        setKeep(received)
    }

    /// Replaces the keep flags and updates the element counts and masks. A decision only prunes
    /// (`adopt` checks it), so only the newly pruned channels' elements are touched, in place:
    /// the cost is that of the elements removed now, not of the model. Flags that keep a pruned
    /// channel again (a restore onto another state) rebuild everything.
    func setKeep(_ flags: [String: [Bool]]) {
        let groups = prunableGroups
        let onlyPrunes = groups.allSatisfy { group in
            guard let old = keep[group.id], let new = flags[group.id], old.count == new.count else { return false }
            return zip(old, new).allSatisfy { $1 ? $0 : true }
        }
        guard onlyPrunes else {
            keep = flags
            elements = PrunedElements(elementCounts: elementCounts, counted: elements.counted, groups: groups, keep: flags)
            masks = ElementMasks(elements.elementMasks())
            return
        }
        var patterns = masks.byParameter
        masks = ElementMasks()  // the patterns are now referenced once: updated in place
        for group in groups {
            let old = keep[group.id]!, new = flags[group.id]!
            for c in old.indices where old[c] && !new[c] { elements.prune(channel: c, of: group, patterns: &patterns) }
        }
        keep = flags
        masks = ElementMasks(patterns)
    }
}
