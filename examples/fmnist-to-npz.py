#!/usr/bin/env python3
"""Writes Fashion-MNIST as NumPy archives the way a PyTorch user holds it, for
examples/fmnist-cnn-npz.yaml: OUT/fmnist-train.npz and OUT/fmnist-test.npz, each with
x (N×1×28×28 uint8, NCHW) and y (N int64 labels).

    python3 examples/fmnist-to-npz.py data            # all 60,000 + 10,000 images
    python3 examples/fmnist-to-npz.py data --limit 640

Reads the IDX files of Debian's dataset-fashion-mnist package (raw or .gz)."""
import argparse, gzip, os
import numpy as np

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument("out", help="directory to write the two .npz files into")
parser.add_argument("--limit", type=int, help="keep only the first N images of each split")
parser.add_argument("--source", default="/usr/share/datasets/fashion-mnist", help="directory of the IDX files")
args = parser.parse_args()


def idx(name, header):
    path = os.path.join(args.source, name)
    data = open(path, "rb").read() if os.path.exists(path) else gzip.open(path + ".gz").read()
    return np.frombuffer(data, np.uint8, offset=header)


os.makedirs(args.out, exist_ok=True)
for split, prefix in [("train", "train"), ("test", "t10k")]:
    x = idx(f"{prefix}-images-idx3-ubyte", 16).reshape(-1, 1, 28, 28)
    y = idx(f"{prefix}-labels-idx1-ubyte", 8).astype(np.int64)
    np.savez_compressed(os.path.join(args.out, f"fmnist-{split}.npz"), x=x[: args.limit], y=y[: args.limit])
    print(f"{args.out}/fmnist-{split}.npz: x {x[: args.limit].shape} uint8, y {y[: args.limit].shape} int64")
