import ECTestSupport
import EasyCompression
@testable import ECTraining
import Foundation
import XCTest

/// Gradients overlapped with backward (`overlap_gradients`, docs/distributed.md): each bucket's
/// sum over the ranks starts as soon as backward has produced its gradients, and the result is
/// the blocking path's bit for bit — the same sums in rank order, only earlier.
final class OverlapTests: XCTestCase {
    /// Rank 0 of a world of two identical replicas (a sum doubles every element), whose
    /// non-blocking stream records what it is given and when, and sums at `waitAll`.
    func recordingTwinWorld() -> (DistributedOptimizerTests.TwinWorld, RecordingStream) {
        let world = DistributedOptimizerTests.TwinWorld(), stream = RecordingStream()
        world.stream = stream
        return (world, stream)
    }

    final class RecordingStream: NonBlockingAllreduce, @unchecked Sendable {
        let lock = NSLock()
        /// Every buffer started (the test clears it); those not yet summed.
        var started: [UnsafeMutableBufferPointer<Float>] = []
        var pending: [UnsafeMutableBufferPointer<Float>] = []
        var metrics = NonBlockingAllreduceMetrics()
        func start(_ buffer: UnsafeMutableBufferPointer<Float>) throws {
            lock.withLock {
                started.append(buffer)
                pending.append(buffer)
            }
        }
        func waitAll() throws {
            lock.withLock {
                for b in pending { for i in b.indices { b[i] *= 2 } }
                pending.removeAll()
            }
        }
        func resetMetrics() {}
        func close() {}
    }

    /// The plan: fmnist-cnn's gradients laid out in the order backward finishes them (fc2 first,
    /// conv1 last), consecutive and complete; buckets cover the buffer in order, each within
    /// the byte limit unless it is one parameter larger than that.
    func testBucketPlanFollowsBackwardOrder() throws {
        let model = try XCTUnwrap(ModelZoo.make("fmnist-cnn", seed: 1))
        let order = GradientBucketPlan.readyOrder(of: model)
        XCTAssertEqual(Set(order.map(\.name)), Set(model.parameters.filter(\.isTrainable).map(\.name)))
        XCTAssertEqual(order.count, model.parameters.filter(\.isTrainable).count)
        XCTAssertTrue(order.first!.name.hasPrefix("fc2/"), order.map(\.name).description)
        XCTAssertTrue(order.last!.name.hasPrefix("conv1/"), order.map(\.name).description)
        for bytes in [1024, 4096, 1 << 20, 1 << 30] {
            let plan = GradientBucketPlan(readyOrder: order, bucketBytes: bytes)
            var next = 0, member = 0
            for bucket in plan.buckets {
                XCTAssertEqual(bucket.elements.lowerBound, next)
                XCTAssertEqual(bucket.members.lowerBound, member)
                XCTAssertEqual(bucket.elements.count, bucket.members.reduce(0) { $0 + order[$1].grad.count })
                XCTAssertTrue(bucket.elements.count * 4 <= bytes || bucket.members.count == 1, "\(bytes): \(bucket)")
                next = bucket.elements.upperBound
                member = bucket.members.upperBound
            }
            XCTAssertEqual(next, model.parameters.filter(\.isTrainable).reduce(0) { $0 + $1.grad.count })
            XCTAssertEqual(member, order.count)
        }
        XCTAssertEqual(GradientBucketPlan(readyOrder: order, bucketBytes: 1 << 30).buckets.count, 1)
    }

