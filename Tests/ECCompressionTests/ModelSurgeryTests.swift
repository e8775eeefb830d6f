@testable import ECCompression
import ECNN
import ECTensor
import XCTest

final class ModelSurgeryTests: XCTestCase {
    // MARK: - Masks

    func testSliceMaskFollowsTheChannelRule() {
        // Producer of a [2, 3] kernel: channel = column.
        let producer = ChannelSlice(parameter: "w", role: .producer, innerStride: 1, period: 3)
        XCTAssertEqual(ModelSurgery.mask(for: producer, shape: [2, 3], keep: [true, false, true]).values,
                       [true, false, true, true, false, true])
        // Consumer of a [3, 2] kernel: channel = row.
        let consumer = ChannelSlice(parameter: "w", role: .consumer, innerStride: 2, period: 3)
        XCTAssertEqual(ModelSurgery.mask(for: consumer, shape: [3, 2], keep: [false, true, false]).values,
                       [false, false, true, true, false, false])
        // Consumer after a flatten of [1, 2, C=2] into a [4, 1] kernel: rows 0, 2 are channel 0.
        let flat = ChannelSlice(parameter: "w", role: .consumer, innerStride: 1, period: 2)
        let mask = ModelSurgery.mask(for: flat, shape: [4, 1], keep: [true, false])
        XCTAssertEqual(mask.values, [true, false, true, false])
        XCTAssertEqual(mask.shape, [4, 1])
    }

    func testApplyMasksZeroesEveryPrunedSliceOnly() throws {
        let model = try XCTUnwrap(ModelZoo.make("fmnist-cnn", seed: 2))
        let groups = ChannelGroups.build(model: model)
        var keep = [Bool](repeating: true, count: 64)
        keep[5] = false
        let before = model.stateDict()
        ModelSurgery.applyMasks(model: model, groups: groups, keep: ["conv2": keep])
        let conv2 = try XCTUnwrap(model.parameter(named: "conv2/weight")).value
        let fc1 = try XCTUnwrap(model.parameter(named: "fc1/weight")).value
        for e in 0..<conv2.count {
            XCTAssertEqual(conv2[flat: e] == 0, e % 64 == 5 || before["conv2/weight"]![flat: e] == 0)
        }
        for row in 0..<3136 where row % 64 == 5 {
            XCTAssertTrue((0..<128).allSatisfy { fc1[flat: row * 128 + $0] == 0 }, "fc1 row \(row)")
        }
        XCTAssertEqual(fc1[flat: 4 * 128], before["fc1/weight"]![flat: 4 * 128])
        XCTAssertEqual(model.parameter(named: "conv1/weight")?.value, before["conv1/weight"], "other groups untouched")
    }

    // MARK: - Shrinking

    func testShrunkFmnistCNNKeepsTheRowsOfKeptChannelsInHWCOrder() throws {
        let model = try XCTUnwrap(ModelZoo.make("fmnist-cnn", seed: 3))
        let groups = ChannelGroups.build(model: model)
        let kept = [1, 7, 8, 40, 63]
        let keep = (0..<64).map { kept.contains($0) }
        let small = ModelSurgery.shrink(model: model, groups: groups, keep: ["conv2": keep])
        XCTAssertEqual(small.parameter(named: "conv2/weight")?.shape, [3, 3, 32, 5])
        XCTAssertEqual(small.parameter(named: "conv2/bias")?.shape, [5])
        XCTAssertEqual(small.parameter(named: "fc1/weight")?.shape, [49 * 5, 128])
        XCTAssertEqual(small.parameter(named: "conv1/weight")?.value, model.parameter(named: "conv1/weight")?.value)
        let old = try XCTUnwrap(model.parameter(named: "fc1/weight")).value
        let new = try XCTUnwrap(small.parameter(named: "fc1/weight")).value
        for hw in [0, 17, 48] {
            for (j, c) in kept.enumerated() {
                XCTAssertEqual(new[flat: (hw * 5 + j) * 128 + 9], old[flat: (hw * 64 + c) * 128 + 9])
            }
        }
        XCTAssertEqual(small.parameters.map(\.name), model.parameters.map(\.name))
        XCTAssertEqual(small.layerSummaries.map(\.name), model.layerSummaries.map(\.name))
    }

