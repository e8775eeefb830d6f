import ECCheckpoint
import ECTensor
import XCTest

final class NamedTensorsShapeValidationTests: XCTestCase {
    private let loaded = NamedTensors([("conv2/weight", Tensor(shape: [64, 32, 3, 3])), ("conv2/bias", Tensor(shape: [64]))])

    func testMatchingShapesPass() throws {
        try loaded.validateShapes(["conv2/weight": [64, 32, 3, 3], "conv2/bias": [64]])
    }

    func testShapeMismatchHasTheSpecifiedMessage() {
        let error = checkpointError { try loaded.validateShapes(["conv2/weight": [48, 32, 3, 3], "conv2/bias": [64]]) }
        XCTAssertEqual(error, .shapeMismatch(file: "", tensor: "conv2/weight", checkpointShape: [64, 32, 3, 3],
                                             expectedShape: [48, 32, 3, 3]))
        XCTAssertEqual(error?.description, "conv2/weight: checkpoint has shape [64,32,3,3], model expects [48,32,3,3]")
    }

    func testMissingTensor() {
        let error = checkpointError {
            try loaded.validateShapes(["conv2/weight": [64, 32, 3, 3], "conv2/bias": [64], "fc/weight": [10, 2]],
                                      file: "ckpt/tensors.safetensors")
        }
        XCTAssertEqual(error, .missingTensor(file: "ckpt/tensors.safetensors", tensor: "fc/weight"))
        assertMentions(error?.description, "fc/weight", "ckpt/tensors.safetensors")
    }

    func testUnexpectedTensorUnlessAllowed() throws {
        let error = checkpointError { try loaded.validateShapes(["conv2/weight": [64, 32, 3, 3]]) }
        XCTAssertEqual(error, .unexpectedTensor(file: "", tensor: "conv2/bias"))
        try loaded.validateShapes(["conv2/weight": [64, 32, 3, 3]], allowUnexpected: true)
    }
}
