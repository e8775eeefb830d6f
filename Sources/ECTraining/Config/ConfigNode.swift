import Foundation
import Yams

/// A mapping from a YAML/JSON config file, read key by key with validation. Every key read is
/// remembered, so `finish()` can reject the ones nobody asked for (a misspelt key is an error,
/// never silently ignored).
public final class ConfigNode {
    /// Dotted path of this mapping (`""` for the root, `compression.pruner`, …).
    public let path: String
    private let values: [String: Any]
    private var read: Set<String> = []

    public init(path: String = "", values: [String: Any]) {
        self.path = path
        self.values = values
    }

    /// Parses YAML (JSON is accepted as the YAML subset it is) into a root node.
    public static func parse(_ text: String, file: String) throws -> ConfigNode {
        let object: Any?
        do {
            object = try Yams.load(yaml: text)
        } catch {
            throw ConfigError.unreadable(file: file, reason: "not valid YAML/JSON: \(error)")
        }
        guard let map = object as? [String: Any] else {
            throw ConfigError.unreadable(file: file, reason: "the top level must be a mapping of keys to values")
        }
        return ConfigNode(values: map)
    }

    /// Reads and parses a config file.
    public static func load(file: String) throws -> ConfigNode {
        guard let data = FileManager.default.contents(atPath: file) else {
            throw ConfigError.unreadable(file: file, reason: "no such file or not readable")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw ConfigError.unreadable(file: file, reason: "not UTF-8 text")
        }
        return try parse(text, file: file)
    }

