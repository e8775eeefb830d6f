import Foundation
import ECCheckpoint
import ECNN
import ECTensor

/// A bad block-sparse export file: each case names the file, the entry and what was expected.
public enum BlockSparseExportError: Error, Equatable, CustomStringConvertible {
    case metadata(file: String, reason: String)
    case missingEntry(file: String, entry: String)
    case entryMismatch(file: String, entry: String, reason: String)

    public var description: String {
        switch self {
        case let .metadata(file, reason): return "\(file): \(reason)"
        case let .missingEntry(file, entry): return "\(file): no entry '\(entry)'; hint: was it written by export --format bsr?"
        case let .entryMismatch(file, entry, reason): return "\(file): entry '\(entry)': \(reason)"
        }
    }
}

/// `easycompress export --format bsr`: a model's weights with every kernel that the engine runs
/// block-sparse (`SparseInference.runsBlockSparse`: ≥ `InferenceOptions.minimumZeroBlockFraction` zero [1, 16] blocks) stored as
/// a `BlockSparseMatrix`, the other parameters dense (safetensors; docs/formats.md):
///
/// - `<kernel>/bsr_column_pointers` I32 `[gridColumns + 1]`, `<kernel>/bsr_row_indices` I32
///   `[storedBlocks]`, `<kernel>/bsr_values` F32 `[storedBlocks, blockRows, blockColumns]`;
/// - metadata `format` = `easycompression-bsr`, `format_version` = 1, `bsr_kernels` = JSON
///   `{"<kernel>": {"shape": [...], "block": [1, 16]}}`.
public enum BlockSparseExport {
    public static let format = "easycompression-bsr"
    public static let formatVersion = 1

    struct KernelInfo: Codable, Equatable {
        let shape: [Int]
        let block: [Int]
    }

    /// Writes `model`'s weights; returns the kernels stored block-sparse with their zero-block fraction.
    @discardableResult
    public static func write(model: Model, to url: URL) throws -> [(kernel: String, zeroBlockFraction: Double)] {
        var entries: [String: SafeTensorsEntry] = [:]
        var info: [String: KernelInfo] = [:]
        var sparse: [(String, Double)] = []
        for p in model.parameters {
            guard p.role == .weight, SparseInference.runsBlockSparse(p.value) else {
                entries[p.name] = SafeTensorsEntry(p.value)
                continue
            }
            let (br, bc) = SparseInference.blockShape
            let m = BlockSparseMatrix(dense: p.value, blockRows: br, blockColumns: bc)
            entries["\(p.name)/bsr_column_pointers"] = SafeTensorsEntry(shape: [m.columnPointers.count], values: m.columnPointers)
            entries["\(p.name)/bsr_row_indices"] = SafeTensorsEntry(shape: [m.rowIndices.count], values: m.rowIndices)
            entries["\(p.name)/bsr_values"] = SafeTensorsEntry(shape: [m.storedBlocks, br, bc], values: m.values)
            info[p.name] = KernelInfo(shape: p.shape, block: [br, bc])
            sparse.append((p.name, SparseInference.zeroBlockFraction(p.value)))
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        try SafeTensors(entries: entries, metadata: [
            "format": format, "format_version": "\(formatVersion)",
            "bsr_kernels": String(decoding: try encoder.encode(info), as: UTF8.self),
        ]).write(to: url)
        return sparse
    }

    /// Reads a `write` file into `model` (same architecture): block-sparse kernels are expanded
    /// to the dense parameter (and the engine runs them block-sparse again in inference).
    ///
    /// - Throws: `BlockSparseExportError` for bad metadata, a missing entry, or an entry of the
    ///   wrong dtype, shape or structure; `CheckpointError` for an unreadable file.
    public static func load(from url: URL, into model: Model) throws {
        let file = url.path
        let st = try SafeTensors.read(from: url)
        guard st.metadata["format"] == format, st.metadata["format_version"] == "\(formatVersion)" else {
            throw BlockSparseExportError.metadata(file: file, reason: "format \(st.metadata["format"] ?? "missing") version "
                                                  + "\(st.metadata["format_version"] ?? "missing"), expected \(format) \(formatVersion)")
        }
        let info: [String: KernelInfo]
        do {
            info = try JSONDecoder().decode([String: KernelInfo].self, from: Data((st.metadata["bsr_kernels"] ?? "").utf8))
        } catch {
            throw BlockSparseExportError.metadata(file: file, reason: "bsr_kernels is missing or unreadable (\(error))")
        }
        func entry<S: SafeTensorsScalar>(_ name: String, _: S.Type, shape: [Int]?) throws -> [S] {
            guard let e = st[name] else { throw BlockSparseExportError.missingEntry(file: file, entry: name) }
            guard shape.map({ $0 == e.shape }) ?? true, let values = e.values(as: S.self) else {
                throw BlockSparseExportError.entryMismatch(file: file, entry: name, reason: "\(e.dtype.rawValue) \(e.shape), expected "
                                                           + "\(S.safeTensorsDType.rawValue) \(shape.map { "\($0)" } ?? "")")
            }
            return values
        }
        for p in model.parameters {
            guard let k = info[p.name] else {
                p.value = Tensor(shape: p.shape, scalars: try entry(p.name, Float.self, shape: p.shape))
                continue
            }
            guard k.shape == p.shape, k.block.count == 2, k.block.allSatisfy({ $0 > 0 }) else {
                throw BlockSparseExportError.entryMismatch(file: file, entry: p.name, reason: "kernel \(k.shape) by blocks \(k.block), "
                                                           + "the model expects \(p.shape)")
            }
            let n = p.shape.last!, rows = p.value.count / n
            let gridColumns = (n + k.block[1] - 1) / k.block[1], gridRows = (rows + k.block[0] - 1) / k.block[0]
            let pointers = try entry("\(p.name)/bsr_column_pointers", Int32.self, shape: [gridColumns + 1])
            let indices = try entry("\(p.name)/bsr_row_indices", Int32.self, shape: nil)
            let values = try entry("\(p.name)/bsr_values", Float.self, shape: [indices.count, k.block[0], k.block[1]])
            guard pointers.first == 0, Int(pointers.last!) == indices.count,
                  zip(pointers, pointers.dropFirst()).allSatisfy({ $0 <= $1 }),
                  indices.allSatisfy({ $0 >= 0 && Int($0) < gridRows }) else {
                throw BlockSparseExportError.entryMismatch(file: file, entry: "\(p.name)/bsr_*",
                                                           reason: "column pointers / row indices do not describe a [\(rows), \(n)] matrix")
            }
            let m = BlockSparseMatrix(rows: rows, columns: n, blockRows: k.block[0], blockColumns: k.block[1],
                                      columnPointers: pointers, rowIndices: indices, values: values)
            p.value = m.dense().reshaped(p.shape)
        }
    }
}
