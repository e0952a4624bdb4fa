"""Timing helpers shared by the benchmarks."""

from __future__ import annotations

import platform
import statistics
import time


def time_alternately(fns, rounds, warmup=1):
    """{name: [seconds per round]}: each round calls every function once, in turn, so
    that a slow spell of the machine hits all of them alike. `warmup` untimed calls of
    each come first."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return times


def median_times(fns, repeats):
    """{name: median seconds} of each function, timed in alternation after a warm-up."""
    times = time_alternately(fns, repeats)
    return {name: statistics.median(t) for name, t in times.items()}


def cpu_description() -> str:
    """The CPU model and its vector ISA flags, for every benchmark table's header."""
    model, flags, family = platform.processor() or "unknown CPU", set(), {}
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "model name":
                    model = value.strip()
                elif key == "flags":
                    flags = set(value.split())
                elif key in ("cpu family", "model") and key not in family:
                    family[key] = value.strip()
    except OSError:
        pass
    if family:
        # A virtual machine may name only the brand; family and model tell the generation.
        model += f", family {family.get('cpu family', '?')} model {family.get('model', '?')}"
    isa = [name for flag, name in (
        ("avx2", "AVX2"),
        ("avx512f", "AVX-512"),
        ("avx512_bf16", "AVX512_BF16"),
        ("amx_bf16", "AMX"),
    ) if flag in flags]  # fmt: skip
    return f"{model} ({', '.join(isa) or 'no AVX2'})"
