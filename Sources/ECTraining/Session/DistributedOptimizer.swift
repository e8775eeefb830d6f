import ECCollective
import ECNN
import ECOptim

/// Wraps an optimizer for data-parallel training (as Horovod's `DistributedOptimizer`): before
/// each update, every trainable parameter's gradient is summed over all ranks in fused buckets,
/// in the canonical (name-sorted) order.
///
/// Each rank's loss is divided by the *global* batch size, so the sum of the ranks' gradients
/// is exactly the global-batch mean gradient, also when shards are uneven. For a world of one
/// the allreduce is skipped.
public final class DistributedOptimizer {
    public let inner: Optimizer
    public let communicator: Communicator
    public let bucketer: GradientBucketer

    public init(_ inner: Optimizer, communicator: Communicator, bucketBytes: Int = 4 << 20) {
        self.inner = inner
        self.communicator = communicator
        bucketer = GradientBucketer(bucketBytes: bucketBytes)
    }

    public var learningRate: Float { inner.learningRate }
    public var stepCount: Int { inner.stepCount }

    /// Sums the gradients over ranks, then applies the inner optimizer's update.
    public func step(_ parameters: [Parameter]) throws {
        try synchronizeGradients(parameters)
        inner.step(parameters)
    }

    /// Sums every trainable parameter's gradient over all ranks, in place.
    public func synchronizeGradients(_ parameters: [Parameter]) throws {
        guard communicator.size > 1 else { return }
        let trainable = parameters.filter(\.isTrainable).sorted { $0.name < $1.name }
        try bucketer.allreduce(tensorCount: trainable.count, op: .sum, comm: communicator) { i, body in
            try trainable[i].grad.withUnsafeMutableBufferPointer(body)
        }
    }
}
