import ECTensor
import XCTest
@testable import ECNN

/// Graph models: shapes inferred and checked at build time, the fused plan, execution equal to
/// composing the ops by hand, and gradients through joins, splits and layout changes.
final class GraphTests: XCTestCase {
    /// A small DAG with every structural op: conv → (split → [relu, sigmoid·const]) → concat →
    /// + skip → transpose → reshape → dense.
    func dag(_ rng: inout RNG) throws -> (Graph, [Module]) {
        var b = GraphBuilder(inputShape: [5, 5, 2])
        let conv = Conv2D(name: "conv", inChannels: 2, outChannels: 4, kernelSize: 3, rng: &rng)
        let h = try b.layer(conv, b.input)
        let parts = try b.split(h, axis: 3, sizes: [1, 3], name: "split")
        let left = try b.layer(ReLU(name: "relu"), parts[0])
        let gate = try b.layer(ActivationLayer(name: "gate", kind: .sigmoid), parts[1])
        let scale = try b.constant(Parameter(name: "scale", role: .constant, value: Tensor(shape: [3], scalars: [0.5, 2, -1])))
        let scaled = try b.binary(.mul, gate, scale, name: "scaled")
        let joined = try b.concat([left, scaled], axis: 3, name: "join")
        let sum = try b.binary(.add, joined, h, name: "skip")
        let t = try b.transpose(sum, perm: [0, 3, 1, 2], name: "nchw")
        let flat = try b.reshape(t, to: [100], name: "flat")
        let dense = Dense(name: "fc", inputs: 100, outputs: 3, rng: &rng)
        let out = try b.layer(dense, flat)
        return (try b.build(output: out), [conv, dense])
    }

    func testShapesAreInferredAndExecutionEqualsTheOpsComposedByHand() throws {
        var rng = RNG(seed: 4)
        let (graph, layers) = try dag(&rng)
        XCTAssertEqual(graph.valueShapes[graph.output], [1, 3])
        XCTAssertEqual(graph.inputShape, [5, 5, 2])
        XCTAssertEqual(graph.parameters.map(\.name), ["conv/bias", "conv/weight", "fc/bias", "fc/weight", "scale"])
        XCTAssertEqual(graph.parameterCount(), 2 * 9 * 4 + 4 + 100 * 3 + 3, "the constant is not trainable")
        let x = Tensor.uniform(shape: [2, 5, 5, 2], low: -1, high: 1, rng: &rng)
        let y = graph.forward(Variable(x), .inference()).value

        let conv = layers[0] as! Conv2D, fc = layers[1] as! Dense
        let h = Variable(x).conv2d(weight: Variable(conv.weight.value), bias: Variable(conv.bias!.value))
        let parts = h.split(axis: 3, sizes: [1, 3])
        let gated = parts[1].sigmoid() * Variable(Tensor(shape: [3], scalars: [0.5, 2, -1]))
        let sum = Variable.concat([parts[0].relu(), gated], axis: 3) + h
        let flat = sum.transpose([0, 3, 1, 2]).reshaped([2, 100])
        let expected = flat.linear(weight: Variable(fc.weight.value), bias: Variable(fc.bias!.value)).value
        XCTAssertEqual(y, expected)
    }

    func testGradientsFlowThroughEveryStructuralOp() throws {
        var rng = RNG(seed: 5)
        let (graph, _) = try dag(&rng)
        let x = Tensor.uniform(shape: [2, 5, 5, 2], low: -1, high: 1, rng: &rng)
        let ctx = ForwardContext.training()
        let input = ctx.tape!.watch(x)
        ctx.tape!.backward(from: graph.forward(input, ctx).sum())
        let analytic = try XCTUnwrap(input.grad)
        // Central differences on a few input elements (away from ReLU kinks in practice).
        for j in [0, 7, 23, 49, 99] {
            var plus = x, minus = x
            plus[flat: j] += 1e-2
            minus[flat: j] -= 1e-2
            let f = { (t: Tensor) in graph.forward(Variable(t), .inference()).value.sum() }
            let numeric = (f(plus) - f(minus)) / 2e-2
            XCTAssertEqual(Double(analytic[flat: j]), numeric, accuracy: 2e-2 * max(1, abs(numeric)), "input element \(j)")
        }
        for p in graph.parameters where p.isTrainable {
            XCTAssertGreaterThan(p.grad.scalars.map(abs).max() ?? 0, 0, "\(p.name) got a gradient")
        }
        XCTAssertEqual(graph.parameter(named: "scale")!.grad.scalars.map(abs).max(), 0, "constants are not trained")
    }

