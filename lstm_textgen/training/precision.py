"""What training computes in: float32, or mixed bfloat16 where the CPU has bfloat16
matrix instructions and they are measured to be faster (`--mixed-precision auto`).
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import tensorflow as tf

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
