import EasyCompression
import Foundation
import XCTest

/// The gradient sum's two paths: one allreduce over the flat gradient buffer, and the bucketed
/// fallback when a gradient has been detached from it — same result.
final class DistributedOptimizerTests: XCTestCase {
    /// Rank 0 of a world of two identical replicas: an allreduce sum doubles every element.
    /// Its non-blocking sums are `stream` when set (a test's recorder), else they run at once.
    final class TwinWorld: Communicator {
        let rank = 0, size = 2
        var allreduceCalls = 0
        var stream: (any NonBlockingAllreduce)?
        func allreduce(_ buffer: UnsafeMutableBufferPointer<Float>, op: ReduceOp) throws {
            allreduceCalls += 1
            for i in buffer.indices { buffer[i] *= 2 }
        }
        func allreduce(_ buffer: UnsafeMutableBufferPointer<Double>, op: ReduceOp) throws { for i in buffer.indices { buffer[i] *= 2 } }
        func reduce(_ buffer: UnsafeMutableBufferPointer<Float>, toRoot root: Int) throws {}
        func reduce(_ buffer: UnsafeMutableBufferPointer<Double>, toRoot root: Int) throws {}
        func broadcast(_ buffer: UnsafeMutableRawBufferPointer, root: Int) throws {}
        func gather(_ blob: [UInt8], toRoot root: Int) throws -> [[UInt8]] { [blob, blob] }
        func barrier() throws {}
        func abort(code: Int32) -> Never { exit(code) }
        func makeNonBlockingAllreduce() throws -> any NonBlockingAllreduce { stream ?? ImmediateAllreduce(self) }
    }

    func gradients(_ model: Model) -> [String: Tensor] {
        Dictionary(uniqueKeysWithValues: model.parameters.filter(\.isTrainable).map { ($0.name, $0.grad) })
    }

    func testFlatBufferIsOneCallAndDetachedGradientsFallBackToBuckets() throws {
        let data = try Dataset.load(.train, limit: 64)
        let (x, y) = data.gather(0..<64)
        let model = try XCTUnwrap(ModelZoo.make("lenet5", seed: 2))
        let world = TwinWorld()
        let optimizer = DistributedOptimizer(try SGD(learningRate: 0.1), communicator: world)
        optimizer.attachFlatGradients(model.parameters)

        func localGradients() -> [String: Tensor] {
            model.graph.zeroGrad()
            let ctx = ForwardContext.training()
            ctx.tape!.backward(from: model(Variable(x), ctx).softmaxCrossEntropy(labels: y))
            return gradients(model)
        }
        let local = localGradients().mapValues { $0.scalars }
        try optimizer.synchronizeGradients(model.parameters)
        XCTAssertEqual(optimizer.flatCalls, 1)
        XCTAssertEqual(world.allreduceCalls, 1, "one call for all tensors")
        for (name, g) in gradients(model) { XCTAssertEqual(g.scalars, local[name]!.map { $0 * 2 }, name) }

        // Detach one gradient (a copy-on-write of a shared gradient): still summed, by buckets.
        _ = localGradients()
        let param = try XCTUnwrap(model.parameter(named: "fc1/weight"))
        let shared = param.grad
        param.grad[flat: 0] += 0
        XCTAssertFalse(param.grad.sharesStorage(with: shared))
        let before = gradients(model).mapValues { $0.scalars }
        try optimizer.synchronizeGradients(model.parameters)
        XCTAssertEqual(optimizer.flatCalls, 1, "fallback path")
        XCTAssertGreaterThan(optimizer.bucketer.metrics.calls, 0)
        for (name, g) in gradients(model) { XCTAssertEqual(g.scalars, before[name]!.map { $0 * 2 }, name) }
    }
}