    /// During one step: buckets start in plan order while backward is still running (the first
    /// before the last gradient is final), each over its own slice of the flat buffer; after
    /// `step` every gradient is summed and the weights equal the blocking path's bit for bit —
    /// one pass and two thread replicas alike.
    func testBucketsStartDuringBackwardAndEqualTheBlockingPath() throws {
        let data = try Dataset.load(.train, limit: 128)
        for replicas in [1, 2] {
            func train(overlap: Bool) throws -> (Model, RecordingStream, MonitoredSession) {
                let model = try XCTUnwrap(ModelZoo.make("fmnist-cnn", seed: 3))
                let (world, stream) = recordingTwinWorld()
                let session = try MonitoredSession(model: model, optimizer: try SGD(learningRate: 0.05, momentum: 0.9),
                                                   communicator: world, bucketBytes: 4096, overlapGradients: overlap)
                session.threadReplicas = replicas
                var batches = try BatchSchedule(dataset: data, batchSize: 64, seed: 1).makeIterator()
                for _ in 0..<3 {
                    let b = batches.next()
                    try session.run(images: b.images, labels: b.labels, globalBatchSize: b.globalCount)
                }
                return (model, stream, session)
            }
            let (blocking, _, plain) = try train(overlap: false)
            let (overlapped, stream, session) = try train(overlap: true)
            XCTAssertFalse(plain.optimizer.overlapsBackward)
            XCTAssertTrue(session.optimizer.overlapsBackward)
            XCTAssertEqual(session.optimizer.overlappedSteps, 3)
            XCTAssertGreaterThan(session.optimizer.overlapBucketSizes.count, 5)
            for (p, q) in zip(blocking.parameters, overlapped.parameters) {
                XCTAssertEqual(p.value.scalars.map(\.bitPattern), q.value.scalars.map(\.bitPattern), "\(p.name), \(replicas) replica(s)")
            }

            // One more step, watching the starts.
            stream.started = []
            let b = try Dataset.load(.train, limit: 64).gather(0..<64)
            _ = session.forwardBackward(images: b.images, labels: b.labels, globalBatchSize: 64)
            let sizes = session.optimizer.overlapBucketSizes
            XCTAssertEqual(stream.started.map(\.count), sizes, "every bucket started, in plan order")
            XCTAssertEqual(Set(stream.started.map(\.baseAddress)).count, sizes.count)
            let starts = try XCTUnwrap(session.optimizer.lastBackward).deliveredAtStart
            let perPass = overlapped.parameters.filter(\.isTrainable).count, all = perPass * replicas
            XCTAssertEqual(starts.count, sizes.count)
            // A bucket starts once every replica delivered it; how the replicas' deliveries
            // interleave is up to the scheduler, so the bound allows the other replicas to have
            // finished first: the last one is still in the first half of its backward.
            XCTAssertLessThan(starts.first ?? all, (replicas - 1) * perPass + perPass / 2,
                              "the first bucket starts early in backward: \(starts)")
            XCTAssertEqual(starts, starts.sorted())
            try session.optimizer.step(overlapped.parameters)
        }
    }

    // MARK: - Under mpirun

    /// The CLI job with `overlap_gradients: true` and `false` ends with bit-identical weights,
    /// optimizer state and masks on 2 and 3 ranks (MPI_Iallreduce; the rank-ordered
    /// Ialltoallv + Iallgatherv), with small buckets (many of them), two thread replicas per
    /// rank and the pruner deciding during the run.
    func testOverlapEqualsBlockingOnTwoAndThreeRanks() throws {
        for n in [2, 3] {
            try assertOverlapEqualsBlocking(ranks: n, """
                model: fmnist-cnn
                dataset: {limit_train: 640, limit_test: 100}
                steps: 7
                batch_size: 60
                thread_replicas: 2
                compression:
                  pruner: {compression_ratio: 0.3, step_interval: 3, num_trials: 2}
                """)
        }
    }

    /// Synchronised batch norm sums every layer's statistics over the ranks during forward and
    /// backward, on the world, while the gradient buckets' sums run on their own communicators:
    /// still the blocking path's bits (resnet-mini, 3 ranks, 2 replicas each).
    func testOverlapWithSynchronisedBatchNormOnThreeRanks() throws {
        try assertOverlapEqualsBlocking(ranks: 3, """
            model: resnet-mini
            dataset: {limit_train: 192, limit_test: 50}
            steps: 3
            batch_size: 48
            thread_replicas: 2
            sync_batch_norm: true
            """)
    }

    func assertOverlapEqualsBlocking(ranks: Int, _ body: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let work = try TestPaths.temporaryDirectory(name)
        defer { try? FileManager.default.removeItem(at: work) }
        var weights: [Bool: NamedTensors] = [:]
        for overlap in [true, false] {
            let dir = work.appendingPathComponent("overlap-\(overlap)").path
            let config = work.appendingPathComponent("overlap-\(overlap).yaml").path
            try """
                \(body)
                optimizer: {name: sgd, lr: 0.05, momentum: 0.9}
                threads: 1
                bucket_bytes: 4096
                overlap_gradients: \(overlap)
                log_every: 100
                report: false
                save_dir: \(dir)
                """.write(toFile: config, atomically: true, encoding: .utf8)
            let result = try TrainCommand.run(config, ranks: ranks, args: ["--debug"], timeoutSeconds: 300)
            XCTAssertEqual(result.status, 0, result.stderr, file: file, line: line)
            XCTAssertEqual(result.stderr.contains("gradients summed during backward"), overlap, result.stderr, file: file, line: line)
            weights[overlap] = try WeightLoader.readTensors(from: dir)
        }
        assertBitIdentical(try XCTUnwrap(weights[true]), try XCTUnwrap(weights[false]),
                           "overlapped vs blocking gradients on \(ranks) ranks", file: file, line: line)
    }
}
