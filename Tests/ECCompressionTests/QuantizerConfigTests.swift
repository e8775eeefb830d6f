@testable import ECCompression
import ECNN
import ECTestSupport
import Foundation
import XCTest

/// QuantizerConfig's seed defaults, its job-file keys (with the seed's `pretrain_model` alias)
/// and its validation messages, alone and against a model (docs/quantization.md).
final class QuantizerConfigTests: XCTestCase {
    func testDefaultsAreTheSeedsAndValid() throws {
        let config = QuantizerConfig()
        XCTAssertEqual(config.bits, 8)
        XCTAssertEqual(config.wbits, 8)
        XCTAssertTrue(config.signed)
        XCTAssertNil(config.pretrainedModel)
        XCTAssertEqual(config.stepInterval, 1000)
        XCTAssertEqual(config.numTrials, 10)
        XCTAssertEqual(config.includeScopes, [])
        XCTAssertEqual(config.excludeScopes, [])
        XCTAssertEqual(config.fp32Layers, [])
        XCTAssertFalse(config.postQuant)
        XCTAssertFalse(config.int8Winograd)
        XCTAssertFalse(config.perChannel)
        XCTAssertFalse(config.unsignedAfterReLU)
        XCTAssertNoThrow(try config.validate())
        XCTAssertEqual(try decode("{}"), config)
    }

    func testEveryJobFileKeyIsTheSeedsSnakeCase() throws {
        let json = """
            {"bits": 4, "wbits": 2, "signed": false, "pretrained_model": "fp32/model.safetensors",
             "step_interval": 50, "num_trials": 3, "include_scopes": ["block1"], "exclude_scopes": ["block1/conv2"],
             "fp32_layers": ["fc"], "post_quant": true, "int8_winograd": true, "per_channel": true,
             "unsigned_after_relu": true}
            """
        let expected = QuantizerConfig(bits: 4, wbits: 2, signed: false, pretrainedModel: "fp32/model.safetensors",
                                       stepInterval: 50, numTrials: 3, includeScopes: ["block1"],
                                       excludeScopes: ["block1/conv2"], fp32Layers: ["fc"], postQuant: true,
                                       int8Winograd: true, perChannel: true, unsignedAfterReLU: true)
        XCTAssertEqual(try decode(json), expected)
        // Written back with the canonical key, read back equal.
        let encoded = try JSONEncoder().encode(expected)
        let keys = try XCTUnwrap(JSONSerialization.jsonObject(with: encoded) as? [String: Any]).keys
        XCTAssertEqual(Set(keys), ["bits", "wbits", "signed", "pretrained_model", "step_interval", "num_trials",
                                   "include_scopes", "exclude_scopes", "fp32_layers", "post_quant", "int8_winograd",
                                   "per_channel", "unsigned_after_relu"])
        XCTAssertEqual(try JSONDecoder().decode(QuantizerConfig.self, from: encoded), expected)
    }

