"""Where training runs: one device, several local devices, or several machines; thread
pools and the dtype policy.

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
from dataclasses import dataclass

import keras
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


# CPU flags (Linux /proc/cpuinfo) of bfloat16 matrix instructions.
BFLOAT16_FLAGS = ("avx512_bf16", "amx_bf16")


def cpu_has_bfloat16() -> bool:
    """Whether this CPU has bfloat16 matrix instructions (AVX512_BF16 or AMX)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("flags"):
                    return bool(set(line.split()) & set(BFLOAT16_FLAGS))
    except OSError:
        pass
    return False


def product_times(dtype: str, units: int, batch: int, repeats: int = 20) -> tuple[float, float]:
    """Seconds of one `[batch, units] x [units, 4 units]` product (a recurrent step's) in
    float32 and in `dtype` ("bfloat16", "float16"): medians of alternated runs."""
    import time

    a = tf.random.uniform([batch, units])
    b = tf.random.uniform([units, 4 * units])
    low = tf.as_dtype(dtype)
    operands = {tf.float32: (a, b), low: (tf.cast(a, low), tf.cast(b, low))}
    times = {kind: [] for kind in operands}
    for _ in range(repeats + 1):
        for kind, (x, y) in operands.items():
            start = time.perf_counter()
            tf.matmul(x, y).numpy()
            times[kind].append(time.perf_counter() - start)
    median = {kind: sorted(t[1:])[repeats // 2] for kind, t in times.items()}
    return median[tf.float32], median[low]


def bfloat16_speed(units: int = 512, batch: int = 64, repeats: int = 20) -> float:
    """How fast a bfloat16 product of a recurrent step (`product_times`) runs on this CPU,
    as a multiple of the float32 one."""
    float32, bfloat16 = product_times("bfloat16", units, batch, repeats)
    return float32 / bfloat16


# `--mixed-precision auto` tries the low precision from this model width, and takes it
# where a step's product runs at least this much faster. Below it the products are too
# small for the per-op cost of the casts to be paid back.
AUTO_MIN_UNITS = 128
AUTO_MIN_SPEED = 1.2


@dataclass
class Precision:
    """What `--mixed-precision` does on this machine."""

    policy: str  # Keras's global dtype policy
    matmul_dtype: str | None  # GateLSTM's product operands (None: the compute dtype)
    note: str | None = None  # the choice and why, for the log

    @classmethod
    def of_policy(cls, policy: str, note: str | None = None) -> Precision:
        """The precision of a dtype policy a run started with."""
        return cls(policy, "bfloat16" if policy == "mixed_bfloat16" else None, note)


def choose_precision(mode, units: int = 512, batch: int = 64) -> Precision:
    """What a run of a `units`-wide model and `batch` rows a replica computes in.

    `mode` is `--mixed-precision`'s value (a bool, from an earlier run's config, reads as
    on or off):

    - off: float32.
    - on: on a GPU `mixed_float16` (Keras's LSTM takes it; GateLSTM's loop stays
      float32). On a CPU with bfloat16 instructions (AVX512_BF16 or AMX), where a
      bfloat16 product of a 512-unit step is measured faster than float32:
      `mixed_bfloat16`, and the matrix products of GateLSTM (input projection, recurrent
      product and their gradients) take bfloat16 operands; the cell state, the gates'
      elementwise math, the variables, the logits and the loss stay in float32.
      Otherwise float32, with a note that says how fast a bfloat16 product ran here
      (slower where it is emulated).
    - auto: as on, where the model is at least `AUTO_MIN_UNITS` wide and a product of
      its step (`product_times`, float16 on a GPU) runs at least `AUTO_MIN_SPEED` times
      faster than float32; float32 elsewhere. The note says which, and why.
    """
    mode = {True: "on", False: "off"}.get(mode, mode)
    if mode == "off":
        return Precision("float32", None)
    if mode == "on":
        return _precision_on()
    return _precision_auto(units, batch)


def _precision_on() -> Precision:
    if tf.config.list_physical_devices("GPU"):
        return Precision("mixed_float16", None)
    has_instructions, speed = cpu_has_bfloat16(), bfloat16_speed()
    if has_instructions and speed > 1.0:
        return Precision("mixed_bfloat16", "bfloat16")
    why = (
        "this CPU has bfloat16 instructions, but"
        if has_instructions
        else "this CPU has no bfloat16 instructions (AVX512_BF16 or AMX);"
    )
    return Precision(
        "float32",
        None,
        f"--mixed-precision: {why} a bfloat16 product of a 512-unit step ran at "
        f"{speed:.2f}x the speed of float32 here, so training stays in float32",
    )


def _precision_auto(units: int, batch: int) -> Precision:
    gpu = bool(tf.config.list_physical_devices("GPU"))
    low = "float16" if gpu else "bfloat16"
    said = "--mixed-precision auto:"
    if not gpu and not cpu_has_bfloat16():
        return Precision(
            "float32",
            None,
            f"{said} float32, as this CPU has no bfloat16 instructions (AVX512_BF16 or AMX)",
        )
    if units < AUTO_MIN_UNITS:
        return Precision(
            "float32",
            None,
            f"{said} float32, as a {units}-unit model's products are too small for {low} "
            f"to pay (it is tried from {AUTO_MIN_UNITS} units)",
        )
    float32, lower = product_times(low, units, batch)
    speed = float32 / lower
    times = (
        f"a {units}-unit step's product took {1e3 * float32:.3f} ms in float32 and "
        f"{1e3 * lower:.3f} ms in {low} ({speed:.2f}x)"
    )
    if speed >= AUTO_MIN_SPEED:
        policy = f"mixed_{low}"
        return Precision.of_policy(policy, f"{said} {policy}, as {times}")
    return Precision(
        "float32", None, f"{said} float32, as {times}, under the {AUTO_MIN_SPEED}x it takes"
    )


def set_mixed_precision(precision: Precision) -> Precision:
    """Set Keras's global dtype policy to `precision`'s; returns it."""
    keras.mixed_precision.set_global_policy(precision.policy)
    return precision


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
