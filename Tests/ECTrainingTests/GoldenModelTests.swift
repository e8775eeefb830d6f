import ECTestSupport
import Foundation
import XCTest
import EasyCompression

/// The engine computes the same function as TensorFlow: weights trained by TensorFlow/Keras
/// (Tests/Fixtures/golden) loaded into our fmnist-cnn give TF's test accuracy and logits.
final class GoldenModelTests: XCTestCase {
    struct Expected: Decodable {
        let test_accuracy: Double
        let first8_test_logits: [[Float]]
        let first8_labels: [Int32]
    }

    func testTensorFlowWeightsGiveTensorFlowOutputs() throws {
        let weights = TestPaths.goldenWeights.path
        let expected = try JSONDecoder().decode(Expected.self, from: Data(contentsOf: TestPaths.goldenExpected))
        let model = try XCTUnwrap(ModelZoo.make("fmnist-cnn", seed: 0))
        try WeightLoader.load(into: model, from: weights)
        let test = try Dataset.load(.test)

        let (x, y) = test.gather(0..<8)
        XCTAssertEqual(y, expected.first8_labels)
        let logits = model(Variable(x), .inference()).value
        var worst: Float = 0
        for i in 0..<8 {
            for j in 0..<10 { worst = max(worst, abs(logits[flat: i * 10 + j] - expected.first8_test_logits[i][j])) }
        }
        XCTAssertLessThan(worst, 1e-4, "largest logit difference \(worst) (expected values have 5 decimals)")

        let result = try Evaluator.evaluate(model, on: test)
        XCTAssertEqual(result.samples, 10_000)
        XCTAssertEqual(result.accuracy, expected.test_accuracy, accuracy: 1e-9,
                       "TensorFlow's 0.9006 on the 10,000 test images")
    }

    func testLoadingRejectsWeightsOfAnotherModel() throws {
        let model = try XCTUnwrap(ModelZoo.make("lenet5", seed: 0))
        XCTAssertThrowsError(try WeightLoader.load(into: model, from: TestPaths.goldenWeights.path)) { error in
            XCTAssertTrue("\(error)".contains("conv1/bias: checkpoint has shape [32], model expects [6]"), "\(error)")
        }
    }
}
