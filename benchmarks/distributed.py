"""Distributed training on local CPU workers: steps/s for 1 vs 2 all-reduce workers on the same
model, and the time from the call to the first training step (setup: processes, TensorFlow
import, cluster rendezvous).

On this 2-core machine two workers share the CPU, so steps/s measures the cost of the
collective, not a speed-up. Usage: python benchmarks/distributed.py
"""

from __future__ import annotations

import os
import tempfile
import time

STEPS = 60


def train():
    import time

    import numpy as np
    import tensorflow as tf

    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    with strategy.scope():
        model = tf.keras.Sequential(
            [
                tf.keras.Input((64,)),
                tf.keras.layers.Dense(256, activation="relu"),
                tf.keras.layers.Dense(10),
            ]
        )
        model.compile(
            optimizer="adam", loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        )
    x = np.random.default_rng(0).random((STEPS * 32, 64)).astype("float32")
    y = np.random.default_rng(1).integers(0, 10, STEPS * 32)
    marks: list[float] = []

    class Clock(tf.keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            marks.append(time.time())

    model.fit(x, y, batch_size=32, epochs=1, verbose=0, callbacks=[Clock()])
    return {"first_step": marks[0], "steps_per_s": (len(marks) - 1) / (marks[-1] - marks[0])}


def main() -> None:
    with tempfile.TemporaryDirectory() as home:
        os.environ.update({"HOPS_HOME": home, "HOPS_TENSORBOARD": "false"})
        from hops import experiment

        rows = {}
        for workers in (1, 2):
            start = time.time()
            result = experiment.collective_all_reduce(
                train, num_workers=workers, name=f"bench-{workers}"
            )
            chief = result.return_dict
            rows[workers] = (
                chief["steps_per_s"],
                chief["first_step"] - start,
                result.record.duration_s,
            )
    print(
        f"\nMultiWorkerMirroredStrategy on local CPU workers, {STEPS} steps of batch 32 per worker\n"
    )
    print(f"{'workers':<10}{'steps/s (chief)':>18}{'call -> first step s':>24}{'whole run s':>14}")
    for workers, (rate, setup, total) in rows.items():
        print(f"{workers:<10}{rate:>18.1f}{setup:>24.2f}{total:>14.2f}")


if __name__ == "__main__":
    main()
