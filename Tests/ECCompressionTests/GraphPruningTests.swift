@testable import ECCompression
import ECNN
import ECTensor
import XCTest

/// Dependency groups through what real CNNs contain — residual adds, channel concatenations,
/// depthwise convolutions, squeeze-excitation multiplies, per-channel constants, a flattening
/// reshape — on tiny graphs: every prunable channel pruned at random, the extracted model's
/// outputs equal the masked model's.
final class GraphPruningTests: XCTestCase {
    var rng = RNG(seed: 21)

    func conv(_ name: String, _ cin: Int, _ cout: Int, k: Int = 3, groups: Int = 1) -> Conv2D {
        Conv2D(name: name, kernel: Tensor.uniform(shape: [k, k, cin / groups, cout], low: -0.5, high: 0.5, rng: &rng),
               bias: Tensor.uniform(shape: [cout], low: -0.2, high: 0.2, rng: &rng), padding: .same, groups: groups)
    }

    func bn(_ name: String, _ c: Int) -> BatchNorm {
        let b = BatchNorm(name: name, channels: c)
        for (p, lo, hi) in [(b.gamma, Float(0.5), Float(1.5)), (b.beta, -0.2, 0.2), (b.movingMean, -0.2, 0.2), (b.movingVariance, 0.5, 1.5)] {
            p.value = Tensor.uniform(shape: [c], low: lo, high: hi, rng: &rng)
        }
        return b
    }

    /// Prunes about half of every prunable group at random and checks extracted = masked.
    func assertExtractionMatches(_ model: Model, expectPrunable: [String], file: StaticString = #filePath, line: UInt = #line) throws {
        let groups = ChannelGroups.build(model: model)
        XCTAssertEqual(groups.filter(\.prunable).map(\.id), expectPrunable, "prunable groups", file: file, line: line)
        var keep: [String: [Bool]] = [:]
        for g in groups where g.prunable {
            var flags = (0..<g.channels).map { _ in rng.next() % 2 == 0 }
            flags[Int(rng.next() % UInt64(g.channels))] = true
            keep[g.id] = flags
        }
        let small = ModelSurgery.shrink(model: model, groups: groups, keep: keep)
        XCTAssertLessThan(small.parameterCount, model.parameterCount, file: file, line: line)
        ModelSurgery.applyMasks(model: model, groups: groups, keep: keep)
        let x = Tensor.uniform(shape: [3] + model.inputShape, low: 0, high: 1, rng: &rng)
        let masked = model(Variable(x), .inference(.dense)).value, extracted = small(Variable(x), .inference(.dense)).value
        XCTAssertLessThanOrEqual(extracted.maxAbsDifference(masked), 1e-4 * max(1, masked.scalars.map(abs).max()!),
                                 "extracted vs masked outputs", file: file, line: line)
    }

    func testConcatenatedGroupsKeepTheirOffsets() throws {
        // a (4) and b (3) concatenated → BN over 7 → conv c reads both → pool → fc.
        var b = GraphBuilder(inputShape: [6, 6, 2])
        let ya = try b.layer(conv("a", 2, 4), b.input), yb = try b.layer(conv("b", 2, 3), b.input)
        var h = try b.concat([ya, yb], axis: 3, name: "cat")
        h = try b.layers([bn("cat/bn", 7), ReLU(name: "cat/relu"), conv("c", 7, 5), GlobalAvgPool(name: "pool"),
                          Dense(name: "fc", inputs: 5, outputs: 3, rng: &rng)], h)
        let model = Model(name: "concat", graph: try b.build(output: h))
        let groups = ChannelGroups.build(model: model)
        let bGroup = try XCTUnwrap(groups.first { $0.id == "b" })
        XCTAssertTrue(bGroup.slices.contains(ChannelSlice(parameter: "cat/bn/gamma", role: .producer, innerStride: 1, period: 7, offset: 4)))
        XCTAssertTrue(bGroup.slices.contains(ChannelSlice(parameter: "c/weight", role: .consumer, innerStride: 5, period: 7, offset: 4)))
        // a and b are parts of the joined axis: they keep multiples of channel_multiple only.
        XCTAssertEqual(groups.filter(\.isConcatenationPart).map(\.id), ["a", "b"])
        let widths = ChannelWidths(multiple: 16, narrowMultiple: 8)
        XCTAssertEqual(widths.of(bGroup), ChannelWidths(multiple: 16))
        XCTAssertEqual(widths.of(try XCTUnwrap(groups.first { $0.id == "c" })), widths)
        try assertExtractionMatches(model, expectPrunable: ["a", "b", "c"])
    }

