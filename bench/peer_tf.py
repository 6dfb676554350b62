#!/usr/bin/env python3
# Copy of the project's shared peer benchmark (shared/bench/peer_tf.py) kept in the repository so that
# `convscope bench --peers` has it on a fresh machine (it embeds this file). Edit both together.
"""Peer reference in the seed's own stack: the Keras tutorial CNN in TensorFlow/Keras.

usage: peer_tf.py --random N [--size 150] [--epochs 3] [--batch 64] [--threads 2]
       peer_tf.py --folder TRAIN VAL [...]   the seed's own pipeline: ImageDataGenerator with the
              tutorial's augmentation, flow_from_directory, validation and a checkpoint every epoch
Prints one JSON line per epoch: {"epoch", "epoch_s", "img_per_s", "val_acc"?} (model.fit).
Needs tensorflow-cpu, tf-keras and scipy (venv ~/.cache/convscope-tf)."""
import argparse, json, os, tempfile, time
ap = argparse.ArgumentParser()
ap.add_argument("--random", type=int, default=0); ap.add_argument("--folder", nargs=2)
ap.add_argument("--size", type=int, default=150)
ap.add_argument("--epochs", type=int, default=3); ap.add_argument("--batch", type=int, default=64)
ap.add_argument("--threads", type=int, default=2)
a = ap.parse_args()
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import numpy as np, tensorflow as tf
if a.folder:  # the seed's exact API: Keras 2 (tf_keras), ImageDataGenerator
    import tf_keras as keras
    from tf_keras import layers
    from tf_keras.preprocessing.image import ImageDataGenerator
else:
    from tensorflow import keras
    from keras import layers
tf.config.threading.set_intra_op_parallelism_threads(a.threads)
tf.config.threading.set_inter_op_parallelism_threads(1)
s = a.size
m = keras.Sequential([keras.Input((s, s, 3)),
    layers.Conv2D(16, 3, padding="same", activation="relu"), layers.MaxPooling2D(), layers.Dropout(0.2),
    layers.Conv2D(32, 3, padding="same", activation="relu"), layers.MaxPooling2D(),
    layers.Conv2D(64, 3, padding="same", activation="relu"), layers.MaxPooling2D(), layers.Dropout(0.2),
    layers.Flatten(), layers.Dense(512, activation="relu"), layers.Dense(1)])
m.compile(optimizer="adam", loss=keras.losses.BinaryCrossentropy(from_logits=True), metrics=["accuracy"])
class T(keras.callbacks.Callback):
    def __init__(self, n): super().__init__(); self.n = n
    def on_epoch_begin(self, e, logs=None): self.t = time.time()
    def on_epoch_end(self, e, logs=None):
        dt = time.time() - self.t
        row = {"epoch": e + 1, "epoch_s": round(dt, 3), "img_per_s": round(self.n / dt, 1)}
        if logs and "val_accuracy" in logs: row["val_acc"] = round(float(logs["val_accuracy"]), 4)
        print(json.dumps(row), flush=True)
if a.folder:
    gen = ImageDataGenerator(rescale=1 / 255, rotation_range=45, width_shift_range=.15, height_shift_range=.15,
                             horizontal_flip=True, zoom_range=0.3)
    tr = gen.flow_from_directory(a.folder[0], target_size=(s, s), batch_size=a.batch, class_mode="binary")
    va = ImageDataGenerator(rescale=1 / 255).flow_from_directory(a.folder[1], target_size=(s, s), batch_size=a.batch, class_mode="binary")
    ck = keras.callbacks.ModelCheckpoint(os.path.join(tempfile.mkdtemp(), "ck-{epoch:02d}.h5"))
    m.fit(tr, validation_data=va, epochs=a.epochs, verbose=0, callbacks=[T(tr.samples), ck])
else:
    rng = np.random.default_rng(0)
    x = rng.random((a.random, s, s, 3), dtype=np.float32); y = rng.integers(0, 2, (a.random, 1)).astype(np.float32)
    m.fit(x, y, batch_size=a.batch, epochs=a.epochs, verbose=0, callbacks=[T(a.random)])
