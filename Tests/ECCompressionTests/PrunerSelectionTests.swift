@testable import ECCompression
import ECNN
import XCTest

/// Which channels the chief prunes: the unit, the global and local sorts, the constraints.
final class PrunerSelectionTests: XCTestCase {
    /// An element under both a pruned input and a pruned output channel is removed once.
    func testRemovedParametersAreCountedOnceWhereChannelsOverlap() throws {
        let pruner = try preparedPruner(PrunerConfig(), model: TinyNet.model(), groups: TinyNet.groups)
        XCTAssertEqual(pruner.prunableParameterCount, TinyNet.prunableParameters)
        pruner.setKeep(["conv1": [false, true, true, true], "conv2": [false] + Array(repeating: true, count: 5),
                        "fc1": Array(repeating: true, count: 5)])
        // 64 + 57, minus the 3×3 kernel taps of conv2 that are input 0 and output 0 at once.
        XCTAssertEqual(pruner.removedParameterCount, 64 + 57 - 9)
    }

    func testGlobalReachesTheTargetWithinOneChannelAndPrunesTheLeastImportant() throws {
        for ratio in [0.1, 0.3, 0.5, 0.7] {
            let pruner = try preparedPruner(PrunerConfig(compressionRatio: ratio), model: TinyNet.model(),
                                            groups: TinyNet.groups)
            let importance: [String: [Float]] = ["conv1": [4, 1, 3, 2], "conv2": [6, 2, 5, 1, 4, 3],
                                                 "fc1": [1, 5, 2, 4, 3]]
            try decide(pruner, trial: 1, importance: importance)
            let target = ratio * Double(TinyNet.prunableParameters)
            let removed = Double(pruner.removedParameterCount)
            XCTAssertGreaterThanOrEqual(removed, target, "ratio \(ratio)")
            XCTAssertLessThan(removed - 64, target, "overshoot of more than one channel (at most 64 parameters)")
            XCTAssertEqual(pruner.achievedRatio, removed / 405)
            for group in TinyNet.groups where group.prunable {
                let flags = try XCTUnwrap(pruner.keepFlags(group: group.id))
                let scores = importance[group.id]!
                let prunedMax = pruned(flags).map { scores[$0] }.max() ?? -1
                let keptMin = flags.indices.filter { flags[$0] }.map { scores[$0] }.min()!
                XCTAssertLessThan(prunedMax, keptMin, "\(group.id) at ratio \(ratio): \(flags)")
            }
        }
    }

    /// Layer `a` (8 channels) has raw scores a million times smaller than `b` (4 channels), the
    /// cost per channel is 5 parameters in both. Ranked raw, the six lowest channels are all
    /// in `a`; normalised by each layer's mean, the ranks interleave and both layers lose half.
    func testNormalisationMakesLayersOfDifferentScaleComparable() throws {
        let (model, groups) = parallelDenseNet([("a", 4, 8), ("b", 4, 4)])
        let importance: [String: [Float]] = ["a": (1...8).map { Float($0) * 1e-6 }, "b": [1, 2, 3, 4]]
        let raw = importance.flatMap { id, scores in scores.map { (id, $0) } }.sorted { $0.1 < $1.1 }
        XCTAssertEqual(Set(raw.prefix(6).map(\.0)), ["a"], "raw scores would prune layer a only")

        let pruner = try preparedPruner(PrunerConfig(compressionRatio: 0.5), model: model, groups: groups)
        try decide(pruner, trial: 1, importance: importance)
        // Normalised: a → k/4.5, b → k/2.5; lowest six: a0 .22, b0 .4, a1 .44, a2 .67, b1 .8, a3 .89.
        XCTAssertEqual(pruned(pruner.keepFlags(group: "a")), [0, 1, 2, 3])
        XCTAssertEqual(pruned(pruner.keepFlags(group: "b")), [0, 1])
        XCTAssertEqual(pruner.removedParameterCount, 30)
    }

