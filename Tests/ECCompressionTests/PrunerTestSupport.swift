import ECCollective
@testable import ECCompression
import ECNN
import ECTensor
import XCTest

/// A tiny CNN whose channel groups are written by hand (the graph analysis is another unit):
///
///     conv1 Conv2D 1→4 3×3 same ─ conv2 Conv2D 4→6 3×3 same ─ flatten [2,2,6] → 24
///     ─ fc1 MatMul 24→5 ─ fc2 MatMul 5→3 (the classifier: never pruned)
///
/// on a 2×2×1 input. Kernel+bias elements: conv1 36+4, conv2 216+6, fc1 120+5, fc2 15+3 = 405,
/// all of them in the ratio's denominator (fc2 through its inputs). FLOPs per sample: conv1
/// 2·4·36 = 288, conv2 2·4·216 = 1728, fc1 240, fc2 30 = 2286.
enum TinyNet {
    static let prunableParameters = 405
    static let flops = 2286

    static func model(seed: UInt64 = 7) -> Model {
        var rng = RNG(seed: seed)
        let layers: [Module] = [
            Conv2D(name: "conv1", inChannels: 1, outChannels: 4, kernelSize: 3, rng: &rng), ReLU(name: "relu1"),
            Conv2D(name: "conv2", inChannels: 4, outChannels: 6, kernelSize: 3, rng: &rng), ReLU(name: "relu2"),
            Flatten(name: "flatten"),
            Dense(name: "fc1", inputs: 24, outputs: 5, rng: &rng), ReLU(name: "relu3"),
            Dense(name: "fc2", inputs: 5, outputs: 3, rng: &rng),
        ]
        let model = chainModel("tiny", layers, inputShape: [2, 2, 1])
        for p in model.parameters where p.role == .bias {  // non-zero biases, so that zeroing shows
            p.value = Tensor.uniform(shape: p.shape, low: 0.1, high: 1, rng: &rng)
        }
        return model
    }

    /// conv1 (4 channels, 9+1+9·6 = 64 parameters each), conv2 (6, 36+1+4·5 = 57), fc1 (5,
    /// 24+1+3 = 28) prunable; fc2 (3) not.
    static let groups: [ChannelGroup] = [
        ChannelGroup(id: "conv1", channels: 4,
                     slices: [producer("conv1/weight", 4), producer("conv1/bias", 4),
                              ChannelSlice(parameter: "conv2/weight", role: .consumer, innerStride: 6, period: 4)],
                     producers: ["conv1/weight"], prunable: true, parametersPerChannel: 64, flopsPerChannel: 504),
        ChannelGroup(id: "conv2", channels: 6,
                     slices: [producer("conv2/weight", 6), producer("conv2/bias", 6),
                              ChannelSlice(parameter: "fc1/weight", role: .consumer, innerStride: 5, period: 6)],
                     producers: ["conv2/weight"], prunable: true, parametersPerChannel: 57, flopsPerChannel: 328),
        ChannelGroup(id: "fc1", channels: 5,
                     slices: [producer("fc1/weight", 5), producer("fc1/bias", 5),
                              ChannelSlice(parameter: "fc2/weight", role: .consumer, innerStride: 3, period: 5)],
                     producers: ["fc1/weight"], prunable: true, parametersPerChannel: 28, flopsPerChannel: 54),
        ChannelGroup(id: "fc2", channels: 3, slices: [producer("fc2/weight", 3), producer("fc2/bias", 3)],
                     producers: ["fc2/weight"], prunable: false, parametersPerChannel: 6, flopsPerChannel: 10),
    ]
}

func producer(_ parameter: String, _ channels: Int) -> ChannelSlice {
    ChannelSlice(parameter: parameter, role: .producer, innerStride: 1, period: channels)
}

/// Independent Dense layers `a`, `b`, … (inputs → outputs each) with one prunable group per
/// layer over its kernel and bias: a channel costs exactly inputs + 1 parameters, no overlaps.
func parallelDenseNet(_ shapes: [(name: String, inputs: Int, outputs: Int)]) -> (Model, [ChannelGroup]) {
    var rng = RNG(seed: 3)
    let layers = shapes.map { Dense(name: $0.name, inputs: $0.inputs, outputs: $0.outputs, rng: &rng) as Module }
    let model = siblingModel("parallel", layers.map { $0 as! Dense })
    let groups = shapes.map {
        ChannelGroup(id: $0.name, channels: $0.outputs,
                     slices: [producer("\($0.name)/weight", $0.outputs), producer("\($0.name)/bias", $0.outputs)],
                     producers: ["\($0.name)/weight"], prunable: true, parametersPerChannel: $0.inputs + 1,
                     flopsPerChannel: 2 * $0.inputs)
    }
    return (model, groups)
}

