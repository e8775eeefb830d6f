@testable import ECCompression
import ECNN
import ECTensor
import XCTest

final class ChannelGroupsTests: XCTestCase {
    // MARK: - Scopes

    func testScopeMatchesItselfAndEverythingUnderIt() {
        let filter = ScopeFilter(include: ["block1"])
        XCTAssertTrue(filter.contains("block1"))
        XCTAssertTrue(filter.contains("block1/conv2"))
        XCTAssertTrue(filter.contains("block1/conv2/weight"))
        XCTAssertFalse(filter.contains("block10"), "a prefix of a name component is not a scope")
        XCTAssertFalse(filter.contains("block10/conv1"))
        XCTAssertFalse(filter.contains("stem"))
        XCTAssertTrue(ScopeFilter(include: ["block1/"]).contains("block1/conv1"), "a trailing slash is ignored")
    }

    func testEmptyIncludeMeansEverythingAndExcludeWins() {
        XCTAssertTrue(ScopeFilter.all.contains("anything/at/all"))
        let filter = ScopeFilter(include: ["block2"], exclude: ["block2/shortcut"])
        XCTAssertTrue(filter.contains("block2/conv1"))
        XCTAssertFalse(filter.contains("block2/shortcut"))
        XCTAssertFalse(filter.contains("block2/shortcut/weight"))
        XCTAssertTrue(filter.contains("block2/shortcut2"), "exclusion follows the same component rule")
        XCTAssertFalse(ScopeFilter(exclude: ["conv1"]).contains("conv1/weight"))
        XCTAssertTrue(ScopeFilter(exclude: ["conv1"]).contains("conv10/weight"))
    }

    // MARK: - Zoo models

    func testFmnistCNNGroups() throws {
        let groups = try build("fmnist-cnn")
        XCTAssertEqual(groups.map(\.id), ["conv1", "conv2", "fc1", "fc2"])
        XCTAssertEqual(groups.map(\.channels), [32, 64, 128, 10])
        XCTAssertEqual(groups.map(\.prunable), [true, true, true, false], "fc2 holds the classes")
        XCTAssertEqual(groups.map(\.producers), [["conv1/weight"], ["conv2/weight"], ["fc1/weight"], ["fc2/weight"]])
        assertSlices(groups[0], [("conv1/weight", .producer, 1), ("conv1/bias", .producer, 1),
                                 ("conv2/weight", .consumer, 64)])
        // conv2 reaches fc1 through pool + flatten: rows in H, W, C order, so period 64, stride 128.
        assertSlices(groups[1], [("conv2/weight", .producer, 1), ("conv2/bias", .producer, 1),
                                 ("fc1/weight", .consumer, 128)])
        assertSlices(groups[2], [("fc1/weight", .producer, 1), ("fc1/bias", .producer, 1),
                                 ("fc2/weight", .consumer, 10)])
        assertSlices(groups[3], [("fc2/weight", .producer, 1), ("fc2/bias", .producer, 1)])
        // conv1: 3·3·1 + 1 own, 3·3·64 in conv2 = 586; conv2: 3·3·32 + 1, 7·7·128 in fc1 = 6561;
        // fc1: 3136 + 1, 10 in fc2 = 3147; fc2: 128 + 1.
        XCTAssertEqual(groups.map(\.parametersPerChannel), [586, 6561, 3147, 129])
        // FLOPs per channel: conv1 2·784·9 + conv2's share 2·196·9·64; conv2 2·196·288 + fc1's
        // 2·49·128; fc1 2·3136 + fc2's 2·10; fc2 2·128.
        XCTAssertEqual(groups.map(\.flopsPerChannel),
                       [2 * 784 * 9 + 2 * 196 * 9 * 64, 2 * 196 * 288 + 2 * 49 * 128, 2 * 3136 + 2 * 10, 2 * 128])
    }