    /// `sort_cost: flops`: of two groups alike but for their FLOPs per channel, the
    /// compute-heavy one loses its channels first (down to one); with the default cost they
    /// tie and alternate.
    func testFlopsCostPrunesTheComputeHeavyGroupFirst() {
        func group(_ id: String, flops: Int) -> ChannelGroup {
            ChannelGroup(id: id, channels: 4, slices: [ChannelSlice(parameter: "\(id)/weight", role: .producer, innerStride: 1, period: 4)],
                         producers: ["\(id)/weight"], prunable: true, parametersPerChannel: 10, flopsPerChannel: flops)
        }
        let groups = [group("a", flops: 1000), group("b", flops: 10)]
        let importance: [String: [Float]] = ["a": [1, 2, 3, 4], "b": [1, 2, 3, 4]]
        for (cost, a, b) in [(PruneSortCost.params, [0, 1], [0, 1]), (.flops, [0, 1, 2], [0])] {
            var keep = ["a": [Bool](repeating: true, count: 4), "b": [Bool](repeating: true, count: 4)]
            var elements = PrunedElements(elementCounts: ["a/weight": 40, "b/weight": 40], counted: ["a/weight", "b/weight"])
            ChannelSelection.global(groups: groups, importance: importance, keep: &keep, elements: &elements, target: 40, cost: cost)
            XCTAssertEqual(keep["a"]!.indices.filter { !keep["a"]![$0] }, a, "\(cost.rawValue)")
            XCTAssertEqual(keep["b"]!.indices.filter { !keep["b"]![$0] }, b, "\(cost.rawValue)")
            XCTAssertEqual(elements.removedCounted, 40)
        }
    }

    func testNormalisedScoresHaveMeanOneOverTheKeptChannels() {
        XCTAssertEqual(ChannelSelection.normalized([2, 4, 100, 6], keep: [true, true, false, true]), [0.5, 1, 25, 1.5])
        XCTAssertEqual(ChannelSelection.normalized([0, 0], keep: [true, true]), [0, 0])
    }

    func testLocalPrunesTheSameFractionOfEveryGroup() throws {
        let (model, groups) = parallelDenseNet([("a", 4, 8), ("b", 4, 4)])
        let importance: [String: [Float]] = ["a": [8, 7, 6, 5, 4, 3, 2, 1], "b": [1e-3, 4e-3, 2e-3, 3e-3]]
        for (ratio, expectedA, expectedB) in [(0.5, [4, 5, 6, 7], [0, 2]), (0.25, [6, 7], [0]), (0.2, [6, 7], [0])] {
            let pruner = try preparedPruner(PrunerConfig(compressionRatio: ratio, pruneSortRange: .local),
                                            model: model, groups: groups)
            try decide(pruner, trial: 1, importance: importance)
            XCTAssertEqual(pruned(pruner.keepFlags(group: "a")), expectedA, "ratio \(ratio)")
            XCTAssertEqual(pruned(pruner.keepFlags(group: "b")), expectedB, "ratio \(ratio)")
            XCTAssertGreaterThanOrEqual(Double(pruner.removedParameterCount), ratio * 60)
        }
    }

    func testEveryGroupKeepsAChannelAndNonPrunableGroupsAreUntouched() throws {
        for range in PruneSortRange.allowed {
            let model = TinyNet.model()
            let fc2Bias = model.parameter(named: "fc2/bias")!.value
            // 0.999: more than keeping one channel per group allows (1 itself is refused).
            let pruner = try preparedPruner(PrunerConfig(compressionRatio: 0.999, pruneSortRange: range),
                                            model: model, groups: TinyNet.groups)
            try decide(pruner, trial: 1, importance: ["conv1": [1, 2, 3, 4], "conv2": [1, 1, 1, 1, 1, 1],
                                                      "fc1": [0, 0, 0, 0, 0]])
            for (id, channels) in [("conv1", 4), ("conv2", 6), ("fc1", 5)] {
                XCTAssertEqual(pruned(pruner.keepFlags(group: id)).count, channels - 1, "\(id), \(range.rawValue)")
            }
            XCTAssertEqual(pruner.keepFlags(group: "conv1"), [false, false, false, true])
            XCTAssertNil(pruner.keepFlags(group: "fc2"))
            XCTAssertNil(pruner.masks.byParameter["fc2/bias"], "the classifier's outputs are never pruned")
            var bias = fc2Bias
            pruner.applyMasks(to: &bias, parameter: "fc2/bias")
            XCTAssertEqual(bias, fc2Bias)
        }
    }

