"""keras_ser.distribute: strategy names, TF_CONFIG checks, and a real two-worker run.

The two-worker test starts two local processes on loopback, each with its own
TF_CONFIG, its own random seed (so the initial weights differ unless the strategy
broadcasts them) and its own training data (auto-sharding off, so the final weights
agree only if the gradients are all-reduced). Each worker saves its weights; the
test checks they are equal and that training moved them.

This file doubles as the worker script: ``python test_distribute.py OUT_NPZ``.
"""

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

from keras_ser.distribute import STRATEGIES, fit, get_strategy
from keras_ser.errors import ParameterError

WORKER_TIMEOUT_S = 180
STEPS = 4
WORKER_BATCH = 8
CLASS_WEIGHT = {0: 1.0, 1: 2.0, 2: 0.5}


def _loss():
    import keras

    return keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def _tiny_model():
    import keras

    model = keras.Sequential(
        [keras.Input((6,)), keras.layers.Dense(5, activation="tanh"), keras.layers.Dense(3)]
    )
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    return model


def _worker_data(index):
    rng = np.random.default_rng(index)
    x = rng.normal(size=(STEPS * WORKER_BATCH, 6)).astype("float32")
    y = rng.integers(0, 3, size=STEPS * WORKER_BATCH)
    return x, y


def _worker_main(out_path):
    import keras
    import tensorflow as tf

    strategy = get_strategy("multi_worker")
    index = json.loads(os.environ["TF_CONFIG"])["task"]["index"]
    keras.utils.set_random_seed(1000 + index)
    with strategy.scope():
        model = _tiny_model()
    initial = [w.numpy() for w in model.weights]
    x, y = _worker_data(index)
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
    # Batched by the global batch size: tf.distribute gives each replica a half of it, here
    # taken from the worker's own data since auto-sharding is off.
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(2 * WORKER_BATCH)
    dataset = dataset.with_options(options)
    history = fit(model, dataset, strategy=strategy, loss=_loss(), class_weight=CLASS_WEIGHT,
                  progress=False)
    np.savez(
        out_path,
        replicas=strategy.num_replicas_in_sync,
        loss=history["loss"][0],
        **{f"initial_{i}": w for i, w in enumerate(initial)},
        **{f"final_{i}": w for i, w in enumerate(model.get_weights())},
    )


def _single_process_reference(initial_weights):
    """Hand-written single-device SGD on the union of both workers' batches, step by step."""
    import keras
    import tensorflow as tf

    model = _tiny_model()
    model.set_weights(initial_weights)
    (x0, y0), (x1, y1) = _worker_data(0), _worker_data(1)
    steps = [
        (np.concatenate([x0[s], x1[s]]), np.concatenate([y0[s], y1[s]]))
        for s in (slice(k * WORKER_BATCH, (k + 1) * WORKER_BATCH) for k in range(STEPS))
    ]
    weights = np.array([CLASS_WEIGHT[k] for k in range(3)], dtype="float32")
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction=None)
    for x, y in steps:
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(loss_fn(y, model(x)) * weights[y])
        grads = tape.gradient(loss, model.trainable_variables)
        model.optimizer.apply_gradients(zip(grads, model.trainable_variables))
    return model.get_weights()


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def test_unknown_strategy_is_parameter_error():
    with pytest.raises(ParameterError, match="unknown strategy 'horovod'"):
        get_strategy("horovod")


def test_default_and_mirrored_run_on_this_machine():
    assert STRATEGIES == ("default", "mirrored", "multi_worker")
    assert get_strategy("default").num_replicas_in_sync == 1
    assert get_strategy("mirrored").num_replicas_in_sync >= 1


@pytest.mark.parametrize(
    "tf_config, message",
    [
        ("{not json", "not valid JSON"),
        ('{"cluster": {"worker": []}, "task": {"type": "worker", "index": 0}}', "non-empty"),
        ('{"cluster": {"worker": ["127.0.0.1:1"]}, "task": {"type": "worker"}}', "index"),
        ('{"cluster": {"worker": ["127.0.0.1:1"]}, "task": {"type": "worker", "index": 3}}',
         "outside"),
    ],
)
def test_malformed_tf_config_is_parameter_error(monkeypatch, tf_config, message):
    monkeypatch.setenv("TF_CONFIG", tf_config)
    with pytest.raises(ParameterError, match=message):
        get_strategy("multi_worker")


