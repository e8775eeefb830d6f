import ECNN
import ECOptim
import ECTensor
import XCTest

final class OptimizerStateTests: XCTestCase {
    /// A small model: a [2,3] kernel, a bias and a running mean (not trainable).
    private func makeModel() -> [Parameter] {
        [Parameter(name: "conv1/weight", role: .weight,
                   value: Tensor(shape: [2, 3], scalars: [0.1, -0.2, 0.3, 0.4, -0.5, 0.6])),
         makeParameter("conv1/bias", [0.01, 0.02, 0.03], role: .bias),
         makeParameter("bn1/moving_mean", [0, 0, 0], role: .movingMean)]
    }

    /// Deterministic, step-dependent gradients.
    private func setGrads(_ model: [Parameter], step: Int) {
        for (j, p) in model.enumerated() {
            setGrad(p, (0..<p.value.count).map { Float(sin(Double(step * 7 + j * 3 + $0))) })
        }
    }

    private func train(_ optimizer: Optimizer, _ model: [Parameter], steps: Range<Int>) {
        for step in steps {
            setGrads(model, step: step)
            optimizer.step(model)
        }
    }

    private func copy(_ model: [Parameter]) -> [Parameter] {
        model.map { Parameter(name: $0.name, role: $0.role, value: $0.value) }
    }

    private let factories: [(String, () throws -> Optimizer)] = [
        ("SGD", { try SGD(schedule: .cosine(0.1, totalSteps: 6, warmupSteps: 2), momentum: 0.9) }),
        ("SGD nesterov", { try SGD(learningRate: 0.1, momentum: 0.9, nesterov: true, weightDecay: 0.01) }),
        ("Adam", { try Adam(schedule: .stepDecay(0.01, stepSize: 2, gamma: 0.5), weightDecay: 0.01) }),
        ("AdamW", { try AdamW(learningRate: 0.01) }),
    ]

    func testExportImportIntoAFreshOptimizerGivesIdenticalUpdates() throws {
        for (label, make) in factories {
            let original = try make(), model = makeModel()
            train(original, model, steps: 0..<3)
            let resumed = try make(), resumedModel = copy(model)
            try resumed.importState(original.exportState(), for: resumedModel)
            XCTAssertEqual(resumed.stepCount, 3, label)
            XCTAssertEqual(resumed.learningRate, original.learningRate, label)
            train(original, model, steps: 3..<6)
            train(resumed, resumedModel, steps: 3..<6)
            for (a, b) in zip(model, resumedModel) { XCTAssertEqual(a.value, b.value, "\(label) \(a.name)") }
            XCTAssertEqual(original.exportState(), resumed.exportState(), label)
        }
    }

    func testExportedNamesAndStepEncoding() throws {
        let adam = try Adam(learningRate: 0.01), model = makeModel()
        train(adam, model, steps: 0..<2)
        let state = adam.exportState()
        XCTAssertEqual(state.names, ["optimizer/conv1/bias/m", "optimizer/conv1/bias/v",
                                     "optimizer/conv1/weight/m", "optimizer/conv1/weight/v", "optimizer/step"])
        XCTAssertEqual(state["optimizer/conv1/weight/m"]?.shape, [2, 3])
        XCTAssertEqual(state["optimizer/step"], Tensor(shape: [2], scalars: [0, 2]))
    }

    func testStepCountsBeyondFloatPrecisionRoundTripExactly() throws {
        var state = NamedTensors()
        state["optimizer/step"] = Tensor(shape: [2], scalars: [3, 5])
        let sgd = try SGD(learningRate: 0.1)
        try sgd.importState(state, for: makeModel())
        XCTAssertEqual(sgd.stepCount, 3 * (1 << 24) + 5)
        sgd.step(makeModel())
        XCTAssertEqual(sgd.exportState()["optimizer/step"]?.scalars, [3, 6])
    }

    func testStateBeforeTheFirstStepImportsWithoutSlots() throws {
        let sgd = try SGD(learningRate: 0.1, momentum: 0.9)
        XCTAssertEqual(sgd.exportState().names, ["optimizer/step"])
        try SGD(learningRate: 0.1, momentum: 0.9).importState(sgd.exportState(), for: makeModel())
    }

