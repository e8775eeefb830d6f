"""The peers of `launch/bench peers`: TensorFlow/Keras training and ONNX Runtime inference of fmnist-cnn.

Run by `launch/bench peers` (which makes the venv, .build/peers-env, and alternates these rounds
with the engine's own, ecbench --mode peer-train / peer-inference, in the same run):

    python Tools/peers_bench.py train --steps 300 [--threads 2]
    python Tools/peers_bench.py ort DIR/fmnist-cnn-fp32.onnx [--threads 2] [--seconds 3]

`train`: the model of the engine's zoo written in Keras (conv 1→32 3×3 same + ReLU + max pool 2,
conv 32→64 3×3 same + ReLU + max pool 2, flatten 3136, dense 128 ReLU, dense 10 logits), SGD
lr 0.05 momentum 0.9, batch 64, sparse categorical cross-entropy on logits, on Fashion-MNIST
(pixels / 255) from /usr/share/datasets/fashion-mnist, with Keras's defaults otherwise
(`model.fit`, shuffling). Steady state: `--warmup` steps first (tracing, compilation), then the
time of `--steps` steps, from the end of the step before the first timed one to the end of the
last (a callback). Prints samples/s, the CPU time per step of all the process's threads (on a
shared machine the share of the cores a process gets varies; its CPU time per step much less)
and the process's peak RSS (getrusage).

`ort`: ONNX Runtime (CPU provider, `--threads` intra-op threads, default graph optimisations)
on the engine's own FP32 export, fed the first Fashion-MNIST test images (NHWC, pixels / 255); batch 256 (samples/s) and batch 1 (µs), median of 5 rounds of
`--seconds / 5` each.

Every figure is printed as a RESULT line for launch/bench to read.
"""
import argparse
import os
import resource
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_onnx_fixtures import read_idx  # noqa: E402  (IDX reader, size-checked)

DATA_DIR = "/usr/share/datasets/fashion-mnist"


def limit_threads(threads):
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(threads)
    # OpenMP threads that wait by sleeping, not spinning (on a shared machine spinning threads
    # slow everything down; the same work either way).
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def cpu_seconds():
    """User + system CPU seconds of this process so far (all threads)."""
    u = resource.getrusage(resource.RUSAGE_SELF)
    return u.ru_utime + u.ru_stime


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def train(a):
    limit_threads(a.threads)
    import numpy as np
    import tensorflow as tf
    tf.config.threading.set_intra_op_parallelism_threads(a.threads)
    tf.config.threading.set_inter_op_parallelism_threads(a.threads)
    import keras
    from keras import layers

    x = read_idx(f"{DATA_DIR}/train-images-idx3-ubyte.gz").astype(np.float32)[..., None] / np.float32(255)
    y = read_idx(f"{DATA_DIR}/train-labels-idx1-ubyte.gz").astype(np.int64)
    keras.utils.set_random_seed(1)
    model = keras.Sequential([
        keras.Input(shape=(28, 28, 1)),
        layers.Conv2D(32, 3, padding="same", activation="relu"), layers.MaxPooling2D(2),
        layers.Conv2D(64, 3, padding="same", activation="relu"), layers.MaxPooling2D(2),
        layers.Flatten(), layers.Dense(128, activation="relu"), layers.Dense(10),
    ])
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.05, momentum=0.9),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))

    class Clock(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.ends = []
            self.cpu = []

        def on_train_batch_end(self, batch, logs=None):
            self.ends.append(time.perf_counter())
            self.cpu.append(cpu_seconds())

    total = a.warmup + a.steps
    per_epoch = len(x) // 64
    clock = Clock()
    model.fit(x, y, batch_size=64, epochs=(total + per_epoch - 1) // per_epoch, steps_per_epoch=None
              if total >= per_epoch else total, shuffle=True, verbose=0, callbacks=[clock])
    ends = clock.ends[:total]
    if len(ends) < total:
        sys.exit(f"peers_bench: only {len(ends)} steps ran, wanted {total}")
    seconds = ends[total - 1] - ends[a.warmup - 1]
    cpu = (clock.cpu[total - 1] - clock.cpu[a.warmup - 1]) / a.steps
    rate = 64 * a.steps / seconds
    print(f"TensorFlow {tf.__version__} / Keras {keras.__version__}: fmnist-cnn training, batch 64, {a.threads} threads, "
          f"{a.steps} steps after {a.warmup}: {1e3 * seconds / a.steps:.2f} ms/step, {rate:,.0f} samples/s, "
          f"CPU time {1e3 * cpu:.2f} ms/step (all threads), peak RSS {peak_rss_mb():,.0f} MB (jit_compile: {model.jit_compile})")
    print(f"RESULT tf_train_samples_per_second={rate:.1f} tf_cpu_ms_per_step={1e3 * cpu:.3f} tf_peak_rss_mb={peak_rss_mb():.0f}")


def ort(a):
    limit_threads(a.threads)
    import numpy as np
    import onnxruntime as rt

    x = read_idx(f"{DATA_DIR}/t10k-images-idx3-ubyte.gz")[:256].astype(np.float32)[..., None] / np.float32(255)
    options = rt.SessionOptions()
    options.intra_op_num_threads = a.threads
    options.inter_op_num_threads = 1
    session = rt.InferenceSession(a.model, options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    output = session.get_outputs()[0].name

    def rate(batch):
        """Median seconds per call over 5 rounds of `seconds / 5` each."""
        rounds = []
        for _ in range(5):
            n, start = 0, time.perf_counter()
            while time.perf_counter() - start < a.seconds / 5:
                session.run([output], {name: batch})
                n += 1
            rounds.append((time.perf_counter() - start) / n)
        return statistics.median(rounds)

    big, one = np.ascontiguousarray(x[:256]), np.ascontiguousarray(x[:1])
    for _ in range(10):
        session.run([output], {name: big})
        session.run([output], {name: one})
    throughput = 256 / rate(big)
    latency = rate(one) * 1e6
    print(f"ONNX Runtime {rt.__version__}, {a.threads} threads: batch 256 {throughput:,.0f} samples/s, batch 1 {latency:.1f} µs")
    print(f"RESULT ort_b256_samples_per_second={throughput:.0f} ort_b1_us={latency:.1f}")


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="what", required=True)
    t = sub.add_parser("train")
    t.add_argument("--steps", type=int, default=300)
    t.add_argument("--warmup", type=int, default=50)
    t.add_argument("--threads", type=int, default=2)
    o = sub.add_parser("ort")
    o.add_argument("model")
    o.add_argument("--threads", type=int, default=2)
    o.add_argument("--seconds", type=float, default=3.0)
    a = p.parse_args()
    train(a) if a.what == "train" else ort(a)


if __name__ == "__main__":
    main()
