import Dispatch
import ECCollective
import ECNN
import ECOptim
import ECTensor

/// Wraps an optimizer for data-parallel training (as Horovod's `DistributedOptimizer`): before
/// each update, every trainable parameter's gradient is summed over all ranks.
///
/// After `attachFlatGradients`, every gradient is a view into one contiguous `FlatBuffer` laid
/// out in the canonical (name-sorted) order, and the sum is ONE allreduce over that buffer with
/// no packing (llm.c's single parameter block). Should a gradient ever be detached from the
/// buffer (a copy-on-write of a shared gradient), the step falls back to fused buckets of
/// `bucketBytes` in the same order, so the result is the same either way.
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
    private var flat: (buffer: FlatBuffer, layout: [(parameter: Parameter, offset: Int)])?
    /// Flat-buffer allreduces so far and their seconds (the bucketer counts the fallback).
    public private(set) var flatCalls = 0
    public private(set) var flatSeconds = 0.0

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

    /// Makes every trainable parameter's gradient a view into one flat buffer (current values
    /// kept), in name order.
    public func attachFlatGradients(_ parameters: [Parameter]) {
        let trainable = parameters.filter(\.isTrainable).sorted { $0.name < $1.name }
        let buffer = FlatBuffer(count: trainable.reduce(0) { $0 + $1.grad.count })
        var layout: [(parameter: Parameter, offset: Int)] = []
        var offset = 0
        for p in trainable {
            var view = Tensor(viewing: buffer, offset: offset, shape: p.grad.shape)
            p.grad.withUnsafeBufferPointer { src in view.withUnsafeMutableBufferPointer { _ = $0.update(fromContentsOf: src) } }
            p.grad = view
            layout.append((p, offset))
            offset += p.grad.count
        }
        flat = (buffer, layout)
    }

    /// Sums every trainable parameter's gradient over all ranks, in place: one allreduce over
    /// the flat buffer when every gradient still lives there, else fused buckets.
    public func synchronizeGradients(_ parameters: [Parameter]) throws {
        guard communicator.size > 1 else { return }
        let trainable = parameters.filter(\.isTrainable).sorted { $0.name < $1.name }
        if let flat, flat.layout.count == trainable.count,
           zip(flat.layout, trainable).allSatisfy({ $0.parameter === $1 && $1.grad.isView(of: flat.buffer, offset: $0.offset) }) {
            let start = DispatchTime.now()
            try communicator.allreduce(flat.buffer.buffer, op: .sum)
            flatCalls += 1
            flatSeconds += Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
            return
        }
        try bucketer.allreduce(tensorCount: trainable.count, op: .sum, comm: communicator) { i, body in
            try trainable[i].grad.withUnsafeMutableBufferPointer(body)
        }
    }
}
