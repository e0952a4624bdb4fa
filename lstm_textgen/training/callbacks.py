"""The training loop's Keras callbacks: a progress line counted in steps, and the
checkpoints and reports after each evaluation (with the dropout generators' states,
which a `.keras` file leaves out)."""

from __future__ import annotations

import dataclasses
import math
import sys
import time

import keras

from lstm_textgen.config import bits
from lstm_textgen.store import checkpoints
from lstm_textgen.store import run_dir as rundir


def _seed_variables(model: keras.Model) -> list:
    # Keras does not save the dropout generators' states in a .keras file.
    return [v for v in model.variables if "seed_generator_state" in v.path]


def seed_states(model: keras.Model) -> list:
    return [v.numpy().tolist() for v in _seed_variables(model)]


def restore_seed_states(model: keras.Model, info: checkpoints.CheckpointInfo) -> None:
    states = info.seed_states
    variables = _seed_variables(model)
    if states is not None and len(states) == len(variables):
        for variable, value in zip(variables, states):
            variable.assign(value)


class StepProgress(keras.callbacks.Callback):
    """A one-line progress display counted in steps: `step 150/600, loss 2.1, 80 ms/step`.

    Keras's own progress bar counts "epochs", which here are only checkpoint intervals.
    """

    def __init__(self, total_steps: int, stream=None):
        super().__init__()
        self.total_steps = total_steps
        self.stream = stream or sys.stderr
        self.started = None
        self.first_step = None
        self.shown = False

    def on_train_batch_end(self, batch, logs=None):
        step = int(self.model.optimizer.iterations.numpy())
        now = time.perf_counter()
        if self.started is None:
            self.started, self.first_step = now, step
        per_step = (now - self.started) / max(1, step - self.first_step)
        loss = float((logs or {}).get("loss", float("nan")))
        self.stream.write(
            f"\rstep {step}/{self.total_steps}, loss {loss:.4f}, {1e3 * per_step:.0f} ms/step "
        )
        self.stream.flush()
        self.shown = True

    def clear(self):
        """End the progress line, so that a log line starts on a line of its own."""
        if self.shown:
            self.stream.write("\n")
            self.stream.flush()
            self.shown = False


class CheckpointAndReport(keras.callbacks.Callback):
    """After each evaluation: report nats and bits per char, save last and best, stop at
    `total_steps`, and stop (keeping the last good checkpoint) on a non-finite loss."""

    def __init__(self, run_dir, state, total_steps, log, chief=True, carried_validation=None):
        super().__init__()
        self.chief = chief
        # With --carry-state: the validation loss read as streams with a carried state.
        self.carried_validation = carried_validation
        self.run_dir = run_dir
        self.state = state
        self.total_steps = total_steps
        self.log = log
        self.bad_loss_step = None

    def _step(self) -> int:
        return int(self.model.optimizer.iterations.numpy())

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self.bad_loss_step = self._step()
            self.model.stop_training = True
        elif self._step() >= self.total_steps:
            self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        if self.bad_loss_step is not None:
            return
        logs = logs or {}
        step = self._step()
        train_loss = float(logs.get("loss", float("nan")))
        val_loss = float(logs.get("val_loss", float("nan")))
        if not math.isfinite(val_loss):
            self.bad_loss_step = step
            self.model.stop_training = True
            return
        arrays, carried = {}, None
        if self.carried_validation is not None:
            carried = float(self.carried_validation())
            arrays[checkpoints.CARRIED_STATE] = self.model.carried_state.numpy()
        record = rundir.HistoryRecord(step, train_loss, val_loss, carried)
        best = self.state.best_val_loss
        improved = best is None or val_loss < best
        if self.chief:
            info = checkpoints.CheckpointInfo(
                **dataclasses.asdict(record),
                seed_states=seed_states(self.model),
                xla=self.state.xla,
                precision=self.state.precision,
            )
            checkpoints.save_checkpoint(
                self.model,
                rundir.RunDir(self.run_dir).checkpoint("last"),
                info,
                best_copy=rundir.RunDir(self.run_dir).checkpoint("best") if improved else None,
                arrays=arrays,
            )
        if improved:
            self.state.best_val_loss = val_loss
            self.state.best_step = step
        self.state.step = step
        self.state.history.append(record)
        if self.chief:
            rundir.write_state(self.run_dir, self.state)
        self.log(
            f"step {step}/{self.total_steps}: train {train_loss:.4f} nats/char, "
            f"validation {val_loss:.4f} nats/char = {bits(val_loss):.4f} bits/char"
            + (f" (carried state {carried:.4f})" if carried is not None else "")
            + (" (best, saved)" if improved else f" (best {self.state.best_val_loss:.4f})")
        )


def cleared_first(clear, log):
    """`log` that first calls `clear` (a progress line's), so a report never lands
    inside the line."""

    def both(message):
        clear()
        log(message)

    return both