    /// The key property: the shrunk model computes what the masked large model computes, and
    /// holds exactly the elements no pruned slice covers.
    func testShrunkModelEqualsMaskedModelOnEveryZooModel() throws {
        for name in ModelZoo.names {
            for seed: UInt64 in [11, 12, 13] {
                var rng = RNG(seed: seed * 31)
                let model = try XCTUnwrap(ModelZoo.make(name, seed: seed))
                randomiseState(model, &rng)
                let groups = ChannelGroups.build(model: model)
                let keep = randomKeep(groups, &rng)
                XCTAssertTrue(keep.values.contains { $0.contains(false) }, "\(name): something is pruned")

                let masks = ModelSurgery.parameterMasks(model: model, groups: groups, keep: keep)
                let expectedCount = model.parameters.reduce(0) { $0 + (masks[$1.name]?.keptCount ?? $1.value.count) }
                let shapes = model.parameters.map(\.shape)
                let small = ModelSurgery.shrink(model: model, groups: groups, keep: keep)
                ModelSurgery.applyMasks(model: model, groups: groups, keep: keep)
                XCTAssertEqual(model.parameters.map(\.shape), shapes, "\(name): masking keeps the shapes")

                XCTAssertEqual(small.graph.parameterCount(includeState: true), expectedCount, name)
                for group in groups where keep[group.id] != nil {
                    let remaining = keep[group.id]!.filter { $0 }.count
                    for producer in group.producers {
                        XCTAssertEqual(small.parameter(named: producer)?.shape.last, remaining, "\(name) \(producer)")
                    }
                }
                let x = Tensor.uniform(shape: [4, 28, 28, 1], low: 0, high: 1, rng: &rng)
                let want = model(Variable(x), .inference()).value
                let got = small(Variable(x), .inference()).value
                XCTAssertEqual(got.shape, [4, 10])
                XCTAssertLessThan(got.maxAbsDifference(want), 1e-4, "\(name) seed \(seed)")
            }
        }
    }

    func testShrinkingWithEverythingKeptReproducesTheModelExactly() throws {
        for name in ModelZoo.names {
            var rng = RNG(seed: 5)
            let model = try XCTUnwrap(ModelZoo.make(name, seed: 5))
            randomiseState(model, &rng)
            let groups = ChannelGroups.build(model: model)
            let allKept = Dictionary(uniqueKeysWithValues: groups.map { ($0.id, [Bool](repeating: true, count: $0.channels)) })
            let x = Tensor.uniform(shape: [4, 28, 28, 1], low: 0, high: 1, rng: &rng)
            let want = model(Variable(x), .inference()).value
            for keep in [[:], allKept] {
                let copy = ModelSurgery.shrink(model: model, groups: groups, keep: keep)
                XCTAssertEqual(copy.stateDict(), model.stateDict(), name)
                XCTAssertEqual(copy(Variable(x), .inference()).value, want, name)
                XCTAssertEqual(copy.flops, model.flops, name)
                // A new model: changing it leaves the original alone.
                copy.parameters[0].value = Tensor(shape: copy.parameters[0].shape, repeating: 9)
                XCTAssertEqual(model(Variable(x), .inference()).value, want, name)
            }
        }
    }

    /// Pruning k channels of one group removes exactly k · parametersPerChannel elements of
    /// Conv2D/MatMul kernels and biases, and k · flopsPerChannel FLOPs.
    func testPerChannelCostsMatchTheShrunkModel() throws {
        for name in ModelZoo.names {
            let model = try XCTUnwrap(ModelZoo.make(name, seed: 9))
            let groups = ChannelGroups.build(model: model)
            var rng = RNG(seed: 9)
            for group in groups where group.prunable {
                var keep = [Bool](repeating: true, count: group.channels)
                var order = Array(0..<group.channels)
                order.seededShuffle(rng: &rng)
                let pruned = group.channels / 2
                for c in order.prefix(pruned) { keep[c] = false }
                let small = ModelSurgery.shrink(model: model, groups: groups, keep: [group.id: keep])
                XCTAssertEqual(weightLayerParameters(model) - weightLayerParameters(small),
                               pruned * group.parametersPerChannel, "\(name) \(group.id)")
                XCTAssertEqual(model.flops - small.flops, pruned * group.flopsPerChannel, "\(name) \(group.id)")
            }
        }
    }

    // MARK: - Helpers

    /// Non-trivial biases, batch-norm affine parameters and running statistics.
    private func randomiseState(_ model: Model, _ rng: inout RNG) {
        for p in model.parameters {
            let (low, high): (Float, Float)
            switch p.role {
            case .weight, .constant: continue
            case .bias, .beta, .movingMean: (low, high) = (-0.2, 0.2)
            case .gamma, .movingVariance: (low, high) = (0.5, 1.5)
            }
            p.value = Tensor.uniform(shape: p.shape, low: low, high: high, rng: &rng)
        }
    }

    /// Random flags (about half kept, at least one) for most prunable groups; some groups are
    /// left out of `keep` entirely.
    private func randomKeep(_ groups: [ChannelGroup], _ rng: inout RNG) -> [String: [Bool]] {
        var keep: [String: [Bool]] = [:]
        for (i, group) in groups.enumerated() where group.prunable && (i == 0 || rng.next() % 4 != 0) {
            var flags = (0..<group.channels).map { _ in rng.next() % 2 == 0 }
            flags[Int(rng.next() % UInt64(group.channels))] = true
            keep[group.id] = flags
        }
        return keep
    }

    private func weightLayerParameters(_ model: Model) -> Int {
        model.layerSummaries.filter { ["Conv2D", "MatMul"].contains($0.opType) }.reduce(0) { $0 + $1.params }
    }
}
