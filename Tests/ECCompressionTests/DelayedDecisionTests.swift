import ECCollective
@testable import ECCompression
import ECNN
import ECTensor
import XCTest

/// Delayed decisions (`decisionDelay` 1, as `CompressionHook` sets it): the decision of trial
/// step s is computed in the background from the state at the start of step s + 1 — the
/// importance after step s, the weights with step s's masks — and every rank applies it after
/// the update of step s + 1; whatever training does meanwhile does not leak into it.
final class DelayedDecisionTests: XCTestCase {
    /// One step as `CompressionHook` drives it: `beforeStep`, the training (`train`), `afterStep`,
    /// the masks re-applied.
    @discardableResult
    func step(_ compressor: Compressor, _ step: Int, model: Model, channel: PayloadChannel,
              train: () -> Void) throws -> CompressionEvent? {
        try compressor.beforeStep(step, model: model)
        train()
        let event = try compressor.afterStep(step, model: model, channel: channel)
        for p in model.parameters { compressor.applyMasks(to: &p.value, parameter: p.name) }
        return event
    }

    func testPrunerDecidesFromTheStartOfTheNextStepAndAppliesAfterIt() throws {
        let model = TinyNet.model()
        let pruner = try preparedPruner(PrunerConfig(compressionRatio: 0.5, stepInterval: 2, numTrials: 3), model: model,
                                        groups: TinyNet.groups)
        pruner.decisionDelay = 1
        let channel = PayloadChannel(communicator: pruner.communicator!, environment: [:])
        var rng = RNG(seed: 4)
        func train() {
            randomizeGradients(model, rng: &rng)
            for p in model.parameters { p.value.addScaled(p.grad) }
        }
        var expected: [String: PayloadValue] = [:]
        for s in 1...7 {
            if s % 2 == 1, s > 1 { expected = pruner.decide(trial: s / 2) }  // the state at the start of step s
            let event = try step(pruner, s, model: model, channel: channel, train: train)
            let trials = s < 3 ? 0 : (s - 1) / 2
            XCTAssertEqual(pruner.trialsDone, trials, "step \(s)")
            if s % 2 == 0 {
                XCTAssertNil(event, "step \(s): a trial step's decision waits for the next step")
            } else if s > 1 {
                let e = try XCTUnwrap(event, "step \(s)")
                XCTAssertEqual(e.step, s)
                XCTAssertEqual(e.trial, trials)
                XCTAssertEqual(e.values["decision_step"], Double(s - 1))
                XCTAssertEqual(pruner.lastDecisionStep, s - 1)
                for group in ["conv1", "conv2", "fc1"] {
                    guard case let .mask(mask)? = expected[group] else { return XCTFail("no mask for \(group)") }
                    XCTAssertEqual(pruner.keepFlags(group: group), mask.values, "\(group) at step \(s)")
                }
            }
        }
        XCTAssertEqual(pruner.importanceUpdates, 6, "importance updated through the step that applies the last trial")
        XCTAssertEqual(channel.metrics.calls, 3)
    }

    /// A decision at the known last step is made at once; one pending when training stops is
    /// applied by `afterLastStep`.
    func testTheLastStepsDecisionIsAppliedBeforeTrainingEnds() throws {
        for knownEnd in [true, false] {
            let model = TinyNet.model()
            let pruner = try preparedPruner(PrunerConfig(compressionRatio: 0.5, stepInterval: 2, numTrials: 3), model: model,
                                            groups: TinyNet.groups)
            pruner.decisionDelay = 1
            if knownEnd { pruner.timing.finalStep = 4 }
            let channel = PayloadChannel(communicator: pruner.communicator!, environment: [:])
            var rng = RNG(seed: 4)
            var events: [CompressionEvent] = []
            for s in 1...4 {
                if let e = try step(pruner, s, model: model, channel: channel, train: { randomizeGradients(model, rng: &rng) }) {
                    events.append(e)
                }
            }
            if let e = try pruner.afterLastStep(4, model: model, channel: channel) { events.append(e) }
            XCTAssertEqual(events.map(\.step), [3, 4], "known end: \(knownEnd)")
            XCTAssertEqual(events.map { $0.values["decision_step"] }, [2, nil], "the last step's decision is its own step's")
            XCTAssertEqual(pruner.trialsDone, 2)
            XCTAssertNil(try pruner.afterLastStep(4, model: model, channel: channel), "nothing left")
        }
    }

    /// The sparsifier scores the weights as they are at the start of step s + 1; the training
    /// that changes them during the step (here: reversing every kernel's magnitudes) does not
    /// change the decision. The decision holds no copy of the weights once it has scored them.
    func testSparsifierScoresTheWeightsOfTheStartOfTheNextStep() throws {
        let model = try XCTUnwrap(ModelZoo.make("fmnist-cnn", seed: 3))
        let config = SparsifierConfig(targetSparseRatio: 0.6, sparseBlockShape: [1, 16], stepInterval: 2, numTrials: 2)
        let sparsifier = try Sparsifier(config: config)
        let world = SingleProcessCommunicator()
        try sparsifier.prepare(model: model, communicator: world)
        sparsifier.decisionDelay = 1
        let channel = PayloadChannel(communicator: world)
        let kernels = sparsifier.kernels.map(\.parameter)
        var expected: [String: PayloadValue] = [:]
        for s in 1...3 {
            if s == 3 { expected = sparsifier.decide(trial: 1) }
            try step(sparsifier, s, model: model, channel: channel) {
                guard s == 3 else { return }
                for name in kernels {  // the largest weights become the smallest
                    let p = model.parameter(named: name)!
                    let top = p.value.scalars.map(abs).max()!
                    p.value.withUnsafeMutableBufferPointer { w in
                        for i in w.indices { w[i] = (w[i] < 0 ? -1 : 1) * (top - abs(w[i])) }
                    }
                }
            }
        }
        XCTAssertEqual(sparsifier.trialsDone, 1)
        for name in kernels {
            guard case let .mask(mask)? = expected[name] else { return XCTFail("no mask for \(name)") }
            XCTAssertEqual(sparsifier.keepFlags(parameter: name), mask.values, name)
        }
    }
}
