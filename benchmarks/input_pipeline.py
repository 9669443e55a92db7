"""The tf.data autotuner's teardown wait, shown on one model: fits fed as Keras feeds arrays, and as
resnet-lab feeds them (`resnet_lab.data.feeding`), taken in turns (TensorFlow backend).

    python benchmarks/input_pipeline.py 10 4   # steps per fit, fits per feeding

For each fit: the time until fit returned, the sum of its steps, and the wait after its last step.
"""

from __future__ import annotations

import sys
import time

import keras
import numpy as np

from resnet_lab.data.feeding import training_feed

BATCH = 64


class StepMarks(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.first, self.ends = None, []

    def on_train_batch_begin(self, batch, logs=None):
        self.first = self.first or time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self.ends.append(time.perf_counter())


def main() -> None:
    steps, fits = int(sys.argv[1]), int(sys.argv[2])
    x = np.random.rand(BATCH * steps, 32, 32, 3).astype("float32")
    y = np.random.randint(0, 10, BATCH * steps)
    feeds = {"keras arrays": lambda: {"x": x, "y": y, "batch_size": BATCH, "shuffle": True},
             "resnet-lab feed": lambda: training_feed(x, y, BATCH, seed=0)}
    models = {}
    for name in feeds:  # a small convolutional network: the wait does not depend on the model
        models[name] = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Conv2D(64, 3, padding="same"),
                                         keras.layers.Conv2D(64, 3, padding="same"),
                                         keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(10)])
        models[name].compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        models[name].fit(**feeds[name](), epochs=1, verbose=0)
    for _ in range(fits):
        for name, feed in feeds.items():
            marks = StepMarks()
            started = time.perf_counter()
            models[name].fit(**feed(), epochs=1, verbose=0, callbacks=[marks])
            returned = time.perf_counter()
            print(f"{name:16s} fit returned after {returned - started:6.2f} s; "
                  f"steps {marks.ends[-1] - marks.first:6.2f} s; "
                  f"wait after the last step {returned - marks.ends[-1]:6.2f} s", flush=True)


if __name__ == "__main__":
    main()
