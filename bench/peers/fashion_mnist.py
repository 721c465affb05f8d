"""Fashion-MNIST from Debian's dataset-fashion-mnist package, for the peer scripts (the same
files tabula's datasets::fashion_mnist::load_data reads)."""
import gzip
import os

import numpy as np

DIRECTORY = os.environ.get("TABULA_FASHION_MNIST_DIR", "/usr/share/datasets/fashion-mnist")


def read_idx(path):
    """An IDX file (gzip'd) as a numpy array of its bytes, shaped as its header says."""
    with gzip.open(path, "rb") as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def test_images():
    """The 10,000 test images as float32 in [0, 1], shape (10000, 28, 28)."""
    return read_idx(f"{DIRECTORY}/t10k-images-idx3-ubyte.gz").astype(np.float32) / 255.0


def train_split():
    """(images as float32 in [0, 1] of shape (60000, 28, 28), labels as int64)."""
    x = read_idx(f"{DIRECTORY}/train-images-idx3-ubyte.gz").astype(np.float32) / 255.0
    y = read_idx(f"{DIRECTORY}/train-labels-idx1-ubyte.gz").astype(np.int64)
    return x, y
