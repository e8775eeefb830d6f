/// Where channels are ranked (the seed's `prune_sort_range`): across every prunable layer, or
/// within each layer.
///
/// An open set of strings rather than an enum so that a job file's value always decodes and
/// `PrunerConfig.validate()` can name a wrong one in its error.
public struct PruneSortRange: RawRepresentable, Hashable, Codable, Sendable, ExpressibleByStringLiteral {
    public let rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
    public init(stringLiteral value: String) { self.init(rawValue: value) }

    /// Rank all unpruned channels of all prunable groups together (the seed's default).
    public static let global: PruneSortRange = "global"
    /// Each group prunes the same fraction of its own channels.
    public static let local: PruneSortRange = "local"
    /// The values `validate()` accepts.
    public static let allowed: [PruneSortRange] = [.global, .local]
}

/// What the global sort divides a channel's importance by (`sort_cost`): the parameters its
/// removal saves (the seed's criterion, for `compression_ratio`'s unit) or the forward FLOPs.
/// An open set of strings, as `PruneSortRange`, so that `validate()` names a wrong value.
public struct PruneSortCost: RawRepresentable, Hashable, Codable, Sendable, ExpressibleByStringLiteral {
    public let rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
    public init(stringLiteral value: String) { self.init(rawValue: value) }

    /// Importance per parameter saved (the default).
    public static let params: PruneSortCost = "params"
    /// Importance per forward FLOP saved: channels of layers that compute much for their
    /// weights (early, high-resolution convolutions) go first, so the same parameter target
    /// removes more computation.
    public static let flops: PruneSortCost = "flops"
    /// The values `validate()` accepts.
    public static let allowed: [PruneSortCost] = [.params, .flops]
}

/// The pruner's settings (the seed's `PrunerConfig`, docs/pruning.md; seed keys in snake_case in job files,
/// camelCase here). Defaults are the seed's. Call `validate()` before use; `Pruner.init`
/// does.
///
/// The unit of `compressionRatio`: the fraction of the *prunable layers' parameters* removed in
/// the extracted (physically smaller) model. Prunable layers are the Conv2D / MatMul layers
/// that hold a slice of a prunable channel group — the producers of its channels and the
/// consumers whose input rows vanish with them (so the classifier counts, through its inputs);
/// their kernels and biases are counted, each element once even when both its input and its
/// output channel are pruned. See `Pruner` for the exact count.
public struct PrunerConfig: Codable, Equatable, Sendable {
    /// Target fraction pruned, in [0, 1) (unit above; 1 would remove everything). Default 0.
    public var compressionRatio: Double
    /// Training steps between two pruning operations, > 0. Default 1.
    public var stepInterval: Int
    /// Pruning operations to reach the target gradually (Zhu & Gupta 2017), > 0. Default 1.
    public var numTrials: Int
    /// Only these scopes are pruned; empty = all. Applied when the channel groups are built.
    public var includeScopes: [String]
    /// These scopes are never pruned; wins over `includeScopes`.
    public var excludeScopes: [String]
    /// `.global` (default) or `.local`.
    public var pruneSortRange: PruneSortRange
    /// Op types that may be pruned: any of `Conv2D`, `MatMul`. Default both.
    public var prunableOpTypes: [String]
    /// EMA factor of the importance, I ← α·I + (1−α)·score, in (0, 1]. Default 0.95.
    ///
    /// α = 1 is allowed: the EMA starts from the first score, so α = 1 freezes the importance
    /// at the first step's Taylor score — a meaningful (one-shot) criterion. α > 1 is refused:
    /// the weight 1 − α of each new score would be negative and the average would diverge.
    public var emaAlpha: Double
    /// Every pruned group keeps a multiple of this many channels, ≥ 1 (Torch-Pruning's
    /// `round_to`). Default 1: any count. Inference runtimes block channels by 8 or 16 (ONNX
    /// Runtime's NCHWc layout, the engine's 16-wide vectors): a layer of 6 or 27 channels can
    /// run slower than the 16 or 32 it came from, so pruning for speed wants 8 or 16. A group
    /// with fewer channels than the multiple (than `narrowChannelMultiple` when set) is kept
    /// whole. The target is then reached within one multiple's parameters instead of one
    /// channel's.
    public var channelMultiple: Int
    /// Below `channelMultiple` a group may keep a multiple of this instead (it must divide
    /// `channelMultiple`); nil (default): the same as `channelMultiple`. With 16 and 8 the
    /// allowed widths are 8, 16, 32, 48, …: ONNX Runtime's NCHWc convolutions on AVX-512 compute
    /// in blocks of 16 channels, so 24 costs what 32 does, while a layer narrower than one block
    /// reads its input directly and gains from 8. A group keeps at least this many channels.
    public var narrowChannelMultiple: Int?
    /// The global sort's cost: `.params` (default) ranks channels by importance per parameter
    /// saved, `.flops` by importance per forward FLOP saved (at the graph's spatial sizes).
    /// The target stays `compressionRatio` of the parameters either way; with `.flops` it is
    /// reached by removing more computation (the layers at high resolution) — what a runtime's
    /// speed follows. Ignored by the local sort, which prunes every group alike.
    public var sortCost: PruneSortCost

