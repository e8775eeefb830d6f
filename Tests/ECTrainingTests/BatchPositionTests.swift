import ECTraining
import Foundation
import XCTest

final class BatchPositionTests: XCTestCase {
    func testCodableRoundTripForCheckpoints() throws {
        let position = BatchPosition(epoch: 3, stepInEpoch: 117)
        let json = try JSONEncoder().encode(position)
        XCTAssertEqual(try JSONDecoder().decode(BatchPosition.self, from: json), position)
        let decoded = try JSONDecoder().decode(BatchPosition.self, from: Data(#"{"epoch":1,"stepInEpoch":2}"#.utf8))
        XCTAssertEqual(decoded, BatchPosition(epoch: 1, stepInEpoch: 2))
    }

    func testOrdersByEpochThenStep() {
        XCTAssertLessThan(BatchPosition(epoch: 0, stepInEpoch: 9), BatchPosition(epoch: 1, stepInEpoch: 0))
        XCTAssertLessThan(BatchPosition(epoch: 1, stepInEpoch: 0), BatchPosition(epoch: 1, stepInEpoch: 1))
        XCTAssertEqual(BatchPosition(), BatchPosition(epoch: 0, stepInEpoch: 0))
    }
}
