"""ONNX Runtime on the user's own models and the compressed files EasyCompression made of them.

Run by `launch/bench own-models`, which imports each model of Tests/Fixtures/onnx, compresses it
with `easycompress` (pruning + GapFinetune on 2 ranks, LSQ W8A8 / W4A4 with QDQ export, 60%
(1,16)-block sparsity) and exports ONNX files, then:

    python Tools/compressed_models_bench.py ORIGINAL.onnx [LABEL=COMPRESSED.onnx ...] [--threads 2]

For each file: the parameter count (float and int8 initializers, excluding QDQ scales and zero
points), the accuracy on all 10,000 Fashion-MNIST test images in ONNX Runtime (inputs in the
file's own layout, pixels / 255), and the batch-256 throughput, measured alternately with the
original (median of 5 rounds each) — printed with the ratio to the original.
"""
import argparse
import gzip
import statistics
import time

import numpy as np
import onnx
import onnxruntime as ort

DATA = "/usr/share/datasets/fashion-mnist"


def idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def parameters(model):
    skip = ("scale", "zero_point", "shape", "split", "clip_min", "clip_max")
    return int(sum(np.prod(t.dims) for t in model.graph.initializer
                   if t.data_type in (1, 3) and not t.name.endswith(skip) and len(t.dims) > 0))


def session(path, threads):
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    s = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    shape = s.get_inputs()[0].shape
    nchw = len(shape) == 4 and shape[1] in (1, 3) and shape[3] not in (1, 3)
    return s, nchw


def feed(s, nchw, images):
    x = images.astype(np.float32)[..., None] / 255.0  # NHWC
    return {s.get_inputs()[0].name: np.ascontiguousarray(x.transpose(0, 3, 1, 2)) if nchw else x}


def accuracy(s, nchw, images, labels):
    out = np.concatenate([s.run(None, feed(s, nchw, images[i:i + 500]))[0] for i in range(0, len(images), 500)])
    return float((out.argmax(axis=1) == labels).mean())


def rate(s, nchw, batch, seconds=0.6):
    inputs = feed(s, nchw, batch)
    for _ in range(3):
        s.run(None, inputs)
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        s.run(None, inputs)
        n += 1
    return n * len(batch) / (time.perf_counter() - start)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("original")
    p.add_argument("compressed", nargs="*", help="LABEL=FILE")
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    images, labels = idx(f"{DATA}/t10k-images-idx3-ubyte.gz"), idx(f"{DATA}/t10k-labels-idx1-ubyte.gz").astype(np.int64)
    files = [("original", a.original)] + [tuple(c.split("=", 1)) for c in a.compressed]
    sessions = [(label, path, *session(path, a.threads)) for label, path in files]
    batch = images[:256]
    rates = {label: [] for label, *_ in sessions}
    for _ in range(5):  # alternate, so drift hits every file alike
        for label, _, s, nchw in sessions:
            rates[label].append(rate(s, nchw, batch))
    base_params = parameters(onnx.load(a.original))
    base_rate = statistics.median(rates["original"])
    base_acc = None
    print(f"{'file':<16} {'parameters':>10} {'of original':>11} {'ORT accuracy':>12} {'b256 samples/s':>15} {'speedup':>8}")
    for label, path, s, nchw in sessions:
        acc = accuracy(s, nchw, images, labels)
        base_acc = acc if base_acc is None else base_acc
        n = parameters(onnx.load(path))
        r = statistics.median(rates[label])
        print(f"{label:<16} {n:>10} {n / base_params:>10.1%} {acc:>12.4f} {r:>15.0f} {r / base_rate:>7.2f}×")
        key = label.replace("-", "_")
        print(f"RESULT {key}_params={n} {key}_params_ratio={n / base_params:.4f} {key}_ort_accuracy={acc:.4f} "
              f"{key}_accuracy_delta_pt={(acc - base_acc) * 100:.2f} {key}_b256_speedup={r / base_rate:.3f}")


if __name__ == "__main__":
    main()