    func testEntriesOutsideTheOptimizerNamespaceAreIgnored() throws {
        let sgd = try SGD(learningRate: 0.1, momentum: 0.9), model = makeModel()
        train(sgd, model, steps: 0..<1)
        var checkpoint = sgd.exportState()
        checkpoint["conv1/weight"] = model[0].value
        let resumed = try SGD(learningRate: 0.1, momentum: 0.9)
        try resumed.importState(checkpoint, for: model)
        XCTAssertEqual(resumed.exportState(), sgd.exportState())
    }

    func testImportErrorsNameTheEntryAndShapes() throws {
        let sgd = try SGD(learningRate: 0.1, momentum: 0.9), model = makeModel()
        train(sgd, model, steps: 0..<1)
        let good = sgd.exportState()
        let fresh = try SGD(learningRate: 0.1, momentum: 0.9)

        var wrongShape = good
        wrongShape["optimizer/conv1/weight/momentum"] = Tensor(shape: [3, 2], repeating: 0)
        assertOptimizerError("optimizer/conv1/weight/momentum: checkpoint has shape [3,2], model expects [2,3]") {
            try fresh.importState(wrongShape, for: model)
        }

        var missing = good
        missing["optimizer/conv1/bias/momentum"] = nil
        assertOptimizerError("optimizer state has no 'optimizer/conv1/bias/momentum' (expected shape [3]); "
                                + "the state was saved by another optimizer or for another model") {
            try fresh.importState(missing, for: model)
        }

        var noStep = good
        noStep["optimizer/step"] = nil
        assertOptimizerError("optimizer state has no 'optimizer/step' (expected shape [2]); "
                                + "the state was saved by another optimizer or for another model") {
            try fresh.importState(noStep, for: model)
        }

        var badStep = good
        badStep["optimizer/step"] = Tensor(shape: [2], scalars: [0, -1])
        assertOptimizerError("optimizer/step must hold [high, low] with step = high·2^24 + low, "
                                + "both integers in [0, 2^24), got [0.0, -1.0]") {
            try fresh.importState(badStep, for: model)
        }

        var unknownParameter = good
        unknownParameter["optimizer/conv9/weight/momentum"] = Tensor(shape: [1], repeating: 0)
        assertOptimizerError("optimizer state has unexpected entry 'optimizer/conv9/weight/momentum': "
                                + "the model has no trainable parameter 'conv9/weight'") {
            try fresh.importState(unknownParameter, for: model)
        }

        assertOptimizerError("optimizer state has unexpected entry 'optimizer/conv1/bias/momentum': "
                                + "Adam keeps no slot 'momentum' (its slots: m, v)") {
            try Adam(learningRate: 0.1).importState(good, for: model)
        }
        assertOptimizerError("optimizer state has unexpected entry 'optimizer/conv1/bias/momentum': "
                                + "SGD keeps no slot 'momentum' (its slots: none)") {
            try SGD(learningRate: 0.1).importState(good, for: model)
        }

        // A failed import leaves the optimizer as it was.
        XCTAssertEqual(fresh.stepCount, 0)
        XCTAssertEqual(fresh.exportState().names, ["optimizer/step"])
    }

    func testForEachSlotLetsACompressorMaskThePrunedState() throws {
        for (label, make) in factories {
            let optimizer = try make(), model = makeModel()
            train(optimizer, model, steps: 0..<2)
            let mask: [Float] = [1, 0, 1, 1, 0, 1]
            var visited = 0
            optimizer.forEachSlot(of: "conv1/weight") { slot in
                visited += 1
                slot.withUnsafeMutableBufferPointer { s in for i in 0..<s.count { s[i] *= mask[i] } }
            }
            XCTAssertEqual(visited, optimizer.slotNames.count, label)
            for slot in optimizer.slotNames {
                let values = optimizer.exportState()["optimizer/conv1/weight/\(slot)"]!.scalars
                XCTAssertEqual([values[1], values[4]], [0, 0], "\(label) \(slot)")
                XCTAssertTrue(values[0] != 0 && values[5] != 0, "\(label) \(slot)")
            }
            var untouched = 0
            optimizer.forEachSlot(of: "no/such/parameter") { _ in untouched += 1 }
            XCTAssertEqual(untouched, 0, label)
        }
    }
}
