import ECCollective
import ECNN
import ECTensor
import XCTest
@testable import ECCompression

/// The Sparsifier on the reference model in one process: targets, patterns, scopes, partial
/// blocks, the schedule, and checkpoint state.
final class SparsifierTests: XCTestCase {
    func prepared(_ config: SparsifierConfig, model: Model = ModelZoo.make("fmnist-cnn", seed: 3)!) throws
        -> (Sparsifier, Model, PayloadChannel) {
        let s = try Sparsifier(config: config)
        let comm = SingleProcessCommunicator()
        try s.prepare(model: model, communicator: comm)
        return (s, model, PayloadChannel(communicator: comm))
    }

    func zeroFraction(_ t: Tensor) -> Double { Double(t.scalars.filter { $0 == 0 }.count) / Double(t.count) }

    func testLocalTargetIsReachedPerLayerWithinOneBlock() throws {
        let config = SparsifierConfig(targetSparseRatio: 0.6, sparseBlockShape: [1, 16], stepInterval: 2, numTrials: 3)
        let (s, model, channel) = try prepared(config)
        XCTAssertEqual(s.kernels.map(\.parameter), ["conv1/weight", "conv2/weight", "fc1/weight", "fc2/weight"])
        var events: [CompressionEvent] = []
        for step in 1...8 { if let e = try hookStep(s, step, model: model, channel: channel) { events.append(e) } }
        XCTAssertEqual(events.map(\.step), [2, 4, 6])
        XCTAssertEqual(events.last?.values["target_sparsity"], 0.6)
        XCTAssertLessThan(events[0].values["sparsity"]!, events[1].values["sparsity"]!, "the sparsity rises gradually")
        for k in s.kernels {
            let w = model.parameter(named: k.parameter)!.value
            let achieved = zeroFraction(w), block = Double(16) / Double(w.count)
            XCTAssertLessThanOrEqual(achieved, 0.6 + 1e-9, k.parameter)
            XCTAssertGreaterThan(achieved, 0.6 - block, "\(k.parameter) short of the target by less than one block")
        }
        XCTAssertEqual(events.last!.values["sparsity"]!, s.achievedSparsity)
    }

    func testGlobalTargetIsReachedOverallWithinOneBlock() throws {
        let config = SparsifierConfig(targetSparseRatio: 0.8, sparseBlockShape: [4, 4], stepInterval: 1, numTrials: 2,
                                      sortRange: .global)
        let (s, model, channel) = try prepared(config)
        for step in 1...2 { try hookStep(s, step, model: model, channel: channel) }
        let kernels = s.kernels.map { model.parameter(named: $0.parameter)!.value }
        let total = kernels.reduce(0) { $0 + $1.count }, zero = kernels.reduce(0) { $0 + $1.scalars.filter { $0 == 0 }.count }
        XCTAssertLessThanOrEqual(Double(zero) / Double(total), 0.8 + 1e-9)
        XCTAssertGreaterThan(Double(zero) / Double(total), 0.8 - 16.0 / Double(total))
        let perLayer = kernels.map(zeroFraction)
        XCTAssertGreaterThan(perLayer.max()! - perLayer.min()!, 0.05, "global ranking gives layers different sparsities")
    }

    func testNMPatternHoldsInEveryGroup() throws {
        let config = SparsifierConfig(stepInterval: 1, numTrials: 3, pattern: NMPattern(n: 2, m: 4))
        let (s, model, channel) = try prepared(config)
        for step in 1...3 { try hookStep(s, step, model: model, channel: channel) }
        for k in s.kernels {
            let w = model.parameter(named: k.parameter)!.value.scalars
            let rows = k.grid.rows, columns = k.grid.columns
            for c in 0..<columns {
                for start in stride(from: 0, to: rows, by: 4) {
                    let group = (start..<min(rows, start + 4)).map { w[$0 * columns + c] }
                    XCTAssertEqual(group.filter { $0 != 0 }.count, min(group.count, 2), "\(k.parameter) column \(c) rows \(start)…")
                }
            }
        }
        XCTAssertEqual(s.achievedSparsity, 0.5, accuracy: 0.02)
    }

