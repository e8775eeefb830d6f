import ECNN
import Foundation

/// The sparsifier's `summary.json` section (schema in docs/formats.md).
struct SparsifierSummary: Encodable, Equatable {
    struct Layer: Encodable, Equatable {
        /// The kernel's parameter path (`conv1/weight`).
        let name: String
        let shape: [Int]
        /// Fraction of the kernel's elements that are zeroed.
        let sparsity: Double
        let blocks: Int
        let zeroBlocks: Int
        let zeroBlockFraction: Double

        enum CodingKeys: String, CodingKey {
            case name, shape, sparsity, blocks, zeroBlocks = "zero_blocks", zeroBlockFraction = "zero_block_fraction"
        }
    }

    let kind: String
    let targetSparseRatio: Double
    let sparseBlockShape: [Int]
    let pattern: String?
    let sortRange: String
    let achievedSparsity: Double
    let layers: [Layer]

    enum CodingKeys: String, CodingKey {
        case kind, targetSparseRatio = "target_sparse_ratio", sparseBlockShape = "sparse_block_shape", pattern
        case sortRange = "sort_range", achievedSparsity = "achieved_sparsity", layers
    }

    func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(kind, forKey: .kind)
        try c.encode(targetSparseRatio, forKey: .targetSparseRatio)
        try c.encode(sparseBlockShape, forKey: .sparseBlockShape)
        try c.encode(pattern, forKey: .pattern)  // null without a pattern (the key is always there)
        try c.encode(sortRange, forKey: .sortRange)
        try c.encode(achievedSparsity, forKey: .achievedSparsity)
        try c.encode(layers, forKey: .layers)
    }
}

extension Sparsifier {
    /// `{"kind": "sparsifier", "target_sparse_ratio", "sparse_block_shape", "pattern" (null or
    /// "N:M"), "sort_range", "achieved_sparsity" (zeroed / elements over every sparsified
    /// kernel), "layers": [{"name", "shape", "sparsity", "blocks", "zero_blocks",
    /// "zero_block_fraction"}]}`. With a pattern, blocks are single weights and
    /// `target_sparse_ratio` is the pattern's (M − N)/M.
    public func summarySection(model: Model) throws -> Data {
        try summaryJSON { summary() }
    }

    func summary() -> SparsifierSummary {
        let layers = kernels.map { k -> SparsifierSummary.Layer in
            let flags = keep[k.parameter]!
            let zeroBlocks = flags.reduce(0) { $0 + ($1 ? 0 : 1) }
            return SparsifierSummary.Layer(
                name: k.parameter, shape: k.shape,
                sparsity: Double(k.grid.zeroedElements(keep: flags)) / Double(k.grid.elementCount),
                blocks: flags.count, zeroBlocks: zeroBlocks, zeroBlockFraction: Double(zeroBlocks) / Double(flags.count))
        }
        return SparsifierSummary(kind: kind, targetSparseRatio: config.finalSparsity,
                                 sparseBlockShape: config.pattern == nil ? config.sparseBlockShape : [1, 1],
                                 pattern: config.pattern?.description, sortRange: config.sortRange.rawValue,
                                 achievedSparsity: achievedSparsity, layers: layers)
    }

    /// `kernel | shape | blocks | zero blocks | sparsity` per kernel, then the overall line.
    public func summaryRows(model: Model) -> [[String]] {
        let s = summary()
        var rows = [["kernel", "shape", "blocks", "zero blocks", "sparsity"]]
        rows += s.layers.map {
            [$0.name, $0.shape.map(String.init).joined(separator: "×"), "\($0.blocks)", "\($0.zeroBlocks)",
             String(format: "%.4f", $0.sparsity)]
        }
        let shape = s.pattern.map { "pattern \($0)" } ?? "blocks \(s.sparseBlockShape[0])×\(s.sparseBlockShape[1])"
        rows.append(["total (\(s.sortRange), \(shape))", "", "", "", String(format: "%.4f", s.achievedSparsity)])
        return rows
    }
}
