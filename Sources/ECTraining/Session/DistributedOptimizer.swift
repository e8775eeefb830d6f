import Dispatch
import ECCollective
import ECNN
import ECOptim
import ECTensor

/// Wraps an optimizer for data-parallel training (as Horovod's `DistributedOptimizer`): before
/// each update, every trainable parameter's gradient is summed over all ranks.
///
/// After `attachFlatGradients`, every gradient is a view into one contiguous `FlatBuffer`, and
/// the sum is ONE allreduce over that buffer after backward with no packing (llm.c's single
/// parameter block). Should a gradient ever be detached from the buffer (a copy-on-write of a
/// shared gradient), the step falls back to fused buckets of `bucketBytes` in name order, so the
/// result is the same either way.
///
/// With `overlapBackward` (the job key `overlap_gradients`), the buffer is laid out in the order
/// backward makes gradients final and cut into buckets of about `bucketBytes`; each bucket's sum
/// starts on a `NonBlockingAllreduce` as soon as backward has produced all of its gradients
/// (`beginBackward`, `OverlappedBackward`), and `step` waits for them only before the update —
/// as Horovod and PyTorch DDP do. Sums are in rank order either way, so both paths give the same
/// bits (docs/distributed.md, "Gradients overlapped with backward").
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
    /// Whether jobs sum gradient buckets during backward unless `overlap_gradients` says otherwise.
    public static let defaultOverlap = true

    public let inner: Optimizer
    public let communicator: Communicator
    public let bucketer: GradientBucketer
    public let bucketBytes: Int
    private var flat: (buffer: FlatBuffer, layout: [(parameter: Parameter, offset: Int)])?
    private var overlap: (plan: GradientBucketPlan, stream: NonBlockingAllreduce)?
    private var pending: OverlappedBackward?
    /// The last step's overlapped backward (tests look at when its buckets started).
    private(set) var lastBackward: OverlappedBackward?
    /// Flat-buffer allreduces so far and their seconds (the bucketer counts the fallback).
    public private(set) var flatCalls = 0
    public private(set) var flatSeconds = 0.0
    /// Steps whose buckets were summed during backward, and the seconds `step` waited for them
    /// (the communication backward did not hide).
    public private(set) var overlappedSteps = 0
    public private(set) var overlapWaitSeconds = 0.0

    public init(_ inner: Optimizer, communicator: Communicator, bucketBytes: Int = DistributedOptimizer.defaultBucketBytes) {
        self.inner = inner
        self.communicator = communicator
        self.bucketBytes = bucketBytes
        bucketer = GradientBucketer(bucketBytes: bucketBytes)
    }

    deinit { overlap?.stream.close() }

    public var learningRate: Float { inner.learningRate }
    public var stepCount: Int { inner.stepCount }
    /// Whether gradient buckets are summed during backward (`overlapBackward`).
    public var overlapsBackward: Bool { overlap != nil }
    /// The overlap's buckets (element counts, in the order they start); empty without overlap.
    public var overlapBucketSizes: [Int] { overlap?.plan.buckets.map(\.elements.count) ?? [] }
    /// The non-blocking stream's counters (nil without overlap).
    public var overlapMetrics: NonBlockingAllreduceMetrics? { overlap?.stream.metrics }

    /// Sums the gradients over ranks (or waits for the sums started during backward), then
    /// applies the inner optimizer's update.
    public func step(_ parameters: [Parameter]) throws {
        if let pending {
            self.pending = nil
            let start = DispatchTime.now()
            try pending.wait()
            overlappedSteps += 1
            overlapWaitSeconds += Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
        } else {
            try synchronizeGradients(parameters)
        }
        inner.step(parameters)
    }

    /// Makes every trainable parameter's gradient a view into one flat buffer (current values
    /// kept), in name order, or in `order` (which must list every trainable parameter once).
    public func attachFlatGradients(_ parameters: [Parameter], order: [Parameter]? = nil) {
        let trainable = order ?? parameters.filter(\.isTrainable).sorted { $0.name < $1.name }
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

    /// Sums gradient buckets during backward from now on (collective: every rank calls it at the
    /// same point, as it makes the non-blocking stream). Lays the flat buffer out in `model`'s
    /// ready order (`GradientBucketPlan.readyOrder`). A no-op on a world of one.
    public func overlapBackward(of model: Model) throws {
        guard communicator.size > 1, overlap == nil else { return }
        let order = GradientBucketPlan.readyOrder(of: model)
        attachFlatGradients(model.parameters, order: order)
        overlap = (GradientBucketPlan(readyOrder: order, bucketBytes: bucketBytes), try communicator.makeNonBlockingAllreduce())
    }

    /// The step's overlapped backward, to which every pass hands its final gradients; nil when
    /// gradients are summed after backward instead (no overlap, or a gradient no longer views the
    /// flat buffer: then `step` sums them as without overlap, on every rank alike). The
    /// gradients must be zeroed before.
    func beginBackward(replicas: Int) -> OverlappedBackward? {
        guard let overlap, let flat, pending == nil,
              flat.layout.allSatisfy({ $0.parameter.grad.isView(of: flat.buffer, offset: $0.offset) }) else { return nil }
        let backward = OverlappedBackward(plan: overlap.plan, buffer: flat.buffer, stream: overlap.stream, replicas: replicas)
        pending = backward
        lastBackward = backward
        return backward
    }

    /// Sums every trainable parameter's gradient over all ranks, in place: one allreduce over
    /// the flat buffer when every gradient still lives there, else fused buckets.
    public func synchronizeGradients(_ parameters: [Parameter]) throws {
        guard communicator.size > 1 else { return }
        let trainable = parameters.filter(\.isTrainable).sorted { $0.name < $1.name }
        if let flat, flat.layout.count == trainable.count,
           Set(flat.layout.map { ObjectIdentifier($0.parameter) }) == Set(trainable.map { ObjectIdentifier($0) }),
           flat.layout.allSatisfy({ $0.parameter.grad.isView(of: flat.buffer, offset: $0.offset) }) {
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
