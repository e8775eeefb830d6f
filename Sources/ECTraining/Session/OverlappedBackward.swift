import Foundation
import ECCollective
import ECNN
import ECTensor

/// Where each trainable parameter's gradient lives in the flat gradient buffer, and the buckets
/// the buffer is summed in when gradients are summed during backward (docs/distributed.md,
/// "Gradients overlapped with backward").
///
/// The buffer is laid out in the order gradients become final — the reverse of the order the
/// forward pass first uses the parameters (`readyOrder`) — so a bucket is a contiguous slice,
/// summed in place with no packing. Buckets take consecutive parameters up to `bucketBytes`
/// (small tensors fused); a parameter larger than that is a bucket of its own. Every rank builds
/// the same plan from the same graph.
struct GradientBucketPlan {
    struct Bucket {
        /// Elements of the flat buffer.
        let elements: Range<Int>
        /// Indices into `parameters`.
        let members: Range<Int>
    }

    /// Trainable parameters in ready order, and their offsets in the buffer.
    let parameters: [Parameter]
    let offsets: [Int]
    let buckets: [Bucket]
    /// The bucket of each parameter.
    let bucketOf: [Int]
    let index: [ObjectIdentifier: Int]
    var elementCount: Int { offsets.last.map { $0 + parameters.last!.grad.count } ?? 0 }

    init(readyOrder: [Parameter], bucketBytes: Int) {
        parameters = readyOrder
        var offsets: [Int] = [], offset = 0
        for p in readyOrder {
            offsets.append(offset)
            offset += p.grad.count
        }
        self.offsets = offsets
        let capacity = max(1, bucketBytes / MemoryLayout<Float>.stride)
        var buckets: [Bucket] = [], bucketOf = [Int](repeating: 0, count: readyOrder.count)
        var first = 0, fill = 0
        func close(_ end: Int) {
            guard end > first else { return }
            buckets.append(Bucket(elements: offsets[first]..<(offsets[first] + fill), members: first..<end))
            first = end
            fill = 0
        }
        for (i, p) in readyOrder.enumerated() {
            if fill > 0, fill + p.grad.count > capacity { close(i) }
            bucketOf[i] = buckets.count
            fill += p.grad.count
        }
        close(readyOrder.count)
        self.buckets = buckets
        self.bucketOf = bucketOf
        index = Dictionary(uniqueKeysWithValues: readyOrder.enumerated().map { (ObjectIdentifier($1), $0) })
    }

    /// The order in which a backward pass makes `model`'s trainable gradients final: the reverse
    /// of the order its forward pass first uses them (graph steps in execution order, each
    /// layer's parameters as it lists them); parameters the graph does not reach come last, in
    /// name order.
    static func readyOrder(of model: Model) -> [Parameter] {
        var seen = Set<ObjectIdentifier>(), forward: [Parameter] = []
        func add(_ p: Parameter) {
            if p.isTrainable, seen.insert(ObjectIdentifier(p)).inserted { forward.append(p) }
        }
        for step in model.graph.steps {
            for i in step.nodeIndices {
                switch model.graph.nodes[i].op {
                case let .layer(m): m.allModules.flatMap(\.ownParameters).forEach(add)
                case let .constant(p): add(p)
                default: break
                }
            }
        }
        let rest = model.parameters.filter { $0.isTrainable && !seen.contains(ObjectIdentifier($0)) }
            .sorted { $0.name < $1.name }
        return forward.reversed() + rest
    }
}

/// One training step's backward pass with its gradient buckets summed as they become final.
///
/// Every forward/backward pass of the step (one, or one per thread replica) hands each
/// parameter's final gradient to `deliver`. When the last of the `replicas` passes has
/// delivered a parameter's gradient, they are added into `Parameter.grad` (a view into the flat
/// buffer) in replica order — the sums the blocking path makes after backward, the same
/// operations in the same order —, and when every parameter of a bucket is final, the bucket
/// is started on the non-blocking stream. Buckets start strictly in plan order on every rank
/// (a bucket that completes early waits for the ones before it), whichever thread completes
/// them. `finishBackward` (after backward) adds what was never delivered and starts the rest;
/// the optimizer then `wait`s for the sums before its update.
final class OverlappedBackward: @unchecked Sendable {
    let plan: GradientBucketPlan
    let buffer: FlatBuffer
    let stream: NonBlockingAllreduce
    let replicas: Int
    private let lock = NSLock()
    private var received: [[Tensor?]]
    private var remainingPasses: [Int]
    private var remainingMembers: [Int]
    private var nextBucket = 0
    private var finished = false
    private var failure: Error?
    /// Gradients delivered (all passes) when each bucket started, in start order: fewer than
    /// `plan.parameters.count × replicas` for a bucket started during backward (tests).
    private(set) var deliveredAtStart: [Int] = []
    private var deliveries = 0

