extension ChannelSlice {
    /// Calls `body` with each contiguous run of elements of group channel `c` in a parameter of
    /// `elementCount` elements: the runs `(q·period + offset + c)·innerStride ..< +innerStride`
    /// for q = 0, 1, … (the rule `channel(ofElement: e) == c`, without a division per element).
    ///
    /// - Precondition: `elementCount` is a multiple of `period · innerStride` (checked for every
    ///   slice by `Pruner.prepare`).
    @inline(__always)
    func forEachRun(ofChannel c: Int, elementCount: Int, _ body: (Range<Int>) -> Void) {
        let block = period * innerStride
        for a in axisChannels(of: c) {
            var start = a * innerStride
            while start < elementCount {
                body(start..<(start + innerStride))
                start += block
            }
        }
    }
}

/// Which elements of which parameters the pruned channels remove, counted exactly: an element
/// that several pruned channels cover (a kernel element whose input *and* output channel are
/// pruned) is removed — and counted — once.
struct PrunedElements {
    /// Per tracked parameter, one flag per element: `true` = kept.
    private(set) var kept: [String: [Bool]]
    /// Per tracked parameter, the number of removed elements.
    private(set) var removed: [String: Int]
    /// The parameters whose removed elements count toward `removedCounted` (the prunable layers'
    /// kernels and biases).
    let counted: Set<String>
    /// Removed elements over the `counted` parameters.
    private(set) var removedCounted = 0

    /// Nothing removed yet.
    ///
    /// - Parameter elementCounts: every parameter a slice of a prunable group lies in, with its
    ///   element count.
    init(elementCounts: [String: Int], counted: Set<String>) {
        kept = elementCounts.mapValues { [Bool](repeating: true, count: $0) }
        removed = elementCounts.mapValues { _ in 0 }
        self.counted = counted
    }

    /// The state after pruning the channels `keep` marks `false` in `groups`.
    init(elementCounts: [String: Int], counted: Set<String>, groups: [ChannelGroup], keep: [String: [Bool]]) {
        self.init(elementCounts: elementCounts, counted: counted)
        for group in groups {
            guard let flags = keep[group.id] else { continue }
            for (c, isKept) in flags.enumerated() where !isKept { prune(channel: c, of: group) }
        }
    }

    /// Removes every element of channel `c` in each slice of `group`; returns how many counted
    /// elements this removed that were still there.
    @discardableResult
    mutating func prune(channel c: Int, of group: ChannelGroup) -> Int {
        var none: [String: [UInt32]]? = nil
        return prune(channel: c, of: group, patterns: &none)
    }

    /// `prune(channel:of:)`, also clearing the removed elements in `patterns` (per parameter,
    /// the AND pattern of `elementMasks()`; a parameter without one gets one), in place.
    @discardableResult
    mutating func prune(channel c: Int, of group: ChannelGroup, patterns: inout [String: [UInt32]]) -> Int {
        var some: [String: [UInt32]]? = patterns
        patterns = [:]  // `some` holds the only reference: updated in place
        defer { patterns = some! }
        return prune(channel: c, of: group, patterns: &some)
    }

    private mutating func prune(channel c: Int, of group: ChannelGroup, patterns: inout [String: [UInt32]]?) -> Int {
        var newlyCounted = 0
        for slice in group.slices {
            guard var flags = kept.removeValue(forKey: slice.parameter) else {
                preconditionFailure("\(slice.parameter) is not a tracked parameter")
            }
            var pattern = patterns?.removeValue(forKey: slice.parameter) ?? []
            if patterns != nil, pattern.isEmpty { pattern = [UInt32](repeating: .max, count: flags.count) }
            var newly = 0
            flags.withUnsafeMutableBufferPointer { f in
                pattern.withUnsafeMutableBufferPointer { m in
                    let marking = m.count == f.count
                    let stride = slice.innerStride, block = slice.period * stride
                    for a in slice.axisChannels(of: c) {
                        var start = a * stride
                        while start < f.count {
                            for e in start..<(start + stride) where f[e] {
                                f[e] = false
                                if marking { m[e] = 0 }
                                newly += 1
                            }
                            start += block
                        }
                    }
                }
            }
            kept[slice.parameter] = flags
            if patterns != nil { patterns![slice.parameter] = pattern }
            removed[slice.parameter, default: 0] += newly
            if counted.contains(slice.parameter) { newlyCounted += newly }
        }
        removedCounted += newlyCounted
        return newlyCounted
    }

    /// Per parameter with at least one removed element, the mask of its elements as bit
    /// patterns (`0xFFFF_FFFF` kept, `0` removed), ready to AND into Float storage.
    func elementMasks() -> [String: [UInt32]] {
        var masks: [String: [UInt32]] = [:]
        for (name, flags) in kept where removed[name, default: 0] > 0 {
            masks[name] = flags.map { $0 ? UInt32.max : 0 }
        }
        return masks
    }
}