    /// The op types that have output channels to prune.
    public static let supportedOpTypes = ["Conv2D", "MatMul"]

    public init(compressionRatio: Double = 0, stepInterval: Int = 1, numTrials: Int = 1,
                includeScopes: [String] = [], excludeScopes: [String] = [],
                pruneSortRange: PruneSortRange = .global, prunableOpTypes: [String] = PrunerConfig.supportedOpTypes,
                emaAlpha: Double = 0.95, channelMultiple: Int = 1, narrowChannelMultiple: Int? = nil,
                sortCost: PruneSortCost = .params) {
        self.compressionRatio = compressionRatio
        self.stepInterval = stepInterval
        self.numTrials = numTrials
        self.includeScopes = includeScopes
        self.excludeScopes = excludeScopes
        self.pruneSortRange = pruneSortRange
        self.prunableOpTypes = prunableOpTypes
        self.emaAlpha = emaAlpha
        self.channelMultiple = channelMultiple
        self.narrowChannelMultiple = narrowChannelMultiple
        self.sortCost = sortCost
    }

    /// Checks every value; the first bad one throws.
    ///
    /// - Throws: `CompressionConfigError`, naming the seed key (`pruner.compression_ratio`), the
    ///   value and the allowed range.
    public func validate() throws {
        let ratio = compressionRatio
        guard ratio >= 0 && ratio <= 1 else {
            throw CompressionConfigError.outOfRange(key: "pruner.compression_ratio",
                                                    value: CompressionConfigError.format(ratio), allowed: "in [0, 1]")
        }
        guard ratio < 1 else {
            throw CompressionConfigError.meaningless(
                key: "pruner.compression_ratio", value: CompressionConfigError.format(ratio),
                reason: "that would remove every prunable parameter, which no model survives (the pruner keeps at "
                    + "least one channel per group, so it could never reach it); use a fraction below 1, e.g. 0.75")
        }
        guard stepInterval > 0 else {
            throw CompressionConfigError.outOfRange(key: "pruner.step_interval", value: String(stepInterval),
                                                    allowed: "> 0")
        }
        guard numTrials > 0 else {
            throw CompressionConfigError.outOfRange(key: "pruner.num_trials", value: String(numTrials), allowed: "> 0")
        }
        for (key, scopes) in [("pruner.include_scopes", includeScopes), ("pruner.exclude_scopes", excludeScopes)] {
            if let index = scopes.firstIndex(where: { $0.isEmpty }) {
                throw CompressionConfigError.emptyScope(key: key, index: index)
            }
        }
        guard PruneSortRange.allowed.contains(pruneSortRange) else {
            throw CompressionConfigError.notOneOf(key: "pruner.prune_sort_range", value: pruneSortRange.rawValue,
                                                  allowed: PruneSortRange.allowed.map(\.rawValue))
        }
        if let unknown = prunableOpTypes.first(where: { !Self.supportedOpTypes.contains($0) }) {
            throw CompressionConfigError.unknownOpType(key: "pruner.prunable_op_types", value: unknown,
                                                       allowed: Self.supportedOpTypes)
        }
        guard emaAlpha > 0 && emaAlpha <= 1 else {
            throw CompressionConfigError.outOfRange(key: "pruner.ema_alpha",
                                                    value: CompressionConfigError.format(emaAlpha), allowed: "in (0, 1]")
        }
        guard channelMultiple >= 1 && channelMultiple <= Self.maxChannelMultiple else {
            throw CompressionConfigError.outOfRange(key: "pruner.channel_multiple", value: String(channelMultiple),
                                                    allowed: "in [1, \(Self.maxChannelMultiple)]")
        }
        if let narrow = narrowChannelMultiple {
            guard narrow >= 1 && narrow <= channelMultiple else {
                throw CompressionConfigError.outOfRange(key: "pruner.narrow_channel_multiple", value: String(narrow),
                                                        allowed: "in [1, channel_multiple = \(channelMultiple)]")
            }
            guard channelMultiple % narrow == 0 else {
                throw CompressionConfigError.meaningless(
                    key: "pruner.narrow_channel_multiple", value: String(narrow),
                    reason: "it must divide channel_multiple (\(channelMultiple)), so that the widths below one "
                        + "multiple lead up to it; e.g. 8 with 16")
            }
        }
        guard PruneSortCost.allowed.contains(sortCost) else {
            throw CompressionConfigError.notOneOf(key: "pruner.sort_cost", value: sortCost.rawValue,
                                                  allowed: PruneSortCost.allowed.map(\.rawValue))
        }
    }