    public var keys: [String] { values.keys.sorted() }
    public func has(_ key: String) -> Bool { values[key] != nil && !(values[key] is NSNull) }
    func keyPath(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    private func raw(_ key: String) -> Any? {
        read.insert(key)
        guard let v = values[key], !(v is NSNull) else { return nil }
        return v
    }

    /// +1 or −1 when `v` is a whole number beyond `Int`'s range (digits YAML left as a string,
    /// or an integral float of 1e15 or more), else nil.
    private static func integerBeyondRange(_ v: Any) -> Int? {
        if let d = v as? Double, d.isFinite, d == d.rounded(), abs(d) >= 1e15 { return d < 0 ? -1 : 1 }
        guard let s = v as? String else { return nil }
        var digits = Substring(s.trimmingCharacters(in: .whitespaces))
        var sign = 1
        if let first = digits.first, first == "-" || first == "+" {
            sign = first == "-" ? -1 : 1
            digits = digits.dropFirst()
        }
        digits = Substring(digits.replacingOccurrences(of: "_", with: ""))
        guard !digits.isEmpty, digits.allSatisfy(\.isASCII), digits.allSatisfy(\.isNumber), Int(s) == nil else { return nil }
        return sign
    }

    /// A number as the file wrote it (no quotes for digits YAML kept as a string).
    private static func literal(_ v: Any) -> String {
        if let s = v as? String { return s }
        return "\(v)"
    }

    private static func describe(_ v: Any) -> String {
        if let s = v as? String { return "\"\(s)\"" }
        if v is [Any] { return "a list" }
        if v is [String: Any] { return "a mapping" }
        return "\(v)"
    }

    // MARK: typed readers

    public func int(_ key: String, default def: Int? = nil, min lo: Int? = nil, max hi: Int? = nil) throws -> Int {
        guard let v = raw(key) else {
            if let def { return def }
            throw ConfigError.missingKey(path: keyPath(key))
        }
        let n: Int
        if let i = v as? Int { n = i }
        else if let d = v as? Double, d == d.rounded(), abs(d) < 1e15 { n = Int(d) }
        else if let sign = Self.integerBeyondRange(v) {
            // A whole number Int cannot hold (YAML reads it as a string or a float): say so, with
            // the key's own bounds when it has them.
            if let lo, let hi {
                throw ConfigError.outOfRange(path: keyPath(key), value: Self.literal(v),
                                             allowed: rangeText(Double(lo), Double(hi), integer: true, exclusive: false))
            }
            let bound = sign < 0 ? "small (at least \(lo ?? Int.min))" : "large (at most \(hi ?? Int.max))"
            throw ConfigError.invalid(path: keyPath(key), reason: "\(Self.literal(v)) is too \(bound)")
        }
        else { throw ConfigError.wrongType(path: keyPath(key), expected: "an integer", got: Self.describe(v)) }
        try check(key, Double(n), "\(n)", lo.map(Double.init), hi.map(Double.init), integer: true)
        return n
    }

    public func optionalInt(_ key: String, min lo: Int? = nil, max hi: Int? = nil) throws -> Int? {
        has(key) ? try int(key, min: lo, max: hi) : { read.insert(key); return nil }()
    }

    /// A number; `exclusiveMin` makes the lower bound strict (`> lo` instead of `≥ lo`).
    public func double(_ key: String, default def: Double? = nil, min lo: Double? = nil, max hi: Double? = nil,
                       exclusiveMin: Bool = false) throws -> Double {
        guard let v = raw(key) else {
            if let def { return def }
            throw ConfigError.missingKey(path: keyPath(key))
        }
        let d: Double
        if let x = v as? Double { d = x }
        else if let i = v as? Int { d = Double(i) }
        else { throw ConfigError.wrongType(path: keyPath(key), expected: "a number", got: Self.describe(v)) }
        guard d.isFinite else {
            throw ConfigError.outOfRange(path: keyPath(key), value: "\(d)", allowed: "a finite number")
        }
        if exclusiveMin, let lo, d <= lo {
            throw ConfigError.outOfRange(path: keyPath(key), value: Self.format(d), allowed: rangeText(lo, hi, integer: false, exclusive: true))
        }
        try check(key, d, Self.format(d), lo, hi, integer: false, exclusive: exclusiveMin)
        return d
    }

    public func bool(_ key: String, default def: Bool? = nil) throws -> Bool {
        guard let v = raw(key) else {
            if let def { return def }
            throw ConfigError.missingKey(path: keyPath(key))
        }
        guard let b = v as? Bool else {
            throw ConfigError.wrongType(path: keyPath(key), expected: "true or false", got: Self.describe(v))
        }
        return b
    }

    public func string(_ key: String, default def: String? = nil, allowed: [String]? = nil) throws -> String {
        guard let v = raw(key) else {
            if let def { return def }
            throw ConfigError.missingKey(path: keyPath(key))
        }
        guard let s = v as? String else {
            throw ConfigError.wrongType(path: keyPath(key), expected: "a string", got: Self.describe(v))
        }
        if let allowed, !allowed.contains(s) {
            throw ConfigError.outOfRange(path: keyPath(key), value: "\"\(s)\"",
                                         allowed: "one of " + allowed.map { "\"\($0)\"" }.joined(separator: ", "))
        }
        return s
    }

    public func optionalString(_ key: String) throws -> String? {
        has(key) ? try string(key) : { read.insert(key); return nil }()
    }

    public func stringList(_ key: String, default def: [String] = []) throws -> [String] {
        try list(key, of: "a string") ?? def
    }

    public func intList(_ key: String) throws -> [Int]? {
        try list(key, of: "an integer")
    }

    /// A number or a non-empty list of numbers (`0.5` or `[0.49, 0.48, 0.45]`), each finite and
    /// `≥ lo` (`> lo` with `exclusiveMin`); nil when absent. Errors name the item (`std[1]`).
    public func numbers(_ key: String, min lo: Double? = nil, exclusiveMin: Bool = false) throws -> [Double]? {
        guard let v = raw(key) else { return nil }
        let items: [(path: String, value: Any)]
        if let list = v as? [Any] {
            guard !list.isEmpty else {
                throw ConfigError.wrongType(path: keyPath(key), expected: "a number or a non-empty list of numbers", got: "an empty list")
            }
            items = list.enumerated().map { ("\(keyPath(key))[\($0.offset)]", $0.element) }
        } else {
            items = [(keyPath(key), v)]
        }
        return try items.map { path, item in
            let d: Double
            if let x = item as? Double { d = x }
            else if let i = item as? Int { d = Double(i) }
            else { throw ConfigError.wrongType(path: path, expected: "a number or a list of numbers", got: Self.describe(item)) }
            guard d.isFinite else { throw ConfigError.outOfRange(path: path, value: "\(d)", allowed: "a finite number") }
            if let lo, exclusiveMin ? d <= lo : d < lo {
                throw ConfigError.outOfRange(path: path, value: Self.format(d),
                                             allowed: exclusiveMin ? "> \(Self.format(lo))" : "≥ \(Self.format(lo))")
            }
            return d
        }
    }

    /// A list whose items are all `T` (`what` names one in errors); nil when absent.
    private func list<T>(_ key: String, of what: String) throws -> [T]? {
        guard let v = raw(key) else { return nil }
        guard let items = v as? [Any] else {
            throw ConfigError.wrongType(path: keyPath(key), expected: "a list of items each \(what)", got: Self.describe(v))
        }
        return try items.enumerated().map { i, item in
            guard let typed = item as? T else {
                throw ConfigError.wrongType(path: "\(keyPath(key))[\(i)]", expected: what, got: Self.describe(item))
            }
            return typed
        }
    }

    /// A nested mapping, or nil when the key is absent.
    public func child(_ key: String) throws -> ConfigNode? {
        guard let v = raw(key) else { return nil }
        guard let map = v as? [String: Any] else {
            throw ConfigError.wrongType(path: keyPath(key), expected: "a mapping", got: Self.describe(v))
        }
        return ConfigNode(path: keyPath(key), values: map)
    }

    /// Rejects any key that was never read, suggesting the closest known key.
    public func finish(known extra: [String] = []) throws {
        for key in keys where !read.contains(key) {
            let candidates = Array(read) + extra
            throw ConfigError.unknownKey(path: keyPath(key), suggestion: Self.closest(to: key, in: candidates).map(keyPath))
        }
    }

    /// The plain value tree of this node (for recording the config in summaries).
    public var plainValues: [String: Any] { values }

    // MARK: helpers

    private func check(_ key: String, _ v: Double, _ text: String, _ lo: Double?, _ hi: Double?,
                       integer: Bool, exclusive: Bool = false) throws {
        if (lo.map { v < $0 } ?? false) || (hi.map { v > $0 } ?? false) {
            throw ConfigError.outOfRange(path: keyPath(key), value: text,
                                         allowed: rangeText(lo, hi, integer: integer, exclusive: exclusive))
        }
    }

    private func rangeText(_ lo: Double?, _ hi: Double?, integer: Bool, exclusive: Bool) -> String {
        let f: (Double) -> String = { integer ? "\(Int($0))" : Self.format($0) }
        switch (lo, hi) {
        case let (l?, h?): return exclusive ? "in (\(f(l)), \(f(h))]" : "in [\(f(l)), \(f(h))]"
        case let (l?, nil): return exclusive ? "> \(f(l))" : "≥ \(f(l))"
        case let (nil, h?): return "≤ \(f(h))"
        default: return "valid"
        }
    }

    static func format(_ d: Double) -> String {
        d == d.rounded() && abs(d) < 1e15 ? String(Int(d)) : String(d)
    }

    /// The candidate within edit distance ⌈len/3⌉ of `key`, if any (Levenshtein): the "did you
    /// mean" of config keys and of the CLI's subcommands.
    public static func closest(to key: String, in candidates: [String]) -> String? {
        let limit = max(2, (key.count + 2) / 3)
        var best: (name: String, distance: Int)?
        for c in candidates.sorted() {
            let d = editDistance(key, c)
            if d <= limit, d < (best?.distance ?? Int.max) { best = (c, d) }
        }
        return best?.name
    }

    static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        if a.isEmpty { return b.count }
        var prev = Array(0...b.count), cur = [Int](repeating: 0, count: b.count + 1)
        for i in 1...a.count {
            cur[0] = i
            for j in 1...max(b.count, 1) where j <= b.count {
                cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            swap(&prev, &cur)
        }
        return prev[b.count]
    }
}