    func testDepthwiseConvolutionsFollowTheirInput() throws {
        // MobileNetV2-style: expand 1×1 → BN → ReLU6 → depthwise 3×3 → BN → ReLU6 → project 1×1 → + input.
        var b = GraphBuilder(inputShape: [6, 6, 4])
        let stem = try b.layer(conv("stem", 4, 4, k: 1), b.input)
        var h = try b.layers([conv("expand", 4, 8, k: 1), bn("expand/bn", 8), ActivationLayer(name: "expand/relu6", kind: .clip(min: 0, max: 6)),
                              conv("dw", 8, 8, groups: 8), bn("dw/bn", 8), ActivationLayer(name: "dw/relu6", kind: .clip(min: 0, max: 6)),
                              conv("project", 8, 4, k: 1), bn("project/bn", 4)], stem)
        h = try b.binary(.add, h, stem, name: "residual")
        h = try b.layers([GlobalAvgPool(name: "pool"), Dense(name: "fc", inputs: 4, outputs: 2, rng: &rng)], h)
        let model = Model(name: "mbv2", graph: try b.build(output: h))
        let expand = try XCTUnwrap(ChannelGroups.build(model: model).first { $0.id == "expand" })
        for p in ["dw/weight", "dw/bias", "dw/bn/gamma", "expand/bn/beta"] {
            XCTAssertTrue(expand.slices.contains { $0.parameter == p && $0.role == .producer }, "\(p) follows expand")
        }
        XCTAssertEqual(expand.parametersPerChannel, (4 + 1) + (9 + 1) + 4, "expand's kernel and bias, the depthwise kernel and bias, project's input")
        XCTAssertFalse(ChannelGroups.build(model: model).contains(where: \.isConcatenationPart))
        try assertExtractionMatches(model, expectPrunable: ["expand", "project+stem"])
    }

    func testGroupedConvolutionsPruneTheSameChannelsInEveryGroup() throws {
        // ResNeXt-style: stem → 1×1 reduce (8) → BN → ReLU → grouped 3×3 (8 → 12, 4 groups) → BN →
        // ReLU → 1×1 expand (12 → 6) + stem (6) → grouped 1×1 (6 → 6, 3 groups) → pool → fc.
        var b = GraphBuilder(inputShape: [5, 5, 3])
        let stem = try b.layer(conv("stem", 3, 6), b.input)
        var h = try b.layers([conv("reduce", 6, 8, k: 1), bn("reduce/bn", 8), ReLU(name: "reduce/relu"),
                              conv("grouped", 8, 12, groups: 4), bn("grouped/bn", 12), ReLU(name: "grouped/relu"),
                              conv("expand", 12, 6, k: 1)], stem)
        h = try b.binary(.add, h, stem, name: "residual")
        h = try b.layers([conv("mix", 6, 6, k: 1, groups: 3), GlobalAvgPool(name: "pool"),
                          Dense(name: "fc", inputs: 6, outputs: 2, rng: &rng)], h)
        let model = Model(name: "resnext", graph: try b.build(output: h))
        let groups = ChannelGroups.build(model: model)
        // reduce's 8 channels fold by 4 (2 per conv group), grouped's 12 by 4 (3 per group); the
        // residual stream (6) folds by mix's 3 groups: 2 channels, each 3 axis channels.
        let reduce = try XCTUnwrap(groups.first { $0.id == "reduce" })
        XCTAssertEqual(reduce.channels, 2)
        XCTAssertTrue(reduce.slices.contains(ChannelSlice(parameter: "reduce/weight", role: .producer, innerStride: 1, period: 8,
                                                          copies: 4, copyStride: 2)))
        XCTAssertTrue(reduce.slices.contains(ChannelSlice(parameter: "grouped/weight", role: .consumer, innerStride: 12,
                                                          period: 2)))
        XCTAssertEqual(reduce.parametersPerChannel, 4 * (6 + 1) + 9 * 12, "4 of reduce's outputs; one input of each group")
        XCTAssertEqual(try XCTUnwrap(groups.first { $0.id == "grouped" }).channels, 3)
        XCTAssertEqual(try XCTUnwrap(groups.first { $0.id == "grouped" }).outputChannelsPerChannel, 4)
        XCTAssertEqual(try XCTUnwrap(groups.first { $0.id == "fc" }).outputChannelsPerChannel, 1)
        XCTAssertEqual(try XCTUnwrap(groups.first { $0.id == "expand+stem" }).channels, 2)
        XCTAssertEqual(groups.filter(\.isConcatenationPart).map(\.id), [], "folded spaces are whole axes")
        try assertExtractionMatches(model, expectPrunable: ["expand+stem", "grouped", "mix", "reduce"])
        // Extracted: still 4 groups, each with the same (smaller) number of channels.
        var keep: [String: [Bool]] = [:]
        for g in groups where g.prunable { keep[g.id] = (0..<g.channels).map { $0 == 0 } }
        let small = ModelSurgery.shrink(model: model, groups: groups, keep: keep)
        let grouped = try XCTUnwrap(small.graph.children.first { $0.name == "grouped" } as? Conv2D)
        XCTAssertEqual(grouped.groups, 4)
        XCTAssertEqual(grouped.weight.shape, [3, 3, 1, 4], "one input and one output channel per group")
    }

