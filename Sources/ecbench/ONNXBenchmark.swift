import EasyCompression
import Foundation

/// Writes the exported fmnist-cnn models for ONNX Runtime's benchmark (`Tools/onnx_bench.py`,
/// run by `launch/bench onnx`) and measures the engine's FP32 inference in the same run as the
/// reference: TensorFlow's golden FP32 weights, and those weights with W8A8 LSQ step sizes
/// calibrated on 256 training images (unsigned activations, per-tensor weights) as QDQ.
struct ONNXBenchmark {
    let options: BenchOptions

    func run() throws {
        let golden = goldenWeightsPath
        let out = URL(fileURLWithPath: options.out ?? ".build/onnx-bench")
        try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
        let test = try Dataset.load(.test), train = try Dataset.load(.train, limit: 256)

        let fp32 = ModelZoo.make("fmnist-cnn", seed: 1)!
        try WeightLoader.load(into: fp32, from: golden)
        try ONNXExporter.export(fp32).data.write(to: out.appendingPathComponent("fmnist-cnn-fp32.onnx"))

        let qat = ModelZoo.make("fmnist-cnn", seed: 1)!
        try WeightLoader.load(into: qat, from: golden)
        var config = QuantizerConfig()
        config.signed = false
        let quantizer = try LSQQuantizer(config: config, calibration: train.gather(0..<train.count).images, learningRate: 0.01)
        try quantizer.prepare(model: qat, communicator: SingleProcessCommunicator())
        try ONNXExporter.export(qat, quantization: try ONNXQuantization(quantizer)).data
            .write(to: out.appendingPathComponent("fmnist-cnn-qdq.onnx"))

        let (x, labels) = test.gather(0..<test.count)
        try SafeTensors(tensors: NamedTensors([("input", x), ("labels", Tensor(shape: [labels.count], scalars: labels.map(Float.init)))]))
            .write(to: out.appendingPathComponent("test.safetensors"))

        let speed = InferenceSpeed.measure(fp32, on: test, seconds: 2)
        print("== engine FP32 inference (reference for ONNX Runtime), fmnist-cnn, \(options.threads) thread(s)")
        print(String(format: "engine FP32 accuracy %.4f, fake-quant W8A8 accuracy %.4f",
                     try Evaluator.evaluate(fp32, on: test).accuracy, try Evaluator.evaluate(qat, on: test).accuracy))
        print(String(format: "RESULT engine_batch256_samples_per_second=%.0f engine_batch1_microseconds=%.1f",
                     speed.batch256SamplesPerSecond, speed.batch1Microseconds))
        print("wrote \(out.path)/fmnist-cnn-fp32.onnx, fmnist-cnn-qdq.onnx, test.safetensors")
    }
}
