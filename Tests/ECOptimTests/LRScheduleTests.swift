import ECOptim
import Foundation
import XCTest

final class LRScheduleTests: XCTestCase {
    private func assertRates(_ schedule: LRSchedule, _ expected: [Int: Double],
                             file: StaticString = #filePath, line: UInt = #line) {
        for (step, rate) in expected.sorted(by: { $0.key < $1.key }) {
            XCTAssertEqual(Double(schedule.learningRate(at: step)), rate, accuracy: 1e-7 * max(1, rate),
                           "step \(step)", file: file, line: line)
        }
    }

    func testConstant() {
        assertRates(.constant(0.05), [0: 0.05, 1: 0.05, 1_000_000: 0.05])
    }

    func testLinearWarmupRampsFromZeroToTheBaseRate() {
        assertRates(.constant(0.1, warmupSteps: 4), [0: 0, 1: 0.025, 2: 0.05, 3: 0.075, 4: 0.1, 100: 0.1])
    }

    func testLinearWarmupFromAStartFactor() {
        // s + (1 − s)·t/W with s = 0.2, W = 10.
        assertRates(.constant(1, warmupSteps: 10, warmupStartFactor: 0.2), [0: 0.2, 5: 0.6, 9: 0.92, 10: 1])
    }

    func testStepDecayChangesExactlyAtMultiplesOfTheStepSize() {
        let schedule = LRSchedule.stepDecay(0.1, stepSize: 30, gamma: 0.1)
        assertRates(schedule, [0: 0.1, 29: 0.1, 30: 0.01, 59: 0.01, 60: 0.001, 90: 0.0001])
    }

    func testStepDecayWithWarmupKeepsAbsoluteBoundaries() {
        let schedule = LRSchedule.stepDecay(0.1, stepSize: 10, gamma: 0.5, warmupSteps: 5)
        assertRates(schedule, [0: 0, 1: 0.02, 4: 0.08, 5: 0.1, 9: 0.1, 10: 0.05, 20: 0.025])
    }

    func testCosineEndpointsAndMidpoint() {
        let schedule = LRSchedule.cosine(0.1, totalSteps: 100, minLearningRate: 0.001)
        let quarter = 0.001 + 0.099 * 0.5 * (1 + cos(Double.pi / 4))
        assertRates(schedule, [0: 0.1, 25: quarter, 50: 0.0505, 100: 0.001, 101: 0.001, 10_000: 0.001])
        assertRates(.cosine(2, totalSteps: 10), [0: 2, 5: 1, 10: 0])
    }

    func testCosineWithWarmupMultipliesTheDecayedRate() {
        let schedule = LRSchedule.cosine(1, totalSteps: 100, warmupSteps: 10)
        let decayedAt5 = 0.5 * (1 + cos(Double.pi * 0.05))
        assertRates(schedule, [0: 0, 5: 0.5 * decayedAt5, 50: 0.5, 100: 0])
    }

    func testRoundTripsThroughJSON() throws {
        for schedule in [LRSchedule.constant(0.1), .stepDecay(0.1, stepSize: 3, gamma: 0.9, warmupSteps: 2),
                         .cosine(0.2, totalSteps: 50, minLearningRate: 0.01, warmupSteps: 5, warmupStartFactor: 0.1)] {
            let data = try JSONEncoder().encode(schedule)
            XCTAssertEqual(try JSONDecoder().decode(LRSchedule.self, from: data), schedule)
        }
    }

    func testValidationNamesTheKeyAndTheValue() {
        assertOptimizerError("optimizer.lr must be > 0, got -0.1") { try LRSchedule.constant(-0.1).validate() }
        assertOptimizerError("optimizer.lr must be > 0, got 0.0") { try LRSchedule.constant(0).validate() }
        assertOptimizerError("optimizer.schedule.gamma must be in (0, 1], got -0.5") {
            try LRSchedule.stepDecay(0.1, stepSize: 10, gamma: -0.5).validate()
        }
        assertOptimizerError("optimizer.schedule.step_size must be > 0, got 0") {
            try LRSchedule.stepDecay(0.1, stepSize: 0, gamma: 0.5).validate()
        }
        assertOptimizerError("optimizer.schedule.total_steps must be > 0, got -3") {
            try LRSchedule.cosine(0.1, totalSteps: -3).validate()
        }
        assertOptimizerError("optimizer.schedule.min_lr must be in [0, optimizer.lr] = [0, 0.1], got 0.2") {
            try LRSchedule.cosine(0.1, totalSteps: 10, minLearningRate: 0.2).validate()
        }
        assertOptimizerError("optimizer.schedule.warmup_steps must be >= 0, got -1") {
            try LRSchedule.constant(0.1, warmupSteps: -1).validate()
        }
        assertOptimizerError("optimizer.schedule.warmup_start_factor must be in [0, 1], got 1.5") {
            try LRSchedule.constant(0.1, warmupSteps: 5, warmupStartFactor: 1.5).validate()
        }
        XCTAssertNoThrow(try LRSchedule.cosine(0.1, totalSteps: 10, minLearningRate: 0.1, warmupSteps: 3).validate())
    }
}
