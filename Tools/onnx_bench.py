"""ONNX Runtime on EasyCompression's exported fmnist-cnn (FP32 and QDQ int8).

Run by `launch/bench onnx`, after `ecbench --mode onnx --out DIR` wrote DIR/fmnist-cnn-fp32.onnx,
DIR/fmnist-cnn-qdq.onnx and DIR/test.safetensors (the 10,000 test images, NHWC, and labels):

    python Tools/onnx_bench.py DIR ENGINE_BATCH256_SAMPLES_PER_S ENGINE_BATCH1_US [--threads 2]

Prints each model's test accuracy, throughput at batch 256 (samples/s) and latency at batch 1
(µs), median of 5 rounds, with the ratio to the engine's FP32 figure measured in the same run.
"""
import argparse
import statistics
import time

import numpy as np
import onnxruntime as ort
from safetensors.numpy import load_file


def rate(session, x, budget):
    """Median seconds per call over 5 rounds of `budget / 5` seconds each."""
    rounds = []
    for _ in range(5):
        n, start = 0, time.perf_counter()
        while time.perf_counter() - start < budget / 5:
            session.run(["logits"], {"input": x})
            n += 1
        rounds.append((time.perf_counter() - start) / n)
    return statistics.median(rounds)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("dir")
    p.add_argument("engine_batch256", type=float)
    p.add_argument("engine_batch1_us", type=float)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seconds", type=float, default=3.0)
    a = p.parse_args()
    data = load_file(f"{a.dir}/test.safetensors")
    x, labels = data["input"], data["labels"].astype(np.int64)
    print(f"== ONNX Runtime {ort.__version__}, {a.threads} thread(s), CPU provider, graph optimizations on")
    print(f"engine FP32 (same run): batch 256 {a.engine_batch256:,.0f} samples/s, batch 1 {a.engine_batch1_us:.1f} µs")
    for name in ("fp32", "qdq"):
        options = ort.SessionOptions()
        options.intra_op_num_threads = a.threads
        options.inter_op_num_threads = 1
        session = ort.InferenceSession(f"{a.dir}/fmnist-cnn-{name}.onnx", options, providers=["CPUExecutionProvider"])
        logits = np.concatenate([session.run(["logits"], {"input": x[i:i + 500]})[0] for i in range(0, len(x), 500)])
        accuracy = float((logits.argmax(axis=1) == labels).mean())
        for _ in range(5):
            session.run(["logits"], {"input": x[:256]})
            session.run(["logits"], {"input": x[:1]})
        throughput = 256 / rate(session, x[:256], a.seconds)
        latency = rate(session, x[:1], a.seconds) * 1e6
        print(f"ORT {name:4s}: accuracy {accuracy:.4f}; batch 256 {throughput:9,.0f} samples/s "
              f"({throughput / a.engine_batch256:.2f}× engine FP32); batch 1 {latency:7.1f} µs "
              f"({latency / a.engine_batch1_us:.2f}× engine FP32)")
        print(f"RESULT ort_{name}_batch256_samples_per_second={throughput:.0f} ort_{name}_batch1_microseconds={latency:.1f}")


if __name__ == "__main__":
    main()
