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
    /// Default fusion bucket: 1 MiB, chosen by measurement (`launch/bench`, docs/benchmarks.md):
    /// tensors larger than a bucket are reduced in place with no copy, the small ones are packed
    /// together; on fmnist-cnn this reached 95% of one raw MPI_Allreduce of all the bytes, while
    /// 4 MiB buckets (everything packed and unpacked) reached 66%.
    public static let defaultBucketBytes = 1 << 20

    public let inner: Optimizer
    public let communicator: Communicator
    public let bucketer: GradientBucketer

    public init(_ inner: Optimizer, communicator: Communicator, bucketBytes: Int = DistributedOptimizer.defaultBucketBytes) {
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
