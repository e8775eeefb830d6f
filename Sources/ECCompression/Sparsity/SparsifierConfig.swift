import Foundation

/// Where blocks are ranked (the seed's `sort_range`): within each layer, or across layers.
///
/// An open set of strings rather than an enum so that a job file's value always decodes and
/// `SparsifierConfig.validate()` can name a wrong one in its error.
public struct SparseSortRange: RawRepresentable, Hashable, Codable, Sendable, ExpressibleByStringLiteral {
    public let rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
    public init(stringLiteral value: String) { self.init(rawValue: value) }

    /// Every layer reaches the target fraction of its own weights (the seed's default).
    public static let local: SparseSortRange = "local"
    /// The blocks of all layers are ranked together; the target holds over all of them.
    public static let global: SparseSortRange = "global"
    /// The values `validate()` accepts.
    public static let allowed: [SparseSortRange] = [.local, .global]
}

/// An N:M pattern (our addition, `pattern: "2:4"`): in every group of M consecutive weights
/// along a kernel's input axis (one output column), at most N are non-zero.
public struct NMPattern: Hashable, Codable, Sendable, CustomStringConvertible {
    /// Weights kept per group.
    public let n: Int
    /// Group length.
    public let m: Int

    /// - Precondition: 0 < n < m (checked with a clear error by `init(parsing:)`).
    public init(n: Int, m: Int) {
        precondition(n > 0 && n < m, "N:M pattern needs 0 < N < M, got \(n):\(m)")
        self.n = n
        self.m = m
    }

    /// Reads `"N:M"`; nil when the text is not two integers with 0 < N < M ≤ 64.
    public init?(parsing text: String) {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, let n = Int(parts[0]), let m = Int(parts[1]), n > 0, n < m, m <= Self.maxGroup else {
            return nil
        }
        self.init(n: n, m: m)
    }

    /// The largest group length accepted.
    public static let maxGroup = 64

    /// The sparsity of a full group, (M − N) / M.
    public var sparsity: Double { Double(m - n) / Double(m) }

    public var description: String { "\(n):\(m)" }

    public init(from decoder: Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let p = NMPattern(parsing: text) else {
            throw CompressionConfigError.outOfRange(key: "sparsifier.pattern", value: "\"\(text)\"",
                                                    allowed: NMPattern.allowedText)
        }
        self = p
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }

    /// What `pattern` accepts, for error messages.
    public static let allowedText = "\"N:M\" with integers 0 < N < M ≤ \(maxGroup) (e.g. \"2:4\")"
}

/// The sparsifier's settings (the seed's `SparsifierConfig`, docs/sparsity.md; seed keys in snake_case in job files,
/// camelCase here). Defaults are the seed's; `pattern` is our addition. Call `validate()`
/// before use; `Sparsifier.init` does.
///
/// Every Conv2D / MatMul kernel inside the scopes is seen as a matrix `[inputs, outputs]`
/// (a Conv2D kernel HWIO `[kh, kw, cin, cout]` as `[kh·kw·cin, cout]`) and tiled by
/// `sparseBlockShape` `[rows, columns]` = `[inputs, outputs]` per block; a block is zeroed or
/// kept whole. Edge blocks may be partial (see `BlockGrid`).
public struct SparsifierConfig: Codable, Equatable, Sendable {
    /// Target fraction of zero weights, in [0, 1) (1 would zero everything): per layer (`local`) or over all sparsified
    /// layers (`global`). Default 0.6. Not used with `pattern` (whose sparsity is (M − N)/M).
    public var targetSparseRatio: Double
    /// Block shape `[inputs, outputs]`, both > 0. Default `[1, 1]` (single weights).
    public var sparseBlockShape: [Int]
    /// Training steps between two sparsification operations, > 0. Default 1000.
    public var stepInterval: Int
    /// Operations to reach the target gradually (Zhu & Gupta 2017), > 0. Default 10.
    public var numTrials: Int
    /// Only kernels under these scopes are sparsified; empty = all.
    public var includeScopes: [String]
    /// Kernels under these scopes are never sparsified; wins over `includeScopes`.
    public var excludeScopes: [String]
    /// `.local` (default) or `.global`.
    public var sortRange: SparseSortRange
    /// An N:M pattern instead of blocks (our addition). Default none. With a pattern the target
    /// is the pattern's (M − N)/M and `targetSparseRatio` / `sparseBlockShape` are not used (a
    /// job file that gives them together with `pattern` is refused).
    public var pattern: NMPattern?

    /// The op types whose kernels are sparsified.
    public static let sparsifiableOpTypes = ["Conv2D", "MatMul"]

    public init(targetSparseRatio: Double = 0.6, sparseBlockShape: [Int] = [1, 1], stepInterval: Int = 1000,
                numTrials: Int = 10, includeScopes: [String] = [], excludeScopes: [String] = [],
                sortRange: SparseSortRange = .local, pattern: NMPattern? = nil) {
        self.targetSparseRatio = targetSparseRatio
        self.sparseBlockShape = sparseBlockShape
        self.stepInterval = stepInterval
        self.numTrials = numTrials
        self.includeScopes = includeScopes
        self.excludeScopes = excludeScopes
        self.sortRange = sortRange
        self.pattern = pattern
    }

