import ECCollective
@testable import ECCompression
import ECNN
import ECTensor
import ECTestSupport
import Foundation
import XCTest

/// The pruner driven through `afterStep` as the training hook drives it.
final class PrunerTests: XCTestCase {
    func testGradualPruningEndToEndInOneProcess() throws {
        let model = TinyNet.model()
        let config = PrunerConfig(compressionRatio: 0.5, stepInterval: 2, numTrials: 3)
        var groupsBuilt = 0
        let pruner = try Pruner(config: config) { built in
            XCTAssertTrue(built === model)
            groupsBuilt += 1
            return TinyNet.groups.reversed()
        }
        XCTAssertEqual(pruner.kind, "pruner")
        try pruner.prepare(model: model, communicator: SingleProcessCommunicator())
        XCTAssertEqual(groupsBuilt, 1)
        XCTAssertEqual(pruner.groups.map(\.id), ["conv1", "conv2", "fc1", "fc2"], "groups in id order")
        let channel = PayloadChannel(communicator: pruner.communicator!, environment: [:])
        var rng = RNG(seed: 9)
        var prunedSoFar: [String: Set<Int>] = [:]
        for step in 1...8 {
            randomizeGradients(model, rng: &rng)
            for p in model.parameters { p.value.addScaled(p.grad) }  // an "optimizer" update
            try hookStep(pruner, step, model: model, channel: channel)
            let trial = step / 2 < 4 ? step / 2 : 3
            XCTAssertEqual(pruner.trialsDone, trial, "step \(step)")
            XCTAssertEqual(pruner.lastDecisionStep, trial == 0 ? nil : 2 * trial)
            if trial > 0 {
                XCTAssertGreaterThanOrEqual(pruner.achievedRatio, pruner.schedule.targetFraction(afterTrial: trial))
            }
            for id in ["conv1", "conv2", "fc1"] {
                let now = Set(pruned(pruner.keepFlags(group: id)))
                XCTAssertTrue(now.isSuperset(of: prunedSoFar[id, default: []]))
                prunedSoFar[id] = now
            }
            if step % 2 == 0 && step <= 6 {  // just decided: the values carry the masks
                for p in model.parameters {
                    var masked = p.value
                    pruner.applyMasks(to: &masked, parameter: p.name)
                    XCTAssertEqual(masked, p.value, "\(p.name) at step \(step)")
                }
            }
        }
        XCTAssertEqual(channel.metrics.calls, 3, "one broadcast per trial")
        XCTAssertEqual(pruner.importanceUpdates, 6)
        XCTAssertLessThan(pruner.achievedRatio - 0.5, 64.0 / 405, "within one channel of the target")
        let zeros = model.parameters.reduce(0) { $0 + $1.value.scalars.filter { $0 == 0 }.count }
        XCTAssertGreaterThanOrEqual(zeros, pruner.removedParameterCount)
    }

    func testSummaryCountsTheExtractedModel() throws {
        let model = TinyNet.model()
        let pruner = try preparedPruner(PrunerConfig(compressionRatio: 0.5), model: model, groups: TinyNet.groups)
        pruner.setKeep(["conv1": [false, true, true, true], "conv2": Array(repeating: true, count: 6),
                        "fc1": Array(repeating: true, count: 5)])
        let json = try XCTUnwrap(JSONSerialization.jsonObject(with: pruner.summarySection(model: model)) as? [String: Any])
        XCTAssertEqual(json["kind"] as? String, "pruner")
        XCTAssertEqual(json["prunable_params"] as? Int, 405)
        XCTAssertEqual(json["params_removed"] as? Int, 64)
        XCTAssertEqual(try XCTUnwrap(json["achieved_ratio"] as? Double), 64.0 / 405, accuracy: 1e-12)
        XCTAssertEqual(json["params_before"] as? Int, 405)
        XCTAssertEqual(json["params_after"] as? Int, 405 - 64)
        // conv1 loses 1/4 of its kernel (288 / 4), conv2 1/4 of its kernel (1728 / 4).
        XCTAssertEqual(json["flops_before"] as? Int, TinyNet.flops)
        XCTAssertEqual(json["flops_after"] as? Int, TinyNet.flops - 72 - 432)
        let groups = try XCTUnwrap(json["groups"] as? [[String: Any]])
        XCTAssertEqual(groups.map { $0["id"] as? String }, ["conv1", "conv2", "fc1", "fc2"])
        XCTAssertEqual(groups.map { $0["channels_before"] as? Int }, [4, 6, 5, 3])
        XCTAssertEqual(groups.map { $0["channels_after"] as? Int }, [3, 6, 5, 3])
        XCTAssertEqual(groups.map { $0["layers"] as? [String] }, [["conv1"], ["conv2"], ["fc1"], ["fc2"]])
        XCTAssertEqual(groups.map { $0["prunable"] as? Bool }, [true, true, true, false])
    }

