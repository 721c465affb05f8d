"""TensorFlow/Keras side of bench/memory_bench.cpp: the runs of bench/peers/protocol.py's
memory_main, with Keras's clearing idiom (del model; gc.collect();
tf.keras.backend.clear_session()).

    build-bench/venv/bin/python bench/peers/keras_memory.py [--cycles 100] [--threads 2]
    build-bench/venv/bin/python bench/peers/keras_memory.py --test predict [--workload cnn|lstm] \
        [--threads 2]

CPU only: --device cuda is refused (exit status protocol.DEVICE_REFUSED), as in keras_train.py.
"""
import gc

from tensorflow import keras

from keras_train import lstm_model, set_threads, version
from protocol import memory_main


def fit(width, x, y, batch):
    model = keras.Sequential([keras.Input((784,)), keras.layers.Dense(width, activation="relu"),
                              keras.layers.Dense(width, activation="relu"),
                              keras.layers.Dense(10, activation="softmax")])
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
    model.fit(x, y, batch_size=batch, epochs=1, shuffle=True, verbose=0)
    return [model]  # the optimizer is the model's


def cnn():
    """keras_train.py's cnn workload."""
    return keras.Sequential([keras.Input((28, 28, 1)),
                             keras.layers.Conv2D(32, 3, activation="relu"),
                             keras.layers.MaxPooling2D(),
                             keras.layers.Conv2D(64, 3, activation="relu"),
                             keras.layers.MaxPooling2D(), keras.layers.Flatten(),
                             keras.layers.Dense(128, activation="relu"),
                             keras.layers.Dense(10, activation="softmax")])


def predict(model, x, batch):
    return model.predict(x, batch_size=batch, verbose=0)


def clear(trial):
    trial.clear()  # del model
    gc.collect()
    keras.backend.clear_session()


if __name__ == "__main__":
    memory_main("keras", version, set_threads, fit, clear,
                predict_models={"cnn": (cnn, lambda images: images[..., None]),  # NHWC
                                "lstm": (lstm_model, lambda windows: windows)},
                predict=predict)