    func testLeNet5Groups() throws {
        let groups = try build("lenet5")
        XCTAssertEqual(groups.map(\.id), ["conv1", "conv2", "fc1", "fc2", "fc3"])
        XCTAssertEqual(groups.map(\.channels), [6, 16, 120, 84, 10])
        XCTAssertEqual(groups.map(\.prunable), [true, true, true, true, false])
        // 28 → conv1 (same) 28 → pool 14 → conv2 (valid 5×5) 10 → pool 5: fc1 reads 5·5·16 rows.
        assertSlices(groups[1], [("conv2/weight", .producer, 1), ("conv2/bias", .producer, 1),
                                 ("fc1/weight", .consumer, 120)])
        // conv1 25 + 1 + 25·16; conv2 25·6 + 1 + 25·120; fc1 400 + 1 + 84; fc2 120 + 1 + 10.
        XCTAssertEqual(groups.map(\.parametersPerChannel), [426, 3151, 485, 131, 85])
    }

    func testMLPGroups() throws {
        let groups = try build("mlp")
        XCTAssertEqual(groups.map(\.id), ["fc1", "fc2", "fc3"])
        XCTAssertEqual(groups.map(\.prunable), [true, true, false])
        // The flattened image is not a channel space: fc1 has no consumer slice of its own input.
        assertSlices(groups[0], [("fc1/weight", .producer, 1), ("fc1/bias", .producer, 1),
                                 ("fc2/weight", .consumer, 100)])
        XCTAssertEqual(groups.map(\.parametersPerChannel), [784 + 1 + 100, 300 + 1 + 10, 100 + 1])
    }

    func testResnetMiniTiesResidualStreams() throws {
        let groups = try build("resnet-mini")
        XCTAssertEqual(groups.map(\.id), ["block1/conv1", "block1/conv2+stem", "block2/conv1",
                                          "block2/conv2+block2/shortcut+block3/conv2", "block3/conv1", "fc"])
        XCTAssertEqual(groups.map(\.channels), [16, 16, 32, 32, 32, 10])
        XCTAssertEqual(groups.map(\.prunable), [true, true, true, true, true, false])

        // stem + block1 (identity shortcut): read by block1's body, block2's body and its projection.
        let stem = groups[1]
        XCTAssertEqual(stem.producers, ["block1/conv2/weight", "stem/weight"])
        assertSlices(stem, [("block1/conv2/weight", .producer, 1), ("stem/weight", .producer, 1)]
                     + bnSlices("block1/conv2/bn") + bnSlices("stem/bn")
                     + [("block1/conv1/weight", .consumer, 16), ("block2/conv1/weight", .consumer, 32),
                        ("block2/shortcut/weight", .consumer, 32)])
        // block2's output (projection) tied to block3's (identity); read by block3 and, after the
        // global average pool, by fc (period 32, stride 10).
        let block2 = groups[3]
        XCTAssertEqual(block2.producers, ["block2/conv2/weight", "block2/shortcut/weight", "block3/conv2/weight"])
        assertSlices(block2, [("block2/conv2/weight", .producer, 1), ("block2/shortcut/weight", .producer, 1),
                              ("block3/conv2/weight", .producer, 1)]
                     + bnSlices("block2/conv2/bn") + bnSlices("block2/shortcut/bn") + bnSlices("block3/conv2/bn")
                     + [("block3/conv1/weight", .consumer, 32), ("fc/weight", .consumer, 10)])
        assertSlices(groups[0], [("block1/conv1/weight", .producer, 1)] + bnSlices("block1/conv1/bn")
                     + [("block1/conv2/weight", .consumer, 16)])

        // No biases; batch-norm vectors are not counted. stem 9 + block1/conv2 144 + readers
        // 144 + 288 + 32 = 617; block2 288 + 16 + 288 + readers 288 + 10 = 890; inner convs
        // own + next conv: 144 + 144, 144 + 288, 288 + 288; fc 32 + 1.
        XCTAssertEqual(groups.map(\.parametersPerChannel), [288, 617, 432, 890, 576, 33])
        // stem 2·784·9, block1/conv2 and block1/conv1 2·784·144 each, block2/conv1 (stride 2)
        // 2·196·144·2, block2/shortcut 2·196·32.
        XCTAssertEqual(stem.flopsPerChannel, 2 * 784 * 9 + 2 * 2 * 784 * 144 + 2 * 196 * 144 * 2 + 2 * 196 * 32)
    }

    // MARK: - Selection