def test_two_workers_on_loopback_end_with_same_weights(tmp_path):
    workers = [f"127.0.0.1:{port}" for port in _free_ports(2)]
    processes, logs = [], []
    try:
        for index in range(2):
            env = dict(os.environ)
            env["TF_CONFIG"] = json.dumps(
                {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
            )
            env["TF_CPP_MIN_LOG_LEVEL"] = "2"
            env["CUDA_VISIBLE_DEVICES"] = ""
            log = open(tmp_path / f"worker{index}.log", "w")
            logs.append(log)
            processes.append(
                subprocess.Popen(
                    [sys.executable, __file__, str(tmp_path / f"worker{index}.npz")],
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
        codes = [process.wait(timeout=WORKER_TIMEOUT_S) for process in processes]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
        for log in logs:
            log.close()
    output = "\n".join((tmp_path / f"worker{i}.log").read_text()[-3000:] for i in range(2))
    assert codes == [0, 0], output

    results = [np.load(tmp_path / f"worker{index}.npz") for index in range(2)]
    assert [int(r["replicas"]) for r in results] == [2, 2]
    n_weights = sum(key.startswith("final_") for key in results[0].files)
    assert n_weights == 4
    initial = [results[0][f"initial_{i}"] for i in range(n_weights)]
    reference = _single_process_reference(initial)
    for i in range(n_weights):
        # Different seeds per worker: equal initial weights mean worker 0's were broadcast.
        np.testing.assert_array_equal(results[1][f"initial_{i}"], initial[i])
        np.testing.assert_allclose(results[0][f"final_{i}"], results[1][f"final_{i}"], rtol=0,
                                   atol=1e-6)
        np.testing.assert_allclose(results[0][f"final_{i}"], reference[i], rtol=0, atol=1e-5)
        assert not np.allclose(results[0][f"final_{i}"], initial[i])


def test_fit_matches_hand_written_sgd_on_one_device():
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(7)
    strategy = get_strategy("default")
    with strategy.scope():
        model = _tiny_model()
    initial = model.get_weights()
    (x0, y0), (x1, y1) = _worker_data(0), _worker_data(1)
    # Interleave so that global batch k is worker 0's batch k followed by worker 1's.
    x = np.concatenate([np.concatenate([x0[k * 8:(k + 1) * 8], x1[k * 8:(k + 1) * 8]])
                        for k in range(STEPS)])
    y = np.concatenate([np.concatenate([y0[k * 8:(k + 1) * 8], y1[k * 8:(k + 1) * 8]])
                        for k in range(STEPS)])
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(2 * WORKER_BATCH)
    history = fit(model, dataset, strategy=strategy, loss=_loss(), class_weight=CLASS_WEIGHT,
                  progress=False)
    assert len(history["loss"]) == 1 and np.isfinite(history["loss"][0])
    reference = _single_process_reference(initial)
    for got, want in zip(model.get_weights(), reference):
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)


def test_fit_rejects_uncompiled_model_and_empty_dataset():
    import keras
    import tensorflow as tf

    strategy = get_strategy("default")
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(3)])
    empty = tf.data.Dataset.from_tensor_slices((np.zeros((0, 6), "float32"), np.zeros(0)))
    with pytest.raises(ParameterError, match="compile"):
        fit(model, empty.batch(2), strategy=strategy, loss=_loss())
    model.compile(optimizer="sgd")
    with pytest.raises(ParameterError, match="unknown keras loss 'nope'"):
        fit(model, empty.batch(2), strategy=strategy, loss="nope")
    with pytest.raises(ParameterError, match="no batch"):
        fit(model, empty.batch(2), strategy=strategy, loss=_loss(), steps_per_epoch=3)


if __name__ == "__main__":
    _worker_main(sys.argv[1])