    func testBadGraphsAreClearErrors() throws {
        var rng = RNG(seed: 6)
        var b = GraphBuilder(inputShape: [8, 8, 3])
        let conv = Conv2D(name: "c", inChannels: 4, outChannels: 2, kernelSize: 3, rng: &rng)
        XCTAssertThrowsError(try b.layer(conv, b.input)) {
            XCTAssertEqual("\($0)", "node 'c' (Conv2D): kernel [3, 3, 4, 2] reads 4 channels, the input has 3")
        }
        let r = try b.layer(ReLU(name: "r"), b.input)
        XCTAssertThrowsError(try b.layer(ReLU(name: "r"), r)) { XCTAssertEqual($0 as? GraphError, .duplicateName("r")) }
        let pooled = try b.layer(MaxPool(name: "p"), r)
        XCTAssertThrowsError(try b.binary(.add, pooled, r, name: "sum")) {
            XCTAssertEqual("\($0)", "node 'sum' (Add): shapes [1, 4, 4, 3] and [1, 8, 8, 3] do not broadcast")
        }
        XCTAssertThrowsError(try b.concat([pooled, r], axis: 3, name: "cat")) { XCTAssertTrue("\($0)".contains("differ off axis 3"), "\($0)") }
        XCTAssertThrowsError(try b.concat([r, r], axis: 0, name: "cat0")) { XCTAssertTrue("\($0)".contains("batch axis"), "\($0)") }
        XCTAssertThrowsError(try b.transpose(r, perm: [1, 0, 2, 3], name: "t")) { XCTAssertTrue("\($0)".contains("axis 0 must stay first"), "\($0)") }
        XCTAssertThrowsError(try b.reshape(r, to: [10], name: "rs")) { XCTAssertTrue("\($0)".contains("192 elements per sample"), "\($0)") }
        XCTAssertThrowsError(try b.split(r, axis: 3, sizes: [1, 1], name: "sp")) { XCTAssertTrue("\($0)".contains("sizes [1, 1]"), "\($0)") }
        XCTAssertThrowsError(try b.build(output: 99)) { XCTAssertEqual($0 as? GraphError, .unknownValue(node: "(output)", value: 99)) }
    }

    func testFusionOnlyWhereNothingElseSeesTheUnfusedValue() throws {
        var rng = RNG(seed: 7)
        // conv1 → relu1 → pool: relu fuses into the pool; conv2 → relu2 (relu2 also read by
        // the add): conv2 + relu2 fuse (the conv's output has one reader); conv3 → its output
        // read twice: no fusion.
        var b = GraphBuilder(inputShape: [8, 8, 1])
        var h = try b.layers([Conv2D(name: "conv1", inChannels: 1, outChannels: 2, kernelSize: 3, rng: &rng),
                              ReLU(name: "relu1"), MaxPool(name: "pool")], b.input)
        let c2 = try b.layer(Conv2D(name: "conv2", inChannels: 2, outChannels: 2, kernelSize: 3, rng: &rng), h)
        let r2 = try b.layer(ReLU(name: "relu2"), c2)
        let c3 = try b.layer(Conv2D(name: "conv3", inChannels: 2, outChannels: 2, kernelSize: 3, rng: &rng), r2)
        let r3 = try b.layer(ReLU(name: "relu3"), c3)
        h = try b.binary(.add, try b.binary(.add, r2, r3, name: "a"), c3, name: "b")
        let graph = try b.build(output: h)
        let names = { (i: Int) in graph.nodes[i].name }
        XCTAssertEqual(graph.steps.map { $0.nodeIndices.map(names) },
                       [["conv1"], ["relu1", "pool"], ["conv2", "relu2"], ["conv3"], ["relu3"], ["a"], ["b"]])
        // Fused and unfused runs agree.
        let x = Tensor.uniform(shape: [2, 8, 8, 1], low: -1, high: 1, rng: &rng)
        let ctx = ForwardContext.inference()
        var values: [Variable?] = [Variable(x)] + [Variable?](repeating: nil, count: graph.valueShapes.count - 1)
        for node in graph.nodes {
            let outs = graph.run(node.op, node.inputs.map { values[$0]! }, ctx)
            for (v, o) in zip(node.outputs, outs) { values[v] = o }
        }
        XCTAssertEqual(graph.forward(Variable(x), ctx).value, values[graph.output]!.value)
    }