    func testPruningIsMonotoneAcrossTrials() throws {
        let pruner = try preparedPruner(PrunerConfig(compressionRatio: 0.6, numTrials: 3), model: TinyNet.model(),
                                        groups: TinyNet.groups)
        var previous = pruner.removedParameterCount
        // Importance reversed between trials: what was pruned stays pruned anyway.
        let orders: [[String: [Float]]] = [
            ["conv1": [1, 2, 3, 4], "conv2": [1, 2, 3, 4, 5, 6], "fc1": [1, 2, 3, 4, 5]],
            ["conv1": [4, 3, 2, 1], "conv2": [6, 5, 4, 3, 2, 1], "fc1": [5, 4, 3, 2, 1]],
            ["conv1": [1, 2, 3, 4], "conv2": [1, 2, 3, 4, 5, 6], "fc1": [1, 2, 3, 4, 5]],
        ]
        var prunedBefore: [String: Set<Int>] = [:]
        for trial in 1...3 {
            try decide(pruner, trial: trial, importance: orders[trial - 1])
            for id in ["conv1", "conv2", "fc1"] {
                let now = Set(pruned(pruner.keepFlags(group: id)))
                XCTAssertTrue(now.isSuperset(of: prunedBefore[id, default: []]), "\(id) at trial \(trial)")
                prunedBefore[id] = now
            }
            XCTAssertGreaterThanOrEqual(pruner.removedParameterCount, previous)
            XCTAssertGreaterThanOrEqual(pruner.achievedRatio, pruner.schedule.targetFraction(afterTrial: trial))
            previous = pruner.removedParameterCount
        }
    }

    /// `channel_multiple: 8`: every group keeps a multiple of 8 channels (a narrower group is
    /// kept whole), across gradual trials, in both sorts; the least important channels go first
    /// and the target is reached within one chunk's parameters. Widths that are not multiples of
    /// 8 are aligned by their first chunk (27 → 24).
    func testChannelMultipleKeepsAlignedCountsInBothSorts() throws {
        // At most 477 of 641 removable: 8 channels left in a, b, c.
        try assertAlignedPruning(shapes: [("a", 4, 32), ("b", 6, 27), ("c", 3, 64), ("d", 5, 6)], ratios: [0.3, 0.5, 0.7],
                                 multiple: 8, narrowMultiple: nil) { kept, outputs in
            outputs < 8 ? kept == outputs : kept == outputs || (kept % 8 == 0 && kept >= 8)
        }
    }

    /// `channel_multiple: 16, narrow_channel_multiple: 8`: kept counts are 8 or multiples of 16
    /// (a group narrower than 8 is kept whole, one of 12 may drop to 8, one of 27 aligns to
    /// 16 first), across gradual trials, in both sorts, least important channels first, and
    /// the target is reached within one chunk's parameters.
    func testNarrowChannelMultipleAllowsOneNarrowWidthBelowTheMultiple() throws {
        // At most 509 of 737 removable: 8 channels left in a, b, c, e.
        let reached = try assertAlignedPruning(shapes: [("a", 4, 32), ("b", 6, 27), ("c", 3, 64), ("d", 5, 6), ("e", 7, 12)],
                                               ratios: [0.3, 0.5, 0.65], multiple: 16, narrowMultiple: 8) { kept, outputs in
            kept == outputs || kept == 8 || (kept % 16 == 0 && kept >= 16)
        }
        // The narrow width is reached, also by a group narrower than the multiple.
        let narrowSeen = Set(reached.filter { $0.kept == 8 }.map(\.group))
        XCTAssertTrue(narrowSeen.isSuperset(of: ["a", "e"]), "groups that reached 8: \(narrowSeen.sorted())")
    }