    func testExcludedScopesAreUntouchedAndPartialBlocksCountTheirSize() throws {
        let model = ModelZoo.make("fmnist-cnn", seed: 3)!
        let before = model.stateDict()
        let config = SparsifierConfig(targetSparseRatio: 0.5, sparseBlockShape: [1, 16], stepInterval: 1, numTrials: 1,
                                      excludeScopes: ["conv1", "fc1"])
        let (s, _, channel) = try prepared(config, model: model)
        try hookStep(s, 1, model: model, channel: channel)
        XCTAssertEqual(s.kernels.map(\.parameter), ["conv2/weight", "fc2/weight"])
        for name in ["conv1/weight", "fc1/weight", "conv1/bias", "conv2/bias"] {
            XCTAssertEqual(model.parameter(named: name)!.value, before[name], "\(name) untouched")
        }
        // fc2 is [128, 10]: one partial block of 10 per row; half the rows are zeroed.
        let fc2 = s.kernels.first { $0.parameter == "fc2/weight" }!
        XCTAssertEqual(fc2.grid.blockCount, 128)
        XCTAssertEqual(fc2.grid.elementCount(ofBlock: 0), 10)
        XCTAssertEqual(zeroFraction(model.parameter(named: "fc2/weight")!.value), 0.5)
    }

    func testMasksOnlyGrowAndApplyToOptimizerSlots() throws {
        let config = SparsifierConfig(targetSparseRatio: 0.7, sparseBlockShape: [2, 8], stepInterval: 1, numTrials: 4)
        let (s, model, channel) = try prepared(config)
        var previous = s.keepFlags(parameter: "fc1/weight")!
        var rng = RNG(seed: 1)
        for step in 1...4 {
            // Weights move between decisions (zeroed ones too, as an update would before the mask).
            for p in model.parameters { p.value.addScaled(Tensor.uniform(shape: p.shape, low: -0.05, high: 0.05, rng: &rng)) }
            try hookStep(s, step, model: model, channel: channel)
            let now = s.keepFlags(parameter: "fc1/weight")!
            XCTAssertFalse(zip(now, previous).contains { $0 && !$1 }, "step \(step): no zeroed block comes back")
            previous = now
        }
        var slot = Tensor(shape: [3136, 128], repeating: 1)
        s.applyMasks(to: &slot, parameter: "fc1/weight")
        XCTAssertEqual(zeroFraction(slot), zeroFraction(model.parameter(named: "fc1/weight")!.value))
        var untouched = Tensor(shape: [128], repeating: 1)
        s.applyMasks(to: &untouched, parameter: "fc1/bias")
        XCTAssertEqual(untouched, Tensor(shape: [128], repeating: 1))
    }

    func testCheckpointRestoresTheMasksAndRefusesAnotherModel() throws {
        let config = SparsifierConfig(targetSparseRatio: 0.6, sparseBlockShape: [1, 16], stepInterval: 1, numTrials: 3)
        let (s, model, channel) = try prepared(config)
        for step in 1...2 { try hookStep(s, step, model: model, channel: channel) }
        let tensors = s.checkpointTensors(), state = try s.checkpointState()
        XCTAssertEqual(tensors.names.sorted(), s.kernels.map { "sparsifier/mask/\($0.parameter)" })
        let (r, _, _) = try prepared(config)
        try r.restore(tensors: tensors, state: state)
        XCTAssertEqual(r.trialsDone, 2)
        XCTAssertEqual(r.decisionTensors, s.decisionTensors)
        XCTAssertEqual(r.achievedSparsity, s.achievedSparsity)
        let (other, _, _) = try prepared(SparsifierConfig(excludeScopes: ["fc2"]))
        XCTAssertThrowsError(try other.restore(tensors: tensors, state: state)) { error in
            XCTAssertTrue("\(error)".contains("written for kernels"), "\(error)")
        }
        var bad = tensors
        bad["sparsifier/mask/fc1/weight"] = Tensor(shape: [3], repeating: 1)
        XCTAssertThrowsError(try r.restore(tensors: bad, state: state)) { error in
            XCTAssertEqual("\(error)", "sparsifier: sparsifier/mask/fc1/weight: shape [3], expected [3136, 8]")
        }
    }