    func testTheSeedExamplesPretrainModelSpellingIsAccepted() throws {
        // The seed's example: QuantizerConfig(pretrain_model='model.ckpt', bits=8, step_interval=1000, num_trials=1)
        let config = try decode(#"{"pretrain_model": "model.ckpt", "bits": 8, "step_interval": 1000, "num_trials": 1}"#)
        XCTAssertEqual(config, QuantizerConfig(pretrainedModel: "model.ckpt", numTrials: 1))
    }

    func testBothSpellingsOfThePretrainedModelAreRefused() {
        let error = thrownError(CompressionConfigError.self) {
            try self.decode(#"{"pretrained_model": "a.ckpt", "pretrain_model": "a.ckpt"}"#)
        }
        XCTAssertEqual(error, .conflictingKeys(key: "quantizer.pretrained_model", alias: "quantizer.pretrain_model"))
        XCTAssertEqual(error.map(String.init(describing:)),
                       "quantizer.pretrained_model and quantizer.pretrain_model are both given "
                       + "(quantizer.pretrain_model is the seed's alias of quantizer.pretrained_model); hint: keep one")
    }

    func testAValueOfTheWrongTypeIsADecodingError() {
        XCTAssertNotNil(thrownError(DecodingError.self) { try self.decode(#"{"bits": "eight"}"#) })
    }

    func testBadValuesNameTheKeyTheValueAndTheRange() {
        assertInvalid(QuantizerConfig(bits: 0), "quantizer.bits must be in [1, 8], got 0")
        assertInvalid(QuantizerConfig(bits: 9), "quantizer.bits must be in [1, 8], got 9")
        assertInvalid(QuantizerConfig(wbits: 9), "quantizer.wbits must be in [1, 8], got 9")
        assertInvalid(QuantizerConfig(wbits: -1), "quantizer.wbits must be in [1, 8], got -1")
        assertInvalid(QuantizerConfig(stepInterval: 0), "quantizer.step_interval must be > 0, got 0")
        assertInvalid(QuantizerConfig(numTrials: 0), "quantizer.num_trials must be > 0, got 0")
        assertInvalid(QuantizerConfig(fp32Layers: ["fc2", ""]),
                      "quantizer.fp32_layers[1] is an empty scope; hint: scopes are \"/\"-separated paths such as "
                      + "\"block1/conv2\"")
        assertInvalid(QuantizerConfig(includeScopes: [""]),
                      "quantizer.include_scopes[0] is an empty scope; hint: scopes are \"/\"-separated paths such as "
                      + "\"block1/conv2\"")
    }

    func testBoundaryValuesAreAccepted() {
        for config in [QuantizerConfig(bits: 1, wbits: 1, stepInterval: 1, numTrials: 1),
                       QuantizerConfig(bits: 8, wbits: 8, signed: false, postQuant: true, int8Winograd: true,
                                       perChannel: true)] {
            XCTAssertNoThrow(try config.validate())
        }
    }

    func testFP32LayersMustNameAQuantizableLayerOfTheModel() throws {
        let fmnist = try XCTUnwrap(ModelZoo.make("fmnist-cnn", seed: 1))
        XCTAssertNoThrow(try QuantizerConfig(fp32Layers: ["conv1", "fc2"]).validate(against: fmnist))
        assertInvalid(QuantizerConfig(fp32Layers: ["fc2", "conv9"]), against: fmnist,
                      "quantizer.fp32_layers: 'conv9' is not a Conv2D/MatMul layer of fmnist-cnn "
                      + "(layers: conv1, conv2, fc1, fc2)")
        // A layer of another op type, and a parameter name, are not layers to keep in FP32.
        assertInvalid(QuantizerConfig(fp32Layers: ["pool1"]), against: fmnist,
                      "quantizer.fp32_layers: 'pool1' is not a Conv2D/MatMul layer of fmnist-cnn "
                      + "(layers: conv1, conv2, fc1, fc2)")
        let resnet = try XCTUnwrap(ModelZoo.make("resnet-mini", seed: 1))
        XCTAssertNoThrow(try QuantizerConfig(fp32Layers: ["block2/shortcut"]).validate(against: resnet))
        assertInvalid(QuantizerConfig(fp32Layers: ["stem/bn"]), against: resnet,
                      "quantizer.fp32_layers: 'stem/bn' is not a Conv2D/MatMul layer of resnet-mini (layers: stem, "
                      + "block1/conv1, block1/conv2, block2/conv1, block2/conv2, block2/shortcut, block3/conv1, "
                      + "block3/conv2, fc)")
    }

    func testScopesMustMatchAQuantizableLayer() throws {
        let fmnist = try XCTUnwrap(ModelZoo.make("fmnist-cnn", seed: 1))
        XCTAssertNoThrow(try QuantizerConfig(includeScopes: ["conv1", "fc1"], excludeScopes: ["conv1"]).validate(against: fmnist))
        assertInvalid(QuantizerConfig(includeScopes: ["conv1", "conv_2"]), against: fmnist,
                      "quantizer.include_scopes: 'conv_2' matches no Conv2D/MatMul layer of fmnist-cnn "
                      + "(layers: conv1, conv2, fc1, fc2)")
        assertInvalid(QuantizerConfig(excludeScopes: ["pool1"]), against: fmnist,
                      "quantizer.exclude_scopes: 'pool1' matches no Conv2D/MatMul layer of fmnist-cnn "
                      + "(layers: conv1, conv2, fc1, fc2)")
        let resnet = try XCTUnwrap(ModelZoo.make("resnet-mini", seed: 1))
        XCTAssertNoThrow(try QuantizerConfig(includeScopes: ["block2"]).validate(against: resnet), "an enclosing scope")
    }

    func testThePretrainedModelMustExist() throws {
        let fmnist = try XCTUnwrap(ModelZoo.make("fmnist-cnn", seed: 1))
        assertInvalid(QuantizerConfig(pretrainedModel: "/x"), against: fmnist,
                      "quantizer.pretrained_model: no such file or directory: /x")
        assertInvalid(QuantizerConfig(pretrainedModel: ""), against: fmnist,
                      "quantizer.pretrained_model: no such file or directory: \"\"")
        let dir = try TestPaths.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("model.safetensors")
        try Data([0]).write(to: file)
        XCTAssertNoThrow(try QuantizerConfig(pretrainedModel: file.path).validate(against: fmnist))
        XCTAssertNoThrow(try QuantizerConfig(pretrainedModel: dir.path).validate(against: fmnist))  // a checkpoint dir
    }

    func testValidationAgainstAModelAlsoChecksTheValues() throws {
        let fmnist = try XCTUnwrap(ModelZoo.make("fmnist-cnn", seed: 1))
        assertInvalid(QuantizerConfig(bits: 9, fp32Layers: ["conv9"]), against: fmnist,
                      "quantizer.bits must be in [1, 8], got 9")
    }

    private func decode(_ json: String) throws -> QuantizerConfig {
        try JSONDecoder().decode(QuantizerConfig.self, from: Data(json.utf8))
    }

    private func assertInvalid(_ config: QuantizerConfig, against model: Model? = nil, _ message: String,
                               file: StaticString = #filePath, line: UInt = #line) {
        let error = thrownError(CompressionConfigError.self, {
            if let model { try config.validate(against: model) } else { try config.validate() }
        }, file: file, line: line)
        XCTAssertEqual(error.map(String.init(describing:)), message, file: file, line: line)
    }
}
