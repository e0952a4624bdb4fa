"""Where training runs: one device, several local devices, or several machines; and
its thread pools (the dtype policy is `training.precision`).

`make_strategy` wraps `tf.distribute`: `"default"` (one device), `"mirrored"`
(`MirroredStrategy` over this machine's GPUs, or over `cpu_replicas` logical CPU devices),
`"multi-worker"` (`MultiWorkerMirroredStrategy`, one process per machine, each described
by the `TF_CONFIG` environment variable). The batch size stays the global batch: it is
split over the replicas, and the gradients are summed across them, so a run computes the
same updates on any strategy.

A strategy has to be made before TensorFlow runs its first op (multi-worker configures
collective ops, and logical CPU devices are fixed when the runtime starts).
"""

from __future__ import annotations

import json
import os

import tensorflow as tf

from lstm_textgen.errors import TextgenError, first_line, setting

STRATEGIES = ("default", "mirrored", "multi-worker")


def _split_cpu(replicas: int) -> None:
    cpu = tf.config.list_physical_devices("CPU")[0]
    try:
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(replicas)]
        )
    except RuntimeError:
        raise TextgenError(
            f"{setting('cpu_replicas')} must be set before TensorFlow starts; set it at the start "
            "of the process"
        ) from None


def _check_tf_config() -> dict:
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        raise TextgenError(
            f"{setting('strategy', 'multi-worker')} needs TF_CONFIG in each worker's "
            "environment, e.g. "
            'TF_CONFIG=\'{"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
            '"task": {"type": "worker", "index": 0}}\' (see docs/scaling.md)'
        )
    try:
        config = json.loads(raw)
        workers = config["cluster"]["worker"]
        task = config["task"]
        index = int(task["index"])
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
        raise TextgenError(
            f"TF_CONFIG is not valid ({type(e).__name__}: {e}); it needs cluster.worker "
            "(a list of host:port) and task.type and task.index"
        ) from None
    if task.get("type") == "worker" and not 0 <= index < len(workers):
        raise TextgenError(
            f"TF_CONFIG task.index {index} is outside cluster.worker ({len(workers)} workers)"
        )
    return config


def make_strategy(name: str = "default", cpu_replicas: int | None = None) -> tf.distribute.Strategy:
    """The `tf.distribute` strategy called `name`; see the module docstring.

    `cpu_replicas` splits this machine's CPU into that many logical devices first (for
    trying `"mirrored"` without GPUs; it does not make training faster).
    """
    if name not in STRATEGIES:
        raise TextgenError(
            f"{setting('strategy')} must be one of {', '.join(STRATEGIES)}, got {name!r}"
        )
    if cpu_replicas is not None:
        if cpu_replicas < 1:
            raise TextgenError(f"{setting('cpu_replicas')} must be >= 1, got {cpu_replicas}")
        _split_cpu(cpu_replicas)
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
        return tf.distribute.MirroredStrategy([d.name for d in devices])
    _check_tf_config()
    try:
        return tf.distribute.MultiWorkerMirroredStrategy()
    except (RuntimeError, ValueError) as e:
        raise TextgenError(f"cannot start the multi-worker strategy: {first_line(e)}") from None


def strategy_name(strategy: tf.distribute.Strategy) -> str:
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return "MultiWorkerMirroredStrategy"  # its class is CollectiveAllReduceStrategy
    return type(strategy).__name__


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """Whether this process writes checkpoints: always, except on workers other than the
    chief (worker 0, unless TF_CONFIG names a separate chief)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True
    if resolver.task_type == "chief":
        return True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return resolver.task_type == "worker" and resolver.task_id == 0 and not has_chief


def configure_threads(inter_op: int | None = None, intra_op: int | None = None) -> tuple[int, int]:
    """Set TensorFlow's thread pools (None keeps its default); returns `thread_settings()`.

    A setting must be made before TensorFlow runs its first op. The defaults (one
    intra-op thread per core, TensorFlow's own inter-op pool) are what `train` uses;
    `lstm-textgen bench train --inter-op N --intra-op M` compares others.
    """
    try:
        if inter_op is not None:
            tf.config.threading.set_inter_op_parallelism_threads(inter_op)
        if intra_op is not None:
            tf.config.threading.set_intra_op_parallelism_threads(intra_op)
    except RuntimeError:
        raise TextgenError(
            "thread settings must be made before TensorFlow runs its first op; "
            "set them at the start of the process"
        ) from None
    return thread_settings()


def thread_settings() -> tuple[int, int]:
    """TensorFlow's (inter-op, intra-op) thread counts; a default of 0 reads as the cores."""
    cores = os.cpu_count() or 1
    return (
        tf.config.threading.get_inter_op_parallelism_threads() or cores,
        tf.config.threading.get_intra_op_parallelism_threads() or cores,
    )
