import ECCollective
import ECTensor
import XCTest

/// A stand-in world of two identical ranks: sum doubles each element, average keeps it.
/// It records the element count of every allreduce call, i.e. the bucket plan.
private final class TwinRanks: Communicator {
    let rank = 0
    let size = 2
    var callCounts: [Int] = []

    func allreduce(_ buffer: UnsafeMutableBufferPointer<Float>, op: ReduceOp) throws {
        callCounts.append(buffer.count)
        if op == .sum { for i in buffer.indices { buffer[i] *= 2 } }
    }

    func allreduce(_ buffer: UnsafeMutableBufferPointer<Double>, op: ReduceOp) throws {}
    func reduce(_ buffer: UnsafeMutableBufferPointer<Float>, toRoot root: Int) throws {}
    func reduce(_ buffer: UnsafeMutableBufferPointer<Double>, toRoot root: Int) throws {}
    func broadcast(_ buffer: UnsafeMutableRawBufferPointer, root: Int) throws {}
    func gather(_ blob: [UInt8], toRoot root: Int) throws -> [[UInt8]] { [blob, blob] }
    func barrier() throws {}
    func abort(code: Int32) -> Never { fatalError("abort(\(code))") }
}

final class GradientBucketerTests: XCTestCase {
    /// Tensors of 3, 5, 20, 2, 0 and 4 elements with distinct values.
    private func gradients() -> [Tensor] {
        [3, 5, 20, 2, 0, 4].enumerated().map { t, n in
            Tensor(shape: [n], scalars: (0..<n).map { Float(100 * t + $0) })
        }
    }

    /// Consecutive tensors share a bucket until it would overflow; a tensor larger than the
    /// bucket is reduced on its own; every element lands back in its own tensor.
    func testPacksConsecutiveTensorsAndReducesOversizedOnesAlone() throws {
        let comm = TwinRanks()
        let bucketer = GradientBucketer(bucketBytes: 10 * 4)
        var tensors = gradients()
        try bucketer.allreduce(&tensors, op: .sum, comm: comm)
        XCTAssertEqual(comm.callCounts, [8, 20, 6])
        for (got, original) in zip(tensors, gradients()) {
            XCTAssertEqual(got.scalars, original.scalars.map { 2 * $0 })
            XCTAssertEqual(got.shape, original.shape)
        }
    }

    func testAverageOfIdenticalRanksIsUnchanged() throws {
        var tensors = gradients()
        try GradientBucketer(bucketBytes: 1 << 20).allreduce(&tensors, op: .average, comm: TwinRanks())
        XCTAssertEqual(tensors, gradients())
    }

    func testZeroBucketBytesReducesEveryNonEmptyTensorAlone() throws {
        let comm = TwinRanks()
        var tensors = gradients()
        try GradientBucketer(bucketBytes: 0).allreduce(&tensors, op: .sum, comm: comm)
        XCTAssertEqual(comm.callCounts, [3, 5, 20, 2, 4])
    }

    func testMetricsAccumulateAcrossStepsAndReset() throws {
        let comm = TwinRanks()
        let bucketer = GradientBucketer(bucketBytes: 64)
        for _ in 0..<3 {
            var tensors = gradients()
            try bucketer.allreduce(&tensors, op: .average, comm: comm)
        }
        let metrics = bucketer.metrics
        XCTAssertEqual(metrics.steps, 3)
        XCTAssertEqual(metrics.tensors, 18)
        XCTAssertEqual(metrics.calls, comm.callCounts.count)
        XCTAssertEqual(metrics.bytesReduced, 3 * 34 * 4)
        XCTAssertGreaterThan(metrics.seconds, 0)
        bucketer.resetMetrics()
        XCTAssertEqual(bucketer.metrics, GradientBucketer.Metrics())
    }

    /// The closure form reaches tensors held elsewhere (parameter boxes) without copying them.
    func testAccessClosureFormReducesTensorsInTheirBoxes() throws {
        final class Box { var grad: Tensor; init(_ grad: Tensor) { self.grad = grad } }
        let boxes = gradients().map(Box.init)
        try GradientBucketer(bucketBytes: 32).allreduce(tensorCount: boxes.count, op: .sum, comm: TwinRanks()) {
            index, body in try boxes[index].grad.withUnsafeMutableBufferPointer(body)
        }
        XCTAssertEqual(boxes.map(\.grad.scalars), gradients().map { $0.scalars.map { 2 * $0 } })
    }

    func testSingleProcessWorldLeavesTensorsUnchanged() throws {
        var tensors = gradients()
        try GradientBucketer(bucketBytes: 16).allreduce(&tensors, op: .sum, comm: SingleProcessCommunicator())
        XCTAssertEqual(tensors, gradients())
    }
}
