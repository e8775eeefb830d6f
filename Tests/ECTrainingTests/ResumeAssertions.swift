import EasyCompression
import Foundation
import XCTest

/// Runs `config` uninterrupted, then interrupted after `interruptAt` steps and resumed from
/// that checkpoint (in sibling folders of `work`), and asserts both end with bit-identical
/// weights and, for every saved tensor whose name starts with one of `prefixes`, identical
/// state. Returns the two outcomes.
@discardableResult
func assertResumeEqualsUninterrupted(_ config: JobConfig, interruptAt: Int, in work: URL, prefixes: [String] = [],
                                     file: StaticString = #filePath, line: UInt = #line) throws
    -> (straight: TrainOutcome, resumed: TrainOutcome) {
    var config = config
    let log = Logger(quiet: true)
    config.saveDir = work.appendingPathComponent("straight").path
    let straight = try TrainJob.run(config, communicator: SingleProcessCommunicator(), log: log)
    config.saveDir = work.appendingPathComponent("resumed").path
    var first = config
    first.steps = interruptAt
    _ = try TrainJob.run(first, communicator: SingleProcessCommunicator(), log: log)
    let resumed = try TrainJob.run(config, communicator: SingleProcessCommunicator(), log: log, resume: true)
    XCTAssertEqual(resumed.summary.steps, config.steps, file: file, line: line)
    XCTAssertEqual(resumed.model.stateDict(), straight.model.stateDict(), "bit-identical weights", file: file, line: line)
    let a = try WeightLoader.readTensors(from: straight.saveDir.path), b = try WeightLoader.readTensors(from: resumed.saveDir.path)
    for name in a.names where prefixes.contains(where: { name.hasPrefix($0) }) {
        XCTAssertEqual(a[name], b[name], name, file: file, line: line)
    }
    return (straight, resumed)
}
