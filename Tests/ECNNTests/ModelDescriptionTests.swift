import ECTensor
import Foundation
import XCTest
@testable import ECNN

/// A model's architecture as data (`model.json` of a save_dir): described, encoded, decoded and
/// rebuilt, it computes the same function with the same weights; a bad description is an
/// error naming the node.
final class ModelDescriptionTests: XCTestCase {
    func testEveryZooModelAndAGraphWithEveryOpRoundTrips() throws {
        var rng = RNG(seed: 3)
        var models = ModelZoo.names.map { ModelZoo.make($0, seed: 1)! }
        // Every layer and op kind the importer makes.
        var b = GraphBuilder(inputShape: [8, 8, 3])
        var h = try b.layer(Conv2D(name: "dw", kernel: Tensor.uniform(shape: [3, 3, 1, 3], low: -1, high: 1, rng: &rng), bias: nil,
                                   stride: 2, strideWidth: 1, pads: Padding2D(top: 1, bottom: 0, left: 1, right: 1), groups: 3), b.input)
        h = try b.layers([BatchNorm(name: "bn", channels: 3, momentum: 0.9, epsilon: 1e-5),
                          ActivationLayer(name: "relu6", kind: .clip(min: 0, max: 6)),
                          AvgPool(name: "avg", window: PoolWindow(kernelHeight: 3, kernelWidth: 3, strideHeight: 1, strideWidth: 1,
                                                                  pads: Padding2D(top: 1, bottom: 1, left: 1, right: 1)), countIncludePad: false),
                          MaxPool(name: "max", window: PoolWindow(kernelHeight: 2, kernelWidth: 2, strideHeight: 2, strideWidth: 2, ceilMode: true))], h)
        let parts = try b.split(h, axis: 3, sizes: [1, 2], name: "split")
        let gate = try b.layer(ActivationLayer(name: "gate", kind: .hardSigmoid(alpha: 0.2, beta: 0.5)), parts[1])
        let k = try b.constant(Parameter(name: "k", role: .constant, value: Tensor.uniform(shape: [2], low: 0, high: 1, rng: &rng)))
        h = try b.concat([parts[0], try b.binary(.mul, gate, k, name: "scaled")], axis: 3, name: "cat")
        h = try b.transpose(h, perm: [0, 3, 1, 2], name: "nchw")
        h = try b.reshape(h, to: [3 * 2 * 4], name: "flat")
        h = try b.layer(Dense(name: "fc", inputs: 24, outputs: 4, rng: &rng), h)
        models.append(Model(name: "every-op", graph: try b.build(output: h),
                            interface: ModelInterface(inputName: "x", outputName: "y", inputLayout: .nchw, outputSoftmax: true)))
        for model in models {
            for p in model.parameters { p.value = Tensor.uniform(shape: p.shape, low: 0.1, high: 1, rng: &rng) }
            let json = try JSONEncoder().encode(model.modelDescription)
            let rebuilt = try Model(description: try JSONDecoder().decode(ModelDescription.self, from: json))
            XCTAssertEqual(rebuilt.modelDescription, model.modelDescription, model.name)
            XCTAssertEqual(rebuilt.interface, model.interface, model.name)
            XCTAssertEqual(rebuilt.parameters.map(\.name), model.parameters.map(\.name), model.name)
            for (p, q) in zip(rebuilt.parameters, model.parameters) { p.value = q.value }
            let x = Tensor.uniform(shape: [2] + model.inputShape, low: 0, high: 1, rng: &rng)
            XCTAssertEqual(rebuilt(Variable(x), .inference()).value, model(Variable(x), .inference()).value, model.name)
        }
    }

    func testBadDescriptionsNameTheNode() throws {
        let good = ModelZoo.make("fmnist-cnn", seed: 1)!.modelDescription
        var unknown = good
        unknown.nodes[1].op = "Gelu"
        XCTAssertThrowsError(try Model(description: unknown)) { XCTAssertEqual("\($0)", "model description: node 'conv1/relu': unknown op 'Gelu'") }
        var forward = good
        forward.nodes[0].inputs = [5]
        XCTAssertThrowsError(try Model(description: forward)) { XCTAssertTrue("\($0)".contains("node 'conv1': reads value [5] before it exists"), "\($0)") }
        var shape = good
        shape.nodes[0].shape = [3, 3, 2, 32]
        XCTAssertThrowsError(try Model(description: shape)) { XCTAssertTrue("\($0)".contains("node 'conv1'") && "\($0)".contains("reads 2 channels"), "\($0)") }
        var version = good
        version.formatVersion = 9
        XCTAssertThrowsError(try Model(description: version)) { XCTAssertTrue("\($0)".contains("format version 9"), "\($0)") }
    }
}
