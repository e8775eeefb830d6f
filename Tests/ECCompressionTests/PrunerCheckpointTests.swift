import ECCollective
@testable import ECCompression
import ECNN
import ECTensor
import ECTestSupport
import Foundation
import XCTest

/// Saving and restoring the pruner's state (resume).
final class PrunerCheckpointTests: XCTestCase {
    private let config = PrunerConfig(compressionRatio: 0.6, stepInterval: 2, numTrials: 4, emaAlpha: 0.9)

    /// Runs `steps` on `pruner`, with gradients from `rng`.
    private func run(_ pruner: Pruner, _ model: Model, steps: ClosedRange<Int>, rng: inout RNG) throws {
        let channel = PayloadChannel(communicator: pruner.communicator!, environment: [:])
        for step in steps {
            randomizeGradients(model, rng: &rng)
            try pruner.afterStep(step, model: model, channel: channel)
        }
    }

    func testAResumedPrunerContinuesExactlyLikeAnUninterruptedOne() throws {
        let model = TinyNet.model()
        let original = try preparedPruner(config, model: model, groups: TinyNet.groups)
        var rng = RNG(seed: 21)
        try run(original, model, steps: 1...5, rng: &rng)
        let tensors = original.checkpointTensors()
        let state = try original.checkpointState()
        XCTAssertEqual(tensors.names, ["pruner/importance/conv1", "pruner/importance/conv2", "pruner/importance/fc1",
                                       "pruner/keep/conv1", "pruner/keep/conv2", "pruner/keep/fc1"])
        XCTAssertEqual(tensors["pruner/keep/conv2"]?.shape, [6])
        let json = try XCTUnwrap(JSONSerialization.jsonObject(with: state) as? [String: Any])
        XCTAssertEqual(json["format_version"] as? Int, 1)
        XCTAssertEqual(json["trials_done"] as? Int, 2)
        XCTAssertEqual(json["last_decision_step"] as? Int, 4)

        let resumedModel = TinyNet.model()
        for p in resumedModel.parameters { p.value = model.parameter(named: p.name)!.value }
        let resumed = try preparedPruner(config, model: resumedModel, groups: TinyNet.groups)
        try resumed.restore(tensors: tensors, state: state)
        XCTAssertEqual(resumed.checkpointTensors(), tensors)
        XCTAssertEqual(try resumed.checkpointState(), state)
        XCTAssertEqual(resumed.removedParameterCount, original.removedParameterCount)

        var resumedRNG = rng
        try run(original, model, steps: 6...9, rng: &rng)
        try run(resumed, resumedModel, steps: 6...9, rng: &resumedRNG)
        XCTAssertEqual(resumed.checkpointTensors(), original.checkpointTensors(), "bit-identical EMAs and decisions")
        XCTAssertEqual(resumed.trialsDone, 4)
        XCTAssertEqual(resumedModel.stateDict(), model.stateDict())
    }

    func testMismatchedCheckpointsAreClearErrors() throws {
        let source = try preparedPruner(config, model: TinyNet.model(), groups: TinyNet.groups)
        var rng = RNG(seed: 3)
        try run(source, TinyNet.model(), steps: 1...2, rng: &rng)
        let tensors = source.checkpointTensors(), state = try source.checkpointState()

        func restoring(_ tensors: NamedTensors, _ state: Data) throws -> PrunerError? {
            let target = try preparedPruner(config, model: TinyNet.model(), groups: TinyNet.groups)
            let before = target.checkpointTensors()
            let error = thrownError(PrunerError.self) { try target.restore(tensors: tensors, state: state) }
            XCTAssertEqual(target.checkpointTensors(), before, "nothing restored on failure")
            return error
        }
        var missing = tensors
        missing["pruner/keep/fc1"] = nil
        XCTAssertEqual(try restoring(missing, state), .checkpointMissingTensor(name: "pruner/keep/fc1"))
        var reshaped = tensors
        reshaped["pruner/importance/conv2"] = Tensor(shape: [5], repeating: 1)
        XCTAssertEqual(try restoring(reshaped, state),
                       .checkpointShapeMismatch(name: "pruner/importance/conv2", found: [5], expected: [6]))
        var unexpected = tensors
        unexpected["pruner/keep/conv9"] = Tensor(shape: [2], repeating: 1)
        unexpected["conv1/weight"] = Tensor(shape: [1], repeating: 1)  // not the pruner's: ignored
        XCTAssertEqual(try restoring(unexpected, state), .checkpointUnexpectedTensor(name: "pruner/keep/conv9"))
        var halfKept = tensors
        halfKept["pruner/keep/conv1"] = Tensor(shape: [4], scalars: [1, 0.5, 1, 1])
        XCTAssertEqual(try restoring(halfKept, state),
                       .checkpointInvalidValue(name: "pruner/keep/conv1", reason: "keep flag 0.5, expected 0 or 1"))
        var noneKept = tensors
        noneKept["pruner/keep/fc1"] = Tensor(shape: [5], repeating: 0)
        XCTAssertEqual(try restoring(noneKept, state),
                       .checkpointInvalidValue(name: "pruner/keep/fc1", reason: "no channel kept"))

        let version = Data(String(decoding: state, as: UTF8.self)
            .replacingOccurrences(of: "\"format_version\":1", with: "\"format_version\":7").utf8)
        XCTAssertEqual(try restoring(tensors, version), .checkpointUnsupportedVersion(found: 7, supported: 1))
        let otherGroups = Data(String(decoding: state, as: UTF8.self)
            .replacingOccurrences(of: "\"fc1\"", with: "\"fc9\"").utf8)
        XCTAssertEqual(try restoring(tensors, otherGroups),
                       .checkpointState(reason: "written for prunable groups [\"conv1\", \"conv2\", \"fc9\"], "
                                        + "this model has [\"conv1\", \"conv2\", \"fc1\"]"))
        let tooMany = Data(String(decoding: state, as: UTF8.self)
            .replacingOccurrences(of: "\"trials_done\":1", with: "\"trials_done\":5").utf8)
        XCTAssertEqual(try restoring(tensors, tooMany),
                       .checkpointState(reason: "trials_done is 5, expected 0...4"))
        guard case .checkpointState? = try restoring(tensors, Data("not json".utf8)) else {
            return XCTFail("unreadable JSON must be a checkpointState error")
        }
        let unprepared = try Pruner(config: config, groups: TinyNet.groups)
        XCTAssertEqual(thrownError(PrunerError.self) { try unprepared.restore(tensors: tensors, state: state) },
                       .notPrepared(operation: "restore"))
        XCTAssertEqual(String(describing: PrunerError.checkpointShapeMismatch(name: "pruner/keep/conv2", found: [5],
                                                                             expected: [6])),
                       "pruner: pruner/keep/conv2: checkpoint has shape [5], the model's group expects [6]")
    }
}