    /// Rank 1 of 2 never computes importance, and adopts exactly the chief's decisions.
    func testWorkersOnlyAdoptTheChiefsDecisions() throws {
        let tape = TapeCommunicator.Tape()
        let config = PrunerConfig(compressionRatio: 0.4, stepInterval: 3, numTrials: 2)
        let chiefModel = TinyNet.model(), workerModel = TinyNet.model()
        let chief = try preparedPruner(config, model: chiefModel, groups: TinyNet.groups,
                                       communicator: TapeCommunicator(rank: 0, tape: tape))
        let worker = try preparedPruner(config, model: workerModel, groups: TinyNet.groups,
                                        communicator: TapeCommunicator(rank: 1, tape: tape))
        let chiefChannel = PayloadChannel(communicator: chief.communicator!, environment: [:])
        let workerChannel = PayloadChannel(communicator: worker.communicator!, environment: [:])
        var rng = RNG(seed: 4)
        for step in 1...7 {
            randomizeGradients(chiefModel, rng: &rng)
            for (c, w) in zip(chiefModel.parameters, workerModel.parameters) { w.grad = c.grad }  // allreduced
            try chief.afterStep(step, model: chiefModel, channel: chiefChannel)
            try worker.afterStep(step, model: workerModel, channel: workerChannel)
            XCTAssertTrue(tape.chunks.isEmpty, "every broadcast was received")
            for id in ["conv1", "conv2", "fc1"] {
                XCTAssertEqual(worker.keepFlags(group: id), chief.keepFlags(group: id), "\(id) at step \(step)")
            }
            XCTAssertEqual(workerModel.stateDict(), chiefModel.stateDict())
        }
        XCTAssertEqual(chief.importanceUpdates, 6)
        XCTAssertEqual(worker.importanceUpdates, 0)
        XCTAssertEqual(worker.importance(group: "conv2"), Array(repeating: 0, count: 6))
        XCTAssertEqual(worker.trialsDone, 2)
        XCTAssertGreaterThan(worker.removedParameterCount, 0)
        XCTAssertEqual(workerChannel.metrics.calls, 2)
    }

    /// A worker refuses decisions that do not fit its groups instead of training on with them.
    func testAWorkerRefusesAPayloadThatDoesNotFitItsGroups() throws {
        let keepAll: [String: PayloadValue] = ["conv1": .mask(Mask(shape: [4], repeating: true)),
                                               "conv2": .mask(Mask(shape: [6], repeating: true)),
                                               "fc1": .mask(Mask(shape: [5], repeating: true))]
        var missing = keepAll
        missing["fc1"] = nil
        var extra = keepAll
        extra["fc2"] = .mask(Mask([true, true, false]))
        var empty = keepAll
        empty["conv1"] = .mask(Mask(shape: [4], repeating: false))
        var wrongShape = keepAll
        wrongShape["conv2"] = .mask(Mask(shape: [5], repeating: true))
        let cases: [([String: PayloadValue], PrunerError)] = [
            (missing, .decisionMismatch(group: "fc1", reason: "no mask in the payload")),
            (extra, .decisionMismatch(group: "fc2", reason: "no prunable group has this id")),
            (empty, .decisionMismatch(group: "conv1", reason: "every channel pruned")),
            (wrongShape, .decisionMismatch(group: "conv2", reason: "mask shape [5], expected [6]")),
        ]
        for (entries, expected) in cases {
            let tape = TapeCommunicator.Tape()
            let worker = try preparedPruner(PrunerConfig(compressionRatio: 0.5), model: TinyNet.model(),
                                            groups: TinyNet.groups, communicator: TapeCommunicator(rank: 1, tape: tape))
            let bytes = try PayloadCodec.encode(kind: .masks, step: 1, entries: entries)
            tape.chunks = [withUnsafeBytes(of: UInt64(bytes.count).littleEndian) { Array($0) }, bytes]
            let channel = PayloadChannel(communicator: worker.communicator!, environment: [:])
            let error = thrownError(PrunerError.self) { try worker.afterStep(1, model: TinyNet.model(), channel: channel) }
            XCTAssertEqual(error, expected)
            XCTAssertEqual(worker.trialsDone, 0)
            XCTAssertEqual(worker.keepFlags(group: "conv1"), [true, true, true, true], "nothing adopted")
        }
    }

