import ECCollective
import ECTensor
import Foundation
import XCTest

/// A world of size 1: every collective is the identity, so training code needs no branches.
final class SingleProcessCommunicatorTests: XCTestCase {
    let comm = SingleProcessCommunicator()

    func testIsTheChiefOfAWorldOfOne() {
        XCTAssertEqual(comm.rank, 0)
        XCTAssertEqual(comm.size, 1)
        XCTAssertTrue(comm.isChief)
    }

    func testAllreduceIsTheIdentityForEveryOp() throws {
        for op in ReduceOp.allCases {
            var floats: [Float] = [1.5, -2, 3e7]
            try comm.allreduce(&floats, op: op)
            XCTAssertEqual(floats, [1.5, -2, 3e7], "\(op)")
            var doubles: [Double] = [0.1, -7]
            try comm.allreduce(&doubles, op: op)
            XCTAssertEqual(doubles, [0.1, -7], "\(op)")
            var tensor = Tensor(shape: [2, 2], scalars: [1, 2, 3, 4])
            try comm.allreduce(&tensor, op: op)
            XCTAssertEqual(tensor, Tensor(shape: [2, 2], scalars: [1, 2, 3, 4]), "\(op)")
        }
    }

    func testBroadcastFromRootZeroKeepsTheData() throws {
        var bytes: [UInt8] = [3, 1, 4]
        try comm.broadcast(&bytes, root: 0)
        XCTAssertEqual(bytes, [3, 1, 4])
        var data = Data([9, 8])
        try comm.broadcast(&data, root: 0)
        XCTAssertEqual(data, Data([9, 8]))
        var floats: [Float] = []
        try comm.broadcast(&floats, root: 0)
        XCTAssertEqual(floats, [])
        var tensor = Tensor(shape: [3], scalars: [1, 2, 3])
        try comm.broadcast(&tensor, root: 0)
        XCTAssertEqual(tensor.scalars, [1, 2, 3])
    }

    func testReduceAndGatherToRootZero() throws {
        var floats: [Float] = [1, 2]
        try comm.reduce(&floats, toRoot: 0)
        XCTAssertEqual(floats, [1, 2])
        var doubles: [Double] = [0.5]
        try comm.reduce(&doubles, toRoot: 0)
        XCTAssertEqual(doubles, [0.5])
        XCTAssertEqual(try comm.gather([7, 7, 7], toRoot: 0), [[7, 7, 7]])
        XCTAssertEqual(try comm.gather([], toRoot: 0), [[]])
        XCTAssertNoThrow(try comm.barrier())
    }

    /// A root that does not exist is a user error on every world, including size 1.
    func testRootOutsideTheWorldThrowsInvalidRoot() {
        var bytes: [UInt8] = [1]
        XCTAssertThrowsError(try comm.broadcast(&bytes, root: 1)) { error in
            XCTAssertEqual(error as? CollectiveError, .invalidRoot(root: 1, size: 1))
        }
        XCTAssertThrowsError(try comm.gather([], toRoot: -1)) { error in
            XCTAssertEqual(error as? CollectiveError, .invalidRoot(root: -1, size: 1))
        }
        var floats: [Float] = [1]
        XCTAssertThrowsError(try comm.reduce(&floats, toRoot: 2)) { error in
            XCTAssertEqual(error as? CollectiveError, .invalidRoot(root: 2, size: 1))
            XCTAssertEqual("\(error)", "root rank must be in 0..<1, got 2")
        }
    }
}