    /// The scope filter of `includeScopes` / `excludeScopes`.
    public var scopes: ScopeFilter { ScopeFilter(include: includeScopes, exclude: excludeScopes) }

    /// The final sparsity the schedule reaches: `targetSparseRatio`, or (M − N)/M with a pattern.
    public var finalSparsity: Double { pattern?.sparsity ?? targetSparseRatio }

    /// Checks every value; the first bad one throws.
    ///
    /// - Throws: `CompressionConfigError`, naming the seed key (`sparsifier.target_sparse_ratio`),
    ///   the value and the allowed range.
    public func validate() throws {
        let ratio = targetSparseRatio
        guard ratio >= 0 && ratio <= 1 else {
            throw CompressionConfigError.outOfRange(key: "sparsifier.target_sparse_ratio",
                                                    value: CompressionConfigError.format(ratio), allowed: "in [0, 1]")
        }
        guard ratio < 1 || pattern != nil else {
            throw CompressionConfigError.meaningless(
                key: "sparsifier.target_sparse_ratio", value: CompressionConfigError.format(ratio),
                reason: "that would zero every weight of the sparsified kernels; use a fraction below 1, e.g. 0.9")
        }
        guard sparseBlockShape.count == 2 else {
            throw CompressionConfigError.outOfRange(key: "sparsifier.sparse_block_shape", value: "\(sparseBlockShape)",
                                                    allowed: "two integers [rows, columns]")
        }
        if let bad = sparseBlockShape.first(where: { $0 <= 0 }) {
            throw CompressionConfigError.outOfRange(key: "sparsifier.sparse_block_shape", value: "\(sparseBlockShape)",
                                                    allowed: "> 0 in both dimensions (found \(bad))")
        }
        guard stepInterval > 0 else {
            throw CompressionConfigError.outOfRange(key: "sparsifier.step_interval", value: String(stepInterval),
                                                    allowed: "> 0")
        }
        guard numTrials > 0 else {
            throw CompressionConfigError.outOfRange(key: "sparsifier.num_trials", value: String(numTrials), allowed: "> 0")
        }
        for (key, scopes) in [("sparsifier.include_scopes", includeScopes), ("sparsifier.exclude_scopes", excludeScopes)] {
            // "" and "/" (empty once its slashes go) would match every layer.
            if let index = scopes.firstIndex(where: { $0.trimmingCharacters(in: CharacterSet(charactersIn: "/")).isEmpty }) {
                throw CompressionConfigError.emptyScope(key: key, index: index)
            }
        }
        if let pattern, !(pattern.n > 0 && pattern.n < pattern.m && pattern.m <= NMPattern.maxGroup) {
            throw CompressionConfigError.outOfRange(key: "sparsifier.pattern", value: "\"\(pattern)\"", allowed: NMPattern.allowedText)
        }
        guard SparseSortRange.allowed.contains(sortRange) else {
            throw CompressionConfigError.notOneOf(key: "sparsifier.sort_range", value: sortRange.rawValue,
                                                  allowed: SparseSortRange.allowed.map(\.rawValue))
        }
        if pattern != nil && sparseBlockShape != [1, 1] {
            throw CompressionConfigError.outOfRange(key: "sparsifier.sparse_block_shape", value: "\(sparseBlockShape)",
                                                    allowed: "[1, 1] with a pattern (N:M groups are of single weights)")
        }
    }

    enum CodingKeys: String, CodingKey {
        case targetSparseRatio = "target_sparse_ratio", sparseBlockShape = "sparse_block_shape"
        case stepInterval = "step_interval", numTrials = "num_trials"
        case includeScopes = "include_scopes", excludeScopes = "exclude_scopes", sortRange = "sort_range", pattern
    }

    /// Decodes the seed's snake_case keys; a missing key takes its default. Values are not
    /// checked here: call `validate()`.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = SparsifierConfig()
        targetSparseRatio = try c.decodeIfPresent(Double.self, forKey: .targetSparseRatio) ?? d.targetSparseRatio
        sparseBlockShape = try c.decodeIfPresent([Int].self, forKey: .sparseBlockShape) ?? d.sparseBlockShape
        stepInterval = try c.decodeIfPresent(Int.self, forKey: .stepInterval) ?? d.stepInterval
        numTrials = try c.decodeIfPresent(Int.self, forKey: .numTrials) ?? d.numTrials
        includeScopes = try c.decodeIfPresent([String].self, forKey: .includeScopes) ?? d.includeScopes
        excludeScopes = try c.decodeIfPresent([String].self, forKey: .excludeScopes) ?? d.excludeScopes
        sortRange = try c.decodeIfPresent(SparseSortRange.self, forKey: .sortRange) ?? d.sortRange
        pattern = try c.decodeIfPresent(NMPattern.self, forKey: .pattern)
    }
}
