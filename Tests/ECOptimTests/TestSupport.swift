import ECTestSupport
import ECNN
import ECOptim
import ECTensor
import XCTest

/// A trainable 1-D parameter holding `values`.
func makeParameter(_ name: String, _ values: [Float], role: ParameterRole = .weight) -> Parameter {
    Parameter(name: name, role: role, value: Tensor(shape: [values.count], scalars: values))
}

/// Sets `p.grad` to `values`.
func setGrad(_ p: Parameter, _ values: [Float]) {
    p.grad = Tensor(shape: p.value.shape, scalars: values)
}

/// Asserts `body` throws an `OptimizerError` whose text is `description`.
func assertOptimizerError(_ description: String, file: StaticString = #filePath, line: UInt = #line,
                          _ body: () throws -> Void) {
    do {
        try body()
        XCTFail("expected error: \(description)", file: file, line: line)
    } catch let error as OptimizerError {
        XCTAssertEqual(error.description, description, file: file, line: line)
    } catch {
        XCTFail("unexpected error type \(error)", file: file, line: line)
    }
}

/// Gradient of f(w) = ½ Σ aᵢ(wᵢ − cᵢ)²: aᵢ(wᵢ − cᵢ).
func quadraticGrad(_ w: [Float], a: [Float], c: [Float]) -> [Float] {
    (0..<w.count).map { a[$0] * (w[$0] - c[$0]) }
}
