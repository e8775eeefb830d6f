import XCTest
@testable import ECCompression
import ECTensor

/// The int8 layer's fused stages give exactly what the stages give one after another.
final class Int8LayerTests: XCTestCase {
    /// Conv → ReLU → MaxPool pooled on the Int32 sums equals pooling the dequantized output,
    /// bit for bit (signed and unsigned inputs, per-channel scales, negative biases, odd sizes,
    /// overlapping windows, post-quant outputs).
    func testPoolingTheIntegerSumsIsExact() {
        var rng = RNG(seed: 10)
        for (h, w, cin, cout, signed, size, stride) in [(6, 6, 3, 8, false, 2, 2), (7, 5, 4, 17, true, 2, 2), (6, 6, 2, 5, true, 3, 1)] {
            let kernel = [3, 3, cin, cout]
            let codes = (0..<(9 * cin * cout)).map { _ in Int8(Int(rng.next() % 255) - 127) }
            for output in [nil, (scale: Float(0.05), range: QuantRange(bits: 8, signed: false))] as [(scale: Float, range: QuantRange)?] {
                let layer = Int8Layer(name: "c", opType: "Conv2D", weightShape: kernel, weights: codes,
                                      weightScale: (0..<cout).map { _ in Float(rng.next() % 100 + 1) * 1e-3 },
                                      weightRange: QuantRange(bits: 8, signed: true), inputScale: 0.02,
                                      inputRange: QuantRange(bits: 8, signed: signed),
                                      bias: (0..<cout).map { _ in Float(Int(rng.next() % 200) - 100) * 1e-2 }, output: output)
                let x = Tensor.uniform(shape: [2, h, w, cin], low: signed ? -2 : 0, high: 2, rng: &rng)
                let fused = layer.forward(x, stride: 1, padding: .same, relu: true, pool: (size, stride))
                let plain = Variable(layer.forward(x, stride: 1, padding: .same, relu: true)).maxPool2d(size: size, stride: stride).value
                XCTAssertEqual(fused, plain, "\(h)×\(w) signed \(signed) pool \(size)/\(stride) post-quant \(output != nil)")
            }
        }
    }
}
