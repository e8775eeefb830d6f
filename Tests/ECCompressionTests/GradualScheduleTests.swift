@testable import ECCompression
import XCTest

/// Zhu & Gupta's cubic schedule over the trials.
final class GradualScheduleTests: XCTestCase {
    func testTargetsFollowTheCubicAndReachTheRatioAtTheLastTrial() {
        let schedule = GradualSchedule(finalRatio: 0.8, stepInterval: 10, numTrials: 4)
        // r_k = 0.8·(1 − (1 − k/4)³): 1 − 27/64, 1 − 1/8, 1 − 1/64, 1.
        let expected = [0, 0.8 * 37 / 64, 0.8 * 7 / 8, 0.8 * 63 / 64, 0.8]
        for k in 0...4 {
            XCTAssertEqual(schedule.targetFraction(afterTrial: k), expected[k], accuracy: 1e-15, "trial \(k)")
        }
        XCTAssertEqual(schedule.targetFraction(afterTrial: 4), 0.8)  // exactly R
        XCTAssertEqual(GradualSchedule(finalRatio: 0.3, stepInterval: 1, numTrials: 1).targetFraction(afterTrial: 1), 0.3)
        let awkward = GradualSchedule(finalRatio: 0.7, stepInterval: 1, numTrials: 3)
        XCTAssertEqual(awkward.targetFraction(afterTrial: 3), 0.7)
    }

    func testTrialsHappenAfterEveryStepIntervalUpToNumTrials() {
        let schedule = GradualSchedule(finalRatio: 0.5, stepInterval: 10, numTrials: 3)
        XCTAssertEqual((0...45).compactMap { step in schedule.trial(atStep: step).map { [step, $0] } },
                       [[10, 1], [20, 2], [30, 3]])
    }
}
