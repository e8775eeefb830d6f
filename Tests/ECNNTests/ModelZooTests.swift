import XCTest
@testable import ECNN
@testable import ECTensor

final class ModelZooTests: XCTestCase {
    func testReferenceModelMatchesSpec() throws {
        let m = try XCTUnwrap(ModelZoo.make("fmnist-cnn", seed: 1))
        XCTAssertEqual(m.parameters.map(\.name), ["conv1/bias", "conv1/weight", "conv2/bias", "conv2/weight",
                                                  "fc1/bias", "fc1/weight", "fc2/bias", "fc2/weight"])
        XCTAssertEqual(m.parameter(named: "conv1/weight")?.shape, [3, 3, 1, 32])
        XCTAssertEqual(m.parameter(named: "conv2/weight")?.shape, [3, 3, 32, 64])
        XCTAssertEqual(m.parameter(named: "fc1/weight")?.shape, [3136, 128])
        XCTAssertEqual(m.parameter(named: "fc2/weight")?.shape, [128, 10])
        // 320 + 18,496 + 401,536 + 1,290 (= 421,642, as Keras counts it).
        XCTAssertEqual(m.parameterCount, 421_642)
        // Forward multiply-adds × 2: conv1 784·9·32, conv2 196·288·64, fc1 3136·128, fc2 128·10.
        XCTAssertEqual(m.flops, 2 * (784 * 9 * 32 + 196 * 288 * 64 + 3136 * 128 + 128 * 10))
        XCTAssertEqual(m.layerSummaries.map(\.opType), ["Conv2D", "Conv2D", "MatMul", "MatMul"])
        let y = m(Variable(Tensor(shape: [2, 28, 28, 1], repeating: 0.5)), .inference())
        XCTAssertEqual(y.shape, [2, 10])
    }

    func testEveryZooModelRunsAndIsSeeded() throws {
        for name in ModelZoo.names {
            let a = try XCTUnwrap(ModelZoo.make(name, seed: 7)), b = try XCTUnwrap(ModelZoo.make(name, seed: 7))
            let c = try XCTUnwrap(ModelZoo.make(name, seed: 8))
            XCTAssertEqual(a.stateDict(), b.stateDict(), "\(name): same seed, same parameters")
            XCTAssertNotEqual(a.stateDict(), c.stateDict(), "\(name): another seed, other parameters")
            let y = a(Variable(Tensor(shape: [3, 28, 28, 1], repeating: 0.2)), .inference())
            XCTAssertEqual(y.shape, [3, 10], name)
            XCTAssertGreaterThan(a.flops, 0, name)
        }
        XCTAssertNil(ModelZoo.make("vgg99", seed: 1))
        // The counts docs/training.md states.
        XCTAssertEqual(ModelZoo.make("mlp", seed: 1)?.parameterCount, 266_610)
        XCTAssertEqual(ModelZoo.make("lenet5", seed: 1)?.parameterCount, 61_706)
        XCTAssertEqual(ModelZoo.make("resnet-mini", seed: 1)?.parameterCount, 38_266)
    }

    func testResnetMiniHasScopedNamesAndBatchNorm() throws {
        let m = try XCTUnwrap(ModelZoo.make("resnet-mini", seed: 1))
        let names = Set(m.parameters.map(\.name))
        for n in ["block2/conv1/weight", "block2/shortcut/weight", "block2/shortcut/bn/gamma",
                  "block1/conv2/bn/moving_mean", "fc/weight"] {
            XCTAssertTrue(names.contains(n), n)
        }
        XCTAssertFalse(try XCTUnwrap(m.parameter(named: "stem/bn/moving_variance")).isTrainable)
    }

    func testFusedReluEqualsSeparateOps() throws {
        var rng = RNG(seed: 3)
        let conv = Conv2D(name: "c", inChannels: 2, outChannels: 3, kernelSize: 3, rng: &rng)
        let x = Tensor.normal(shape: [2, 5, 5, 2], rng: &rng)
        // Forward values and gradients of conv→relu as one fused op and as two ops.
        func run(fused: Bool) -> (Tensor, Tensor, Tensor) {
            conv.zeroGrad()
            let ctx = ForwardContext.training()
            let input = ctx.tape!.watch(x)
            let y = fused ? try! Graph.chain([conv, ReLU(name: "r")], inputShape: [5, 5, 2]).forward(input, ctx)
                          : conv.forward(input, ctx).relu()
            ctx.tape!.backward(from: y.sum())
            return (y.value, conv.weight.grad, input.grad!)
        }
        let a = run(fused: true), b = run(fused: false)
        XCTAssertEqual(a.0, b.0)
        XCTAssertEqual(a.1, b.1)
        XCTAssertEqual(a.2, b.2)
    }

    func testBatchNormEvalUsesRunningStatistics() {
        let bn = BatchNorm(name: "bn", channels: 2)
        bn.movingMean.value = Tensor(shape: [2], scalars: [1, -1])
        bn.movingVariance.value = Tensor(shape: [2], scalars: [4, 1])
        let y = bn.forward(Variable(Tensor(shape: [1, 2], scalars: [3, 0])), .inference())
        XCTAssertEqual(y.value[flat: 0], 2 / (4 + 1e-3).squareRoot(), accuracy: 1e-6)
        XCTAssertEqual(y.value[flat: 1], 1 / (1 + 1e-3).squareRoot(), accuracy: 1e-6)
    }
}