    /// `buffer`: the flat gradient buffer laid out by `plan`, which every parameter's `grad` views.
    init(plan: GradientBucketPlan, buffer: FlatBuffer, stream: NonBlockingAllreduce, replicas: Int) {
        self.plan = plan
        self.buffer = buffer
        self.stream = stream
        self.replicas = replicas
        received = [[Tensor?]](repeating: [Tensor?](repeating: nil, count: replicas), count: plan.parameters.count)
        remainingPasses = [Int](repeating: replicas, count: plan.parameters.count)
        remainingMembers = plan.buckets.map(\.members.count)
    }

    /// Pass `replica`'s final gradient of `parameter` (called from that pass's thread).
    func deliver(_ parameter: Parameter, _ gradient: Tensor, replica: Int) {
        guard let i = plan.index[ObjectIdentifier(parameter)] else {
            preconditionFailure("\(parameter.name): a gradient for a parameter outside the plan")
        }
        let complete: Bool = lock.withLock {
            precondition(received[i][replica] == nil, "\(parameter.name): gradient delivered twice by pass \(replica)")
            received[i][replica] = gradient
            deliveries += 1
            remainingPasses[i] -= 1
            return remainingPasses[i] == 0
        }
        guard complete else { return }
        let passes = lock.withLock { taken(i) }
        add(passes, into: i)  // outside the lock: other parameters' sums run meanwhile
        lock.withLock {
            remainingMembers[plan.bucketOf[i]] -= 1
            startReadyBuckets()
        }
    }

    /// After every pass has returned: adds the gradients of parameters some pass did not
    /// deliver, then starts every bucket not yet started, in order (once; later calls do
    /// nothing). A failed start is kept in `failure` for `wait` to throw.
    func finishBackward() {
        lock.withLock {
            guard !finished else { return }
            finished = true
            for i in plan.parameters.indices where remainingPasses[i] > 0 {
                remainingPasses[i] = 0
                add(taken(i), into: i)
                remainingMembers[plan.bucketOf[i]] -= 1
            }
            startReadyBuckets()
        }
    }

    /// Finishes the backward pass if needed, then waits for every bucket's sum. Throws the
    /// first failure of a start or of the stream (the job must end: other ranks wait for this
    /// one).
    func wait() throws {
        finishBackward()
        if let failure = lock.withLock({ failure }) { throw failure }
        try stream.waitAll()
    }

    /// The passes' gradients of parameter `i`, released from `received` (`lock` held).
    private func taken(_ i: Int) -> [Tensor?] {
        defer { received[i] = [] }
        return received[i]
    }

    /// Parameter `i`'s gradient = Σ of the passes' in replica order (into its zeroed view). A
    /// gradient that a copy-on-write detached from the buffer is copied back and viewed again,
    /// so the bucket sums what the parameter holds.
    private func add(_ passes: [Tensor?], into i: Int) {
        let p = plan.parameters[i], offset = plan.offsets[i]
        for case let g? in passes { p.grad.addScaled(g) }
        guard !p.grad.isView(of: buffer, offset: offset) else { return }
        var view = Tensor(viewing: buffer, offset: offset, shape: p.grad.shape)
        p.grad.withUnsafeBufferPointer { src in view.withUnsafeMutableBufferPointer { _ = $0.update(fromContentsOf: src) } }
        p.grad = view
    }

    /// Starts the complete buckets from `nextBucket` on (`lock` held).
    private func startReadyBuckets() {
        while nextBucket < plan.buckets.count, remainingMembers[nextBucket] == 0, failure == nil {
            let elements = plan.buckets[nextBucket].elements
            do {
                try stream.start(UnsafeMutableBufferPointer(start: buffer.pointer + elements.lowerBound, count: elements.count))
            } catch {
                failure = error
                return
            }
            deliveredAtStart.append(deliveries)
            nextBucket += 1
        }
    }
}