    /// Prunes parallel Dense layers of `shapes` to each ratio in 3 gradual trials, in both sorts,
    /// with kept counts limited by `multiple` / `narrowMultiple`; after every trial each group's
    /// count satisfies `allowed(kept, outputs)` and no pruned channel outranks a kept one; the
    /// target is reached, and in the global sort within one chunk (`multiple` channels of ≤ 7
    /// parameters). Returns every (group, kept) seen.
    @discardableResult
    private func assertAlignedPruning(shapes: [(name: String, inputs: Int, outputs: Int)], ratios: [Double], multiple: Int,
                                      narrowMultiple: Int?, allowed: (_ kept: Int, _ outputs: Int) -> Bool,
                                      file: StaticString = #filePath, line: UInt = #line) throws -> [(group: String, kept: Int)] {
        let importance: [String: [Float]] = Dictionary(uniqueKeysWithValues: shapes.enumerated().map { i, s in
            (s.name, (0..<s.outputs).map { Float(($0 * 37 + i * 11) % (s.outputs + 5)) + 1 })
        })
        let total = shapes.reduce(0) { $0 + ($1.inputs + 1) * $1.outputs }
        var seen: [(group: String, kept: Int)] = []
        for range in PruneSortRange.allowed {
            for ratio in ratios {
                let (model, groups) = parallelDenseNet(shapes)
                let pruner = try preparedPruner(PrunerConfig(compressionRatio: ratio, numTrials: 3, pruneSortRange: range,
                                                             channelMultiple: multiple, narrowChannelMultiple: narrowMultiple),
                                                model: model, groups: groups)
                for trial in 1...3 {
                    try decide(pruner, trial: trial, importance: importance)
                    for s in shapes {
                        let flags = try XCTUnwrap(pruner.keepFlags(group: s.name), file: file, line: line)
                        let kept = flags.filter { $0 }.count
                        let tag = "\(s.name) (\(range.rawValue), ratio \(ratio), trial \(trial)): kept \(kept)"
                        XCTAssertTrue(allowed(kept, s.outputs), tag, file: file, line: line)
                        seen.append((s.name, kept))
                        let scores = importance[s.name]!
                        let prunedMax = pruned(flags).map { scores[$0] }.max() ?? -1
                        XCTAssertLessThanOrEqual(prunedMax, flags.indices.filter { flags[$0] }.map { scores[$0] }.min()!, tag,
                                                 file: file, line: line)
                    }
                }
                let removed = Double(pruner.removedParameterCount), target = ratio * Double(total)
                XCTAssertGreaterThanOrEqual(removed, target, "\(range.rawValue) \(ratio)", file: file, line: line)
                if range == .global {
                    XCTAssertLessThan(removed - Double(multiple * 7), target,
                                      "overshoot of more than one chunk (\(multiple) channels of ≤ 7 parameters)", file: file, line: line)
                }
            }
        }
        return seen
    }

    /// The allowed widths themselves: the next one below a count and the rounding up, with and
    /// without a narrow multiple (without one they are the plain multiples).
    func testChannelWidthsStepDownAndRoundUp() {
        let narrow = ChannelWidths(multiple: 16, narrowMultiple: 8)
        let steps: [(kept: Int, next: Int?)] = [(64, 48), (48, 32), (33, 32), (32, 16), (27, 16), (17, 16), (16, 8),
                                                (12, 8), (9, 8), (8, nil), (6, nil)]
        for (kept, next) in steps { XCTAssertEqual(narrow.next(below: kept, channels: 64), next, "below \(kept)") }
        XCTAssertNil(narrow.next(below: 6, channels: 6), "a group narrower than 8 is kept whole")
        XCTAssertEqual([1, 5, 8, 9, 16, 17, 40].map { narrow.roundUp($0, channels: 64) }, [8, 8, 8, 16, 16, 32, 48])
        XCTAssertEqual(narrow.roundUp(3, channels: 6), 6)
        XCTAssertEqual(narrow.roundUp(20, channels: 27), 27)
        let plain = ChannelWidths(multiple: 8)
        XCTAssertEqual([33, 32, 27, 9, 8].map { plain.next(below: $0, channels: 64) }, [32, 24, 24, 8, nil])
        XCTAssertEqual([1, 9, 24, 25].map { plain.roundUp($0, channels: 64) }, [8, 16, 24, 32])
        XCTAssertEqual([5, 2, 1].map { ChannelWidths.any.next(below: $0, channels: 5) }, [4, 1, nil])
    }
}
