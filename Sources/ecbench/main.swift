import Foundation
import ECTensor
import ECNN

// Temporary: time forward+backward of fmnist-cnn at batch 64.
BLAS.setThreads(2); Parallel.workers = 1
let model = ModelZoo.make("fmnist-cnn", seed: 1)!
var rng = RNG(seed: 3)
let x = Tensor.uniform(shape: [64, 28, 28, 1], low: 0, high: 1, rng: &rng)
let labels = (0..<64).map { Int32($0 % 10) }
func step() {
    model.root.zeroGrad()
    let ctx = ForwardContext.training()
    let loss = model(Variable(x), ctx).softmaxCrossEntropy(labels: labels)
    ctx.tape!.backward(from: loss)
}
for _ in 0..<20 { step() }
let n = 200
let t0 = Date()
for _ in 0..<n { step() }
let dt = Date().timeIntervalSince(t0)
print(String(format: "fwd+bwd: %.2f ms/step, %.0f samples/s", dt / Double(n) * 1000, Double(n * 64) / dt))
