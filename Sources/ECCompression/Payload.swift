import ECTensor

/// The value of one named payload entry.
public enum PayloadValue: Equatable {
    /// A bit-packed Boolean mask (1 bit per element on the wire).
    case mask(Mask)
    /// A Float32 tensor (step sizes, scales, other state), sent as raw little-endian bit
    /// patterns: NaN payloads, signed zeros and infinities arrive unchanged.
    case floats(Tensor)

    /// The shape of the mask or tensor.
    public var shape: [Int] {
        switch self {
        case .mask(let mask): return mask.shape
        case .floats(let tensor): return tensor.shape
        }
    }
}

/// One named entry of a payload, e.g. `conv1/weight` → its pruning mask.
public struct PayloadEntry: Equatable {
    /// The parameter's scope path (`conv1/weight`); non-empty UTF-8, at most 65,535 bytes.
    public var name: String
    public var value: PayloadValue

    public init(name: String, value: PayloadValue) {
        self.name = name
        self.value = value
    }
}

/// A decoded, verified payload: its kind, the training step it belongs to, and its entries in
/// canonical order (sorted by the UTF-8 bytes of their names, which for ASCII scope paths is
/// `NamedTensors`' order).
///
/// `==` is bit-identity: `Tensor`'s equality compares bytes, so every rank of a broadcast can
/// check that it holds exactly the chief's decisions.
public struct Payload: Equatable {
    public let kind: PayloadKind
    /// The training step the decisions were made at.
    public let step: Int
    /// The entries in canonical order; names are unique.
    public let entries: [PayloadEntry]

    /// The entry names, in canonical order.
    public var names: [String] { entries.map(\.name) }

    /// The value named `name`, or `nil`.
    public subscript(name: String) -> PayloadValue? {
        entries.first(where: { $0.name == name })?.value
    }

    /// The mask named `name`, or `nil` if there is none (or the entry holds floats).
    public func mask(named name: String) -> Mask? {
        if case .mask(let mask)? = self[name] { return mask }
        return nil
    }

    /// The Float32 tensor named `name`, or `nil` if there is none (or the entry is a mask).
    public func floats(named name: String) -> Tensor? {
        if case .floats(let tensor)? = self[name] { return tensor }
        return nil
    }

    /// The entries of a name → value dictionary in canonical order.
    static func canonical(_ entries: [String: PayloadValue]) -> [PayloadEntry] {
        entries.map { PayloadEntry(name: $0.key, value: $0.value) }
            .sorted { $0.name.utf8.lexicographicallyPrecedes($1.name.utf8) }
    }
}