    func testGroupsThatDoNotFitTheModelAreRefused() throws {
        let bad = ChannelGroup(id: "conv1", channels: 4, slices: [producer("conv1/weight", 3)], producers: ["conv1/weight"],
                               prunable: true, parametersPerChannel: 10, flopsPerChannel: 1)
        let missing = ChannelGroup(id: "x", channels: 2, slices: [producer("x/weight", 2)], producers: ["x/weight"],
                                   prunable: true, parametersPerChannel: 1, flopsPerChannel: 1)
        for (groups, reason) in [([bad], "slice of conv1/weight has period 3 and offset 0, the group has 4 channels"),
                                 ([missing], "the model has no parameter 'x/weight'")] {
            let pruner = try Pruner(config: PrunerConfig(), groups: groups)
            let error = thrownError(PrunerError.self) {
                try pruner.prepare(model: TinyNet.model(), communicator: SingleProcessCommunicator())
            }
            XCTAssertEqual(error, .invalidGroup(group: groups[0].id, reason: reason))
        }
        let unprepared = try Pruner(config: PrunerConfig(), groups: [])
        let channel = PayloadChannel(communicator: SingleProcessCommunicator(), environment: [:])
        XCTAssertEqual(thrownError(PrunerError.self) { try unprepared.afterStep(1, model: TinyNet.model(), channel: channel) },
                       .notPrepared(operation: "afterStep"))
    }

    /// The sparsifier's scope check, shared (`ScopeFilter.requireMatches`): a scope that names no
    /// prunable kernel, or scopes that leave no prunable group, are refused at `prepare` rather
    /// than run as a job that prunes less than asked, or nothing.
    func testScopesThatMatchNothingOrLeaveNothingToPruneAreRefused() throws {
        let model = try XCTUnwrap(ModelZoo.make("fmnist-cnn", seed: 1))
        func prepareError(_ config: PrunerConfig) throws -> String? {
            let pruner = try Pruner(config: config)
            do {
                try pruner.prepare(model: model, communicator: SingleProcessCommunicator())
                return nil
            } catch {
                return "\(error)"
            }
        }
        XCTAssertEqual(try prepareError(PrunerConfig(compressionRatio: 0.5, includeScopes: ["conv2", "conv9"])),
                       "pruner.include_scopes: 'conv9' matches no Conv2D/MatMul kernel of fmnist-cnn "
                       + "(kernels: conv1/weight, conv2/weight, fc1/weight, fc2/weight)")
        XCTAssertEqual(try prepareError(PrunerConfig(compressionRatio: 0.5, excludeScopes: ["fc_1"])),
                       "pruner.exclude_scopes: 'fc_1' matches no Conv2D/MatMul kernel of fmnist-cnn "
                       + "(kernels: conv1/weight, conv2/weight, fc1/weight, fc2/weight)")
        // A MatMul layer when only Conv2D may be pruned.
        XCTAssertEqual(try prepareError(PrunerConfig(compressionRatio: 0.5, includeScopes: ["fc1"], prunableOpTypes: ["Conv2D"])),
                       "pruner.include_scopes: 'fc1' matches no Conv2D kernel of fmnist-cnn (kernels: conv1/weight, conv2/weight)")
        // Only the classifier in scope: nothing can be pruned.
        let nothing = try XCTUnwrap(try prepareError(PrunerConfig(compressionRatio: 0.5, includeScopes: ["fc2"])))
        XCTAssertTrue(nothing.hasPrefix("pruner: no channel group of fmnist-cnn inside include_scopes [\"fc2\"]"), nothing)
        XCTAssertNil(try prepareError(PrunerConfig(compressionRatio: 0.5, includeScopes: ["conv1", "fc1/"],
                                                   excludeScopes: ["conv2"])))
    }
}