    func testConvolutionsPoolInTheirKernelInInferenceAndTraining() throws {
        var rng = RNG(seed: 8)
        // conv1 → relu → pool 2×2: pooled in the kernel with the ReLU; conv2 → pool 2×2: pooled
        // without; conv3 → relu → pool 3×3: not 2×2, not pooled; conv4 → pool 2×2 with conv4's
        // output also read by the add: not pooled.
        var b = GraphBuilder(inputShape: [16, 16, 3])
        var h = try b.layers([Conv2D(name: "conv1", inChannels: 3, outChannels: 8, kernelSize: 3, rng: &rng),
                              ReLU(name: "relu1"), MaxPool(name: "pool1")], b.input)
        h = try b.layers([Conv2D(name: "conv2", inChannels: 8, outChannels: 16, kernelSize: 3, rng: &rng),
                          MaxPool(name: "pool2")], h)
        h = try b.layers([Conv2D(name: "conv3", inChannels: 16, outChannels: 16, kernelSize: 1, stride: 1, padding: .valid,
                                 useBias: false, rng: &rng),
                          ReLU(name: "relu3"), MaxPool(name: "pool3", size: 3, stride: 1)], h)
        let c4 = try b.layer(Conv2D(name: "conv4", inChannels: 16, outChannels: 16, kernelSize: 3, rng: &rng), h)
        let p4 = try b.layer(MaxPool(name: "pool4", size: 2, stride: 1), c4)
        let p5 = try b.layer(MaxPool(name: "pool5"), c4)
        h = try b.binary(.add, try b.layer(Flatten(name: "f4"), p4), try b.layer(Flatten(name: "f5"), b.layer(Conv2D(
            name: "up", inChannels: 16, outChannels: 16, kernelSize: 1, rng: &rng), p5)), name: "add")
        let graph = try b.build(output: h)
        let pooled = graph.pooledConvolutions.map { s, p in [graph.steps[s].nodeIndices[0], p.pool, p.relu ? 1 : 0] }
            .sorted { $0[0] < $1[0] }.map { [graph.nodes[$0[0]].name, graph.nodes[$0[1]].name, "\($0[2])"] }
        XCTAssertEqual(pooled, [["conv1", "pool1", "1"], ["conv2", "pool2", "0"]])
        // Inference (pooled where the kernels run) equals every node on its own, bit for bit.
        let x = Tensor.uniform(shape: [3, 16, 16, 3], low: -1, high: 1, rng: &rng)
        let ctx = ForwardContext.inference()
        var values: [Variable?] = [Variable(x)] + [Variable?](repeating: nil, count: graph.valueShapes.count - 1)
        for node in graph.nodes {
            let outs = graph.run(node.op, node.inputs.map { values[$0]! }, ctx)
            for (v, o) in zip(node.outputs, outs) { values[v] = o }
        }
        let expected = values[graph.output]!.value
        XCTAssertEqual(graph.forward(Variable(x), ctx).value, expected)
        // Training (pooled in the kernel, recording where each pooled gradient goes): the same
        // value and the same gradients for the input and every parameter as node by node.
        func gradients(fused: Bool) -> (Tensor, [Tensor]) {
            for p in graph.parameters { p.zeroGrad() }
            let ctx = ForwardContext.training()
            let input = ctx.tape!.watch(x)
            var out: Variable
            if fused {
                out = graph.forward(input, ctx)
            } else {
                var values: [Variable?] = [input] + [Variable?](repeating: nil, count: graph.valueShapes.count - 1)
                for node in graph.nodes {
                    for (v, o) in zip(node.outputs, graph.run(node.op, node.inputs.map { values[$0]! }, ctx)) { values[v] = o }
                }
                out = values[graph.output]!
            }
            XCTAssertEqual(out.value, expected)
            ctx.tape!.backward(from: out, seed: Tensor.uniform(shape: out.shape, low: -1, high: 1, rng: &rng))
            return (input.grad!, graph.parameters.map(\.grad))
        }
        let saved = rng
        let fused = gradients(fused: true)
        rng = saved
        let unfused = gradients(fused: false)
        XCTAssertEqual(fused.0, unfused.0)
        XCTAssertEqual(fused.1, unfused.1)
    }

    func testMapLayersRebuildsWithNewShapesAndCopiedConstants() throws {
        var rng = RNG(seed: 8)
        let (graph, _) = try dag(&rng)
        let copy = try graph.mapLayers { $0 }
        XCTAssertEqual(copy.valueShapes, graph.valueShapes)
        XCTAssertEqual(copy.nodes.map(\.name), graph.nodes.map(\.name))
        XCTAssertFalse(copy.parameter(named: "scale")! === graph.parameter(named: "scale")!, "constants are copied")
        let x = Tensor.uniform(shape: [1, 5, 5, 2], low: -1, high: 1, rng: &rng)
        XCTAssertEqual(copy.forward(Variable(x), .inference()).value, graph.forward(Variable(x), .inference()).value)
    }
}
