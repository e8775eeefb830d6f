@testable import ECCompression
import ECCollective
import ECNN
import ECTensor
import XCTest

/// Under quantization-aware training a Conv2D → (ReLU →) 2×2 max pool still runs as one op on
/// the FP32 convolution kernels, its input and kernel fake-quantized first as the unfused path
/// does — unless the layer's output is quantized too (`post_quant`), which must happen before
/// the pool.
final class QATFusionTests: XCTestCase {
    /// The quantizer, but claiming to rewrite every output: keeps the graph on the unfused ops.
    final class Unfused: LayerTransform {
        let inner: LSQQuantizer
        init(_ inner: LSQQuantizer) { self.inner = inner }
        func transformInput(_ x: Variable, layer: String, ctx: ForwardContext) -> Variable {
            inner.transformInput(x, layer: layer, ctx: ctx)
        }
        func transformWeight(_ w: Variable, layer: String, ctx: ForwardContext) -> Variable {
            inner.transformWeight(w, layer: layer, ctx: ctx)
        }
        func transformOutput(_ y: Variable, layer: String, ctx: ForwardContext) -> Variable {
            inner.transformOutput(y, layer: layer, ctx: ctx)
        }
    }

    func testPooledConvolutionsUnderQATEqualTheUnfusedOpsBitForBit() throws {
        var rng = RNG(seed: 12)
        let model = try XCTUnwrap(ModelZoo.make("fmnist-cnn", seed: 4))
        XCTAssertEqual(model.graph.pooledConvolutions.count, 2, "conv1 and conv2 pool in their kernels")
        let x = Tensor.uniform(shape: [16, 28, 28, 1], low: 0, high: 1, rng: &rng)
        let q = try LSQQuantizer(config: QuantizerConfig(bits: 4, wbits: 4, perChannel: true), calibration: x, learningRate: 0.01)
        try q.prepare(model: model, communicator: SingleProcessCommunicator())
        XCTAssertFalse(q.transformsOutput(layer: "conv1"), "no post_quant: the output is left alone")
        let seed = Tensor.uniform(shape: [16, 10], low: -1, high: 1, rng: &rng)

        func pass(_ transform: LayerTransform) -> (Tensor, [Tensor], [String: Tensor], ops: Int) {
            for p in model.parameters { p.zeroGrad() }
            for key in q.localGradients.keys { q.localGradients[key] = Tensor(shape: q.localGradients[key]!.shape) }
            let ctx = ForwardContext.training()
            ctx.transform = transform
            let out = model.graph.forward(ctx.tape!.watch(x), ctx)
            let ops = ctx.tape!.nodeCount
            ctx.tape!.backward(from: out, seed: seed)
            return (out.value, model.parameters.map(\.grad), q.localGradients, ops)
        }
        let fused = pass(q), unfused = pass(Unfused(q))
        if FP32Conv.isAvailable {
            XCTAssertEqual(fused.ops, unfused.ops - 2, "conv1 and conv2 each ran with their pool as one op")
        }
        XCTAssertEqual(fused.0, unfused.0, "logits")
        XCTAssertEqual(fused.1, unfused.1, "every parameter's gradient")
        XCTAssertEqual(fused.2.keys.sorted(), unfused.2.keys.sorted())
        for (key, g) in unfused.2 { XCTAssertEqual(fused.2[key], g, "step-size gradient \(key)") }

        // With post_quant the output is quantized before the pool: the ops run one by one.
        let post = try LSQQuantizer(config: QuantizerConfig(postQuant: true), calibration: x, learningRate: 0.01)
        try post.prepare(model: try XCTUnwrap(ModelZoo.make("fmnist-cnn", seed: 4)), communicator: SingleProcessCommunicator())
        XCTAssertTrue(post.transformsOutput(layer: "conv1"))
    }
}