    /// The largest `channelMultiple` accepted (wider than any layer would mean "prune nothing").
    public static let maxChannelMultiple = 1024

    enum CodingKeys: String, CodingKey {
        case compressionRatio = "compression_ratio", stepInterval = "step_interval", numTrials = "num_trials"
        case includeScopes = "include_scopes", excludeScopes = "exclude_scopes"
        case pruneSortRange = "prune_sort_range", prunableOpTypes = "prunable_op_types", emaAlpha = "ema_alpha"
        case channelMultiple = "channel_multiple", narrowChannelMultiple = "narrow_channel_multiple"
        case sortCost = "sort_cost"
    }

    /// Decodes the seed's snake_case keys; a missing key takes its default. Values are not
    /// checked here: call `validate()`.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = PrunerConfig()
        compressionRatio = try c.decodeIfPresent(Double.self, forKey: .compressionRatio) ?? d.compressionRatio
        stepInterval = try c.decodeIfPresent(Int.self, forKey: .stepInterval) ?? d.stepInterval
        numTrials = try c.decodeIfPresent(Int.self, forKey: .numTrials) ?? d.numTrials
        includeScopes = try c.decodeIfPresent([String].self, forKey: .includeScopes) ?? d.includeScopes
        excludeScopes = try c.decodeIfPresent([String].self, forKey: .excludeScopes) ?? d.excludeScopes
        pruneSortRange = try c.decodeIfPresent(PruneSortRange.self, forKey: .pruneSortRange) ?? d.pruneSortRange
        prunableOpTypes = try c.decodeIfPresent([String].self, forKey: .prunableOpTypes) ?? d.prunableOpTypes
        emaAlpha = try c.decodeIfPresent(Double.self, forKey: .emaAlpha) ?? d.emaAlpha
        channelMultiple = try c.decodeIfPresent(Int.self, forKey: .channelMultiple) ?? d.channelMultiple
        narrowChannelMultiple = try c.decodeIfPresent(Int.self, forKey: .narrowChannelMultiple)
        sortCost = try c.decodeIfPresent(PruneSortCost.self, forKey: .sortCost) ?? d.sortCost
    }
}