    func testNoKernelInScopeIsAClearError() throws {
        XCTAssertThrowsError(try prepared(SparsifierConfig(includeScopes: ["conv9"]))) { error in
            XCTAssertTrue("\(error)".contains("include_scopes: 'conv9' matches no Conv2D/MatMul kernel of fmnist-cnn"), "\(error)")
        }
        // Every scope must name a kernel: a typo beside a good scope is not silently ignored,
        // in exclude_scopes neither (it would sparsify the layer meant to be protected).
        XCTAssertThrowsError(try prepared(SparsifierConfig(includeScopes: ["conv2", "fc_1"]))) { error in
            XCTAssertEqual("\(error)", "sparsifier.include_scopes: 'fc_1' matches no Conv2D/MatMul kernel of fmnist-cnn "
                           + "(kernels: conv1/weight, conv2/weight, fc1/weight, fc2/weight)")
        }
        XCTAssertThrowsError(try prepared(SparsifierConfig(excludeScopes: ["fc3"]))) { error in
            XCTAssertTrue("\(error)".contains("exclude_scopes: 'fc3'"), "\(error)")
        }
        XCTAssertThrowsError(try SparsifierConfig(includeScopes: ["/"]).validate()) { error in
            XCTAssertTrue("\(error)".contains("include_scopes"), "\(error)")
        }
        // Everything excluded: no kernel left.
        XCTAssertThrowsError(try prepared(SparsifierConfig(excludeScopes: ["conv1", "conv2", "fc1", "fc2"]))) { error in
            XCTAssertTrue("\(error)".contains("no Conv2D/MatMul kernel of fmnist-cnn"), "\(error)")
        }
    }

    func testSummarySectionHasTheReportSchema() throws {
        let config = SparsifierConfig(targetSparseRatio: 0.6, sparseBlockShape: [1, 16], stepInterval: 1, numTrials: 1)
        let (s, model, channel) = try prepared(config)
        try hookStep(s, 1, model: model, channel: channel)
        let json = try JSONSerialization.jsonObject(with: s.summarySection(model: model)) as! [String: Any]
        XCTAssertEqual(Set(json.keys), ["kind", "target_sparse_ratio", "sparse_block_shape", "pattern", "sort_range",
                                        "achieved_sparsity", "layers"])
        XCTAssertEqual(json["kind"] as? String, "sparsifier")
        XCTAssertTrue(json["pattern"] is NSNull)
        XCTAssertEqual(json["sparse_block_shape"] as? [Int], [1, 16])
        XCTAssertEqual(json["sort_range"] as? String, "local")
        let layers = json["layers"] as! [[String: Any]]
        XCTAssertEqual(layers.map { $0["name"] as! String }, ["conv1/weight", "conv2/weight", "fc1/weight", "fc2/weight"])
        let fc1 = layers[2]
        XCTAssertEqual(Set(fc1.keys), ["name", "shape", "sparsity", "blocks", "zero_blocks", "zero_block_fraction"])
        XCTAssertEqual(fc1["shape"] as? [Int], [3136, 128])
        XCTAssertEqual(fc1["blocks"] as? Int, 3136 * 8)
        XCTAssertEqual(fc1["zero_block_fraction"] as! Double, Double(fc1["zero_blocks"] as! Int) / Double(3136 * 8))
        XCTAssertEqual(s.summaryRows(model: model).count, 6)
    }
}
