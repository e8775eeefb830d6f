/// What a compression payload carries; written in the header as a little-endian `u16`.
///
/// A receiver states the kind it expects (`PayloadCodec.decode(_:expectedKind:expectedStep:)`),
/// so a payload of one kind can never be taken for another. Raw values are part of the wire
/// format (docs/payload-format.md): never renumber a case, only add new ones.
public enum PayloadKind: UInt16, CaseIterable, Sendable, CustomStringConvertible {
    /// Pruning / sparsity masks, one bit-packed `Mask` per parameter.
    case masks = 1
    /// Quantizer step sizes (LSQ scales, Esser et al. 2020), Float32 tensors.
    case scales = 2
    /// Other compressor state the chief owns (e.g. importance EMAs for a resumed job).
    case state = 3

    public var description: String {
        switch self {
        case .masks: return "masks"
        case .scales: return "scales"
        case .state: return "state"
        }
    }

    /// `"1 (masks)"`, or `"7 (unknown)"` for a raw value no case has: how errors name a kind.
    static func describe(raw: UInt16) -> String {
        "\(raw) (\(PayloadKind(rawValue: raw)?.description ?? "unknown"))"
    }
}