/// A prepared single-process pruner.
func preparedPruner(_ config: PrunerConfig, model: Model, groups: [ChannelGroup],
                    communicator: Communicator = SingleProcessCommunicator()) throws -> Pruner {
    let pruner = try Pruner(config: config, groups: groups)
    try pruner.prepare(model: model, communicator: communicator)
    return pruner
}

/// The chief's decision for `trial` with the importance set by hand, adopted through a
/// single-process channel (what `afterStep` does at a trial step, minus the importance update).
func decide(_ pruner: Pruner, trial: Int, importance: [String: [Float]]) throws {
    pruner.importance = importance
    let channel = PayloadChannel(communicator: pruner.communicator!, environment: [:])
    let payload = try channel.broadcast(kind: .masks, step: trial, entries: pruner.decide(trial: trial))
    try pruner.adopt(payload)
}

/// Fills every gradient with reproducible values from `rng`.
func randomizeGradients(_ model: Model, rng: inout RNG) {
    for p in model.parameters where p.isTrainable {
        p.grad = Tensor.normal(shape: p.shape, std: 0.1, rng: &rng)
    }
}

/// The pruned channel indices of a keep mask.
func pruned(_ flags: [Bool]?) -> [Int] {
    (flags ?? []).enumerated().filter { !$0.element }.map(\.offset)
}

/// A world of two ranks played in one process: what rank 0 broadcasts is recorded on `tape`,
/// and rank 1 receives it from there, in order. Other collectives are identities.
final class TapeCommunicator: Communicator {
    final class Tape { var chunks: [[UInt8]] = [] }

    let rank: Int
    let size = 2
    let tape: Tape

    init(rank: Int, tape: Tape) {
        self.rank = rank
        self.tape = tape
    }

    func allreduce(_ buffer: UnsafeMutableBufferPointer<Float>, op: ReduceOp) throws {}
    func allreduce(_ buffer: UnsafeMutableBufferPointer<Double>, op: ReduceOp) throws {}
    func reduce(_ buffer: UnsafeMutableBufferPointer<Float>, toRoot root: Int) throws {}
    func reduce(_ buffer: UnsafeMutableBufferPointer<Double>, toRoot root: Int) throws {}

    func broadcast(_ buffer: UnsafeMutableRawBufferPointer, root: Int) throws {
        precondition(root == 0, "the tape only records rank 0")
        if rank == root {
            tape.chunks.append(Array(buffer))
        } else {
            precondition(!tape.chunks.isEmpty, "rank 1 broadcast with nothing recorded")
            let chunk = tape.chunks.removeFirst()
            precondition(chunk.count == buffer.count, "recorded \(chunk.count) bytes, receiver expects \(buffer.count)")
            chunk.withUnsafeBytes { buffer.copyMemory(from: $0) }
        }
    }

    func gather(_ blob: [UInt8], toRoot root: Int) throws -> [[UInt8]] { rank == root ? [blob] : [] }
    func barrier() throws {}
    func abort(code: Int32) -> Never { fatalError("abort(\(code))") }
}

/// A model running `layers` one after another (they must fit together).
func chainModel(_ name: String, _ layers: [Module], inputShape: [Int]) -> Model {
    Model(name: name, graph: try! Graph.chain(layers, inputShape: inputShape))
}

/// A model whose Dense layers each read their own slice of the input (split along the feature
/// axis), their outputs joined: independent layers, as tests of group bookkeeping need.
func siblingModel(_ name: String, _ layers: [Dense]) -> Model {
    var b = GraphBuilder(inputShape: [layers.reduce(0) { $0 + $1.inputs }])
    let parts = try! b.split(b.input, axis: 1, sizes: layers.map(\.inputs), name: "split")
    let outs = try! zip(layers, parts).map { try b.layer($0, $1) }
    let output = layers.count == 1 ? outs[0] : try! b.concat(outs, axis: 1, name: "join")
    return Model(name: name, graph: try! b.build(output: output))
}
