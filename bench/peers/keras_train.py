"""TensorFlow/Keras side of the training benchmark: the same workloads as bench/train_bench.cpp
(NHWC, TensorFlow's native layout on the CPU, as tabula's), one JSON line as
bench/peers/protocol.py's train_main prints it. `model.fit` is timed whole, its first step's
tracing included, as a user's epoch would be; Keras leaves XLA off on a CPU-only machine.

    build-bench/venv/bin/python bench/peers/keras_train.py --workload mlp_small --threads 2

CPU only: --device cuda is refused (exit status protocol.DEVICE_REFUSED, with a message), as the
venv's TensorFlow is the CPU build; bench/run_train_bench.py --device cuda skips Keras.
"""
import time

import tensorflow as tf
from tensorflow import keras

from fashion_mnist import train_split
from protocol import sine_windows, train_main

layers = keras.layers


def lstm_model():
    """The lstm workload's model: LSTM(64) over 50 steps of 1 feature, its last state to one
    output."""
    return keras.Sequential([keras.Input((50, 1)), layers.LSTM(64), layers.Dense(1)])


def workload(name):
    if name == "lstm":
        x, y = sine_windows()
        return lstm_model(), x, y, "mse", 64
    x, y = train_split()
    if name == "mlp_small":
        model = keras.Sequential([keras.Input((28, 28)), layers.Flatten(),
                                  layers.Dense(128, activation="relu"),
                                  layers.Dense(10, activation="softmax")])
        return model, x, y, "sparse_categorical_crossentropy", 128
    if name == "mlp_large":
        model = keras.Sequential([keras.Input((28, 28)), layers.Flatten(),
                                  layers.Dense(1024, activation="relu"),
                                  layers.Dense(1024, activation="relu"),
                                  layers.Dense(10, activation="softmax")])
        return model, x, y, "sparse_categorical_crossentropy", 256
    if name == "cnn":
        model = keras.Sequential([keras.Input((28, 28, 1)),
                                  layers.Conv2D(32, 3, activation="relu"), layers.MaxPooling2D(2),
                                  layers.Conv2D(64, 3, activation="relu"), layers.MaxPooling2D(2),
                                  layers.Flatten(), layers.Dense(128, activation="relu"),
                                  layers.Dense(10, activation="softmax")])
        return model, x.reshape(60000, 28, 28, 1), y, "sparse_categorical_crossentropy", 64
    raise SystemExit(f"unknown workload {name}")


def set_threads(threads):
    # Before TensorFlow's first op, or it refuses: its two pools, like torch.set_num_threads.
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)
    keras.utils.set_random_seed(0)


def version():
    return f"{tf.__version__} (Keras {keras.__version__})"


def train(name, epochs, limit, device):  # device: "cpu", the only one train_main lets through
    model, x, y, loss, batch = workload(name)
    x, y = x[:limit], y[:limit]
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=loss)
    start = time.perf_counter()
    history = model.fit(x, y, batch_size=batch, epochs=epochs, shuffle=True, verbose=0)
    return x.shape[0] * epochs, time.perf_counter() - start, history.history["loss"][-1]


if __name__ == "__main__":
    train_main("keras", version, set_threads, train)