    func testPrunableOpTypesAreHonoured() throws {
        let model = try XCTUnwrap(ModelZoo.make("fmnist-cnn", seed: 1))
        let groups = ChannelGroups.build(model: model, prunableOpTypes: ["Conv2D"], scopes: .all)
        XCTAssertEqual(groups.map(\.prunable), [true, true, false, false])
        // fc1 (MatMul) is not a prunable layer, so its vanishing rows are not in the unit.
        XCTAssertEqual(groups[1].parametersPerChannel, 3 * 3 * 32 + 1)
        XCTAssertEqual(groups[1].slices.last?.parameter, "fc1/weight", "the rows still vanish with the channel")
    }

    func testIncludeAndExcludeScopesAreHonoured() throws {
        let model = try XCTUnwrap(ModelZoo.make("resnet-mini", seed: 1))
        func prunable(_ scopes: ScopeFilter) -> [String] {
            ChannelGroups.build(model: model, prunableOpTypes: ["Conv2D", "MatMul"], scopes: scopes)
                .filter(\.prunable).map(\.id)
        }
        // Only block1: the stem group also has `stem` as producer, outside the scope.
        XCTAssertEqual(prunable(ScopeFilter(include: ["block1"])), ["block1/conv1"])
        XCTAssertEqual(prunable(ScopeFilter(include: ["block1", "stem"])), ["block1/conv1", "block1/conv2+stem"])
        // Excluding block2/shortcut keeps every group it touches whole: its own (with block2/conv2
        // and block3/conv2) and the stem group, whose channels it reads.
        XCTAssertEqual(prunable(ScopeFilter(exclude: ["block2/shortcut"])), ["block1/conv1", "block2/conv1", "block3/conv1"])
        XCTAssertEqual(prunable(ScopeFilter(include: ["block3/conv1/weight"])), ["block3/conv1"])
        XCTAssertEqual(prunable(ScopeFilter(include: ["block"])), [], "`block` is not a scope of block1")
        // The classifier is never prunable, even when named explicitly.
        XCTAssertEqual(prunable(ScopeFilter(include: ["fc"])), [])
    }

    func testResidualAddOntoTheModelInputIsPinned() throws {
        var rng = RNG(seed: 3)
        var b = GraphBuilder(inputShape: [6, 6, 1])
        let res = try b.layer(Conv2D(name: "res/conv", inChannels: 1, outChannels: 1, kernelSize: 3, rng: &rng), b.input)
        var h = try b.layer(ReLU(name: "res/relu"), try b.binary(.add, res, b.input, name: "res/add"))
        h = try b.layers([Conv2D(name: "conv", inChannels: 1, outChannels: 4, kernelSize: 3, rng: &rng),
                          GlobalAvgPool(name: "pool"), Dense(name: "fc", inputs: 4, outputs: 2, rng: &rng)], h)
        let groups = ChannelGroups.build(model: Model(name: "toy", graph: try b.build(output: h)))
        XCTAssertEqual(groups.map(\.id), ["conv", "fc", "res/conv"])
        XCTAssertEqual(groups.map(\.prunable), [true, false, false], "res/conv adds onto the raw input")
        assertSlices(groups[0], [("conv/weight", .producer, 1), ("conv/bias", .producer, 1),
                                 ("fc/weight", .consumer, 2)])
    }

    // MARK: - Helpers

    private func build(_ name: String, file: StaticString = #filePath, line: UInt = #line) throws -> [ChannelGroup] {
        let model = try XCTUnwrap(ModelZoo.make(name, seed: 1), file: file, line: line)
        return ChannelGroups.build(model: model, prunableOpTypes: ["Conv2D", "MatMul"], scopes: .all)
    }

    private func bnSlices(_ scope: String) -> [(String, ChannelSlice.Role, Int)] {
        ["gamma", "beta", "moving_mean", "moving_variance"].map { ("\(scope)/\($0)", .producer, 1) }
    }

    /// Checks the slices' parameters, roles and strides in order; every period is the group's width.
    private func assertSlices(_ group: ChannelGroup, _ expected: [(String, ChannelSlice.Role, Int)],
                              file: StaticString = #filePath, line: UInt = #line) {
        let want = expected.map { ChannelSlice(parameter: $0.0, role: $0.1, innerStride: $0.2, period: group.channels) }
        XCTAssertEqual(group.slices, want, group.id, file: file, line: line)
    }
}
