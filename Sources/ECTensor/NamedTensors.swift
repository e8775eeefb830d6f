/// Tensors keyed by scope path (`conv1/weight`), always iterated in one canonical order —
/// sorted by name — so every rank, checkpoint and report agrees on the order by construction.
public struct NamedTensors: Equatable {
    public private(set) var storage: [String: Tensor] = [:]

    public init() {}
    public init(_ pairs: [(String, Tensor)]) {
        for (k, v) in pairs { storage[k] = v }
    }

    public subscript(name: String) -> Tensor? {
        get { storage[name] }
        set { storage[name] = newValue }
    }

    /// Names in canonical (sorted) order.
    public var names: [String] { storage.keys.sorted() }
    public var count: Int { storage.count }
    public var isEmpty: Bool { storage.isEmpty }

    /// `(name, tensor)` pairs in canonical order.
    public var sorted: [(name: String, tensor: Tensor)] { names.map { ($0, storage[$0]!) } }

    /// Total number of elements.
    public var elementCount: Int { storage.values.reduce(0) { $0 + $1.count } }
}