    func testSqueezeExcitationAndConstantsFollowTheirChannels() throws {
        // x = conv; s = sigmoid(fc-like 1×1 convs over the pooled x); y = x · s · k (constant) → flatten → fc.
        var b = GraphBuilder(inputShape: [4, 4, 3])
        let x = try b.layer(conv("x", 3, 6), b.input)
        var s = try b.layers([GlobalAvgPool(name: "se/pool")], x)
        s = try b.reshape(s, to: [1, 1, 6], name: "se/keepdims")
        s = try b.layers([conv("se/reduce", 6, 2, k: 1), ReLU(name: "se/relu"), conv("se/expand", 2, 6, k: 1),
                          ActivationLayer(name: "se/gate", kind: .hardSigmoid(alpha: 1.0 / 6, beta: 0.5))], s)
        var h = try b.binary(.mul, x, s, name: "se/scale")
        let k = try b.constant(Parameter(name: "scale", role: .constant, value: Tensor.uniform(shape: [1, 1, 1, 6], low: 0.5, high: 1.5, rng: &rng)))
        h = try b.binary(.mul, h, k, name: "channel_scale")
        h = try b.reshape(h, to: [96], name: "flatten")
        h = try b.layer(Dense(name: "fc", inputs: 96, outputs: 2, rng: &rng), h)
        let model = Model(name: "se", graph: try b.build(output: h))
        let group = try XCTUnwrap(ChannelGroups.build(model: model).first { $0.id.contains("x") })
        XCTAssertEqual(group.id, "se/expand+x", "the gate's channels are x's channels")
        XCTAssertTrue(group.slices.contains(ChannelSlice(parameter: "scale", role: .producer, innerStride: 1, period: 6)))
        XCTAssertTrue(group.slices.contains(ChannelSlice(parameter: "fc/weight", role: .consumer, innerStride: 2, period: 6)))
        XCTAssertFalse(ChannelGroups.build(model: model).contains(where: \.isConcatenationPart), "a flatten is not a join")
        try assertExtractionMatches(model, expectPrunable: ["se/expand+x", "se/reduce"])
    }

    func testOpsThatMixChannelsPinThem() throws {
        // A channel shuffle (reshape + transpose) and a split inside a space pin what they read.
        var b = GraphBuilder(inputShape: [4, 4, 2])
        let a = try b.layer(conv("a", 2, 4), b.input)
        var h = try b.reshape(a, to: [4, 4, 2, 2], name: "shuffle/view")
        h = try b.transpose(h, perm: [0, 1, 2, 4, 3], name: "shuffle/swap")
        h = try b.reshape(h, to: [4, 4, 4], name: "shuffle/back")
        let c = try b.layer(conv("c", 4, 4), h)
        let parts = try b.split(c, axis: 3, sizes: [1, 3], name: "chunk")
        h = try b.layers([conv("d", 3, 2), GlobalAvgPool(name: "pool"), Dense(name: "fc", inputs: 2, outputs: 2, rng: &rng)], parts[1])
        let model = Model(name: "mix", graph: try b.build(output: h))
        try assertExtractionMatches(model, expectPrunable: ["d"])
    }
}
