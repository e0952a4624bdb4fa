"""Whether a run's train step is compiled with XLA: given, kept from the run's start, or
chosen by timing a few steps of each mode (`--xla auto`)."""

from __future__ import annotations

import logging
import time

import keras

from lstm_textgen.store import run_dir as rundir

logger = logging.getLogger("lstm_textgen")

# A run of fewer steps trains in graph mode without timing XLA: compiling the step twice
# would cost more than a faster step could save.
XLA_TRIAL_MIN_STEPS = 100
XLA_TRIAL_STEPS = 3  # timed steps of each mode, after one untimed step each


def _why_no_xla(strategy) -> str | None:
    """Why the train step must not be compiled with XLA here (None: it may be): under
    several replicas Keras would compile the all-reduce into the step as well."""
    if strategy.num_replicas_in_sync > 1:
        return "not with several replicas"
    return None


def time_train_steps(model: keras.Model, x, y, steps: int = XLA_TRIAL_STEPS) -> dict:
    """`{True: [seconds], False: [seconds]}`: `steps` train steps on batch `(x, y)` with
    the step compiled by XLA (True) and in plain graph mode (False), each after one
    untimed step (which compiles it). Each mode's steps run one after another, because
    switching between the two train functions retraces the step.

    Every variable of the model and its optimizer (weights, moments, step counter, the
    dropout generators' states, a carried state) is put back afterwards, so training goes
    on exactly as if nothing had run. The model is left compiled for the last mode timed;
    `set_xla` picks.
    """
    optimizer = model.optimizer
    if not optimizer.built:
        with model.distribute_strategy.scope():  # slot variables belong to the strategy
            optimizer.build(model.trainable_variables)
    variables = list(model.variables) + list(optimizer.variables)
    if getattr(model, "carried_state", None) is not None:
        variables += [*model.carried_state.variables, model.carried_state.batches]
    saved = [v.numpy() for v in variables]
    times = {True: [], False: []}
    try:
        for jit in times:
            set_xla(model, jit)
            for timed in [False] + [True] * steps:
                start = time.perf_counter()
                model.train_on_batch(x, y)
                if timed:
                    times[jit].append(time.perf_counter() - start)
    finally:
        for variable, value in zip(variables, saved):
            variable.assign(value)
    return times


def set_xla(model: keras.Model, jit_compile: bool) -> None:
    """Compile the train step with XLA or not. `compile` is the public way to change it; the
    optimizer (and its state) and the loss are kept, and the traced train and test
    functions are dropped, so the next call traces the step in the new mode."""
    with model.distribute_strategy.scope():
        model.compile(optimizer=model.optimizer, loss=model.loss, jit_compile=jit_compile)


def settle_xla(
    model: keras.Model, jit_compile, strategy, train_ds, steps_to_go: int, state: rundir.RunState
) -> str:
    """Compile `model`'s train step with XLA or not, and say which and why.

    `jit_compile`: True (XLA where allowed), False (never), or "auto": time a few steps
    of each (`time_train_steps`) and keep the faster, for runs of at least
    `XLA_TRIAL_MIN_STEPS` steps. Which mode is faster depends on the CPU and the model
    (docs/performance.md), so no fixed rule holds. The mode a run starts with, chosen or
    given, is kept in its `state` (`xla`, also in each checkpoint), and a resumed run
    keeps it whatever `jit_compile` says (with a warning if it says otherwise): the two
    modes round differently, and a resume continues exactly.
    """
    if state.xla is not None:
        kept = bool(state.xla)
        set_xla(model, kept)
        if jit_compile != "auto" and bool(jit_compile) != kept:
            logger.warning(
                "--xla %s is ignored with --resume (the run keeps --xla %s)",
                "on" if jit_compile else "off",
                "on" if kept else "off",
            )
        mode = "compiled with XLA" if kept else "in graph mode"
        return f"{mode}, as chosen when the run started"
    note = _settle_xla(model, jit_compile, strategy, train_ds, steps_to_go)
    state.xla = bool(model.jit_compile)
    return note


def _settle_xla(model, jit_compile, strategy, train_ds, steps_to_go: int) -> str:
    reason = _why_no_xla(strategy)
    too_short = jit_compile == "auto" and steps_to_go < XLA_TRIAL_MIN_STEPS
    if jit_compile is False or reason or too_short:
        set_xla(model, False)
        if jit_compile is False:
            return "in graph mode (no XLA)"
        if reason:
            return f"in graph mode (XLA off: {reason})"
        return f"in graph mode (XLA not timed for a run of {steps_to_go} steps)"
    if jit_compile is True:
        set_xla(model, True)
        return "compiled with XLA"
    x, y = next(iter(train_ds))
    times = time_train_steps(model, x, y)
    median = {jit: sorted(t)[len(t) // 2] for jit, t in times.items()}
    use_xla = median[True] < median[False]
    set_xla(model, use_xla)
    return (
        f"{'compiled with XLA' if use_xla else 'in graph mode'}, the faster here: "
        f"{1e3 * median[True]:.0f} ms/step with XLA, {1e3 * median[False]:.0f} without "
        f"(median of {len(times[True])} steps each)"
    )
