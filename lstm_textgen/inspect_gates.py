"""What the gates do: per-character gate activations and cell states of chosen units.

In the spirit of Karpathy, Johnson and Fei-Fei (2015), "Visualizing and Understanding
Recurrent Networks": run a text through a trained model, colour each character by a
unit's cell state and gates, and look for units whose cell state tracks something
readable, such as being inside quotes or the position in the line.
"""

from __future__ import annotations

import html
import os
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from lstm_textgen.errors import TextgenError
from lstm_textgen.train import load_trained_model

SIGNALS = ("cell", "forget_gate", "input_gate", "output_gate")


def text_features(text: str) -> dict[str, np.ndarray]:
    """Readable per-character signals a unit might track."""
    inside, in_quote = [], False
    position, column = [], 0
    for char in text:
        if char == '"':
            in_quote = not in_quote
        inside.append(in_quote)
        position.append(column)
        column = 0 if char == "\n" else column + 1
    return {
        "inside double quotes": np.array(inside, float),
        "position in line": np.array(position, float),
        "line start": np.array([p == 0 for p in position], float),
    }


def _correlation(x: np.ndarray, y: np.ndarray) -> float:
    if x.std() == 0 or y.std() == 0:
        return 0.0
    return float(np.corrcoef(x, y)[0, 1])


@dataclass
class UnitFinding:
    feature: str
    unit: int
    correlation: float


def find_tracking_units(cell: np.ndarray, features: dict[str, np.ndarray]) -> list[UnitFinding]:
    """For each feature, the unit whose cell state correlates with it most (|r|)."""
    findings = []
    for name, values in features.items():
        scores = [_correlation(cell[:, u], values) for u in range(cell.shape[1])]
        if not any(scores):
            continue
        best = int(np.argmax(np.abs(scores)))
        findings.append(UnitFinding(name, best, scores[best]))
    return findings


def _colour(value: float, signal: str) -> str:
    """Cell states in [-1, 1] as blue (-) to red (+); gates in [0, 1] as white to green."""
    if signal == "cell":
        v = float(np.tanh(value))
        if v >= 0:
            return f"rgba(220,50,47,{v:.2f})"
        return f"rgba(38,139,210,{-v:.2f})"
    return f"rgba(45,160,80,{min(max(value, 0.0), 1.0):.2f})"


def _row(text: str, values: np.ndarray, signal: str) -> str:
    spans = []
    for char, value in zip(text, values):
        shown = "↵" if char == "\n" else char
        spans.append(
            f'<span style="background:{_colour(value, signal)}" title="{value:.3f}">'
            f"{html.escape(shown)}</span>"
        )
    return "".join(spans)


def render_html(text, traces, layer, units, findings) -> str:
    rows = []
    for unit in units:
        rows.append(f"<h2>layer {layer}, unit {unit}</h2>")
        for signal in SIGNALS:
            values = traces[signal][:, unit]
            rows.append(
                f'<div class="row"><span class="label">{signal.replace("_", " ")}</span>'
                f'<span class="text">{_row(text, values, signal)}</span></div>'
            )
    found = "".join(
        f"<li>unit {f.unit}: {html.escape(f.feature)} (r = {f.correlation:+.2f})</li>"
        for f in findings
    )
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>lstm-textgen inspect</title>
<style>
body {{ font-family: sans-serif; margin: 2em; }}
.row {{ display: flex; margin: 2px 0; }}
.label {{ width: 9em; flex: none; color: #555; font-size: 0.9em; }}
.text {{ font-family: monospace; white-space: pre; line-height: 1.6; }}
</style></head><body>
<h1>Gate activations, layer {layer}</h1>
<p>Cell state: blue (negative) to red (positive), squashed with tanh. Gates: white (0)
to green (1): the forget gate keeps the old cell, the input gate writes the candidate,
the output gate shows the cell. Hover a character for its value.</p>
<h2>Units that track something</h2><ul>{found or "<li>none found</li>"}</ul>
{"".join(rows)}
</body></html>
"""


def render_png(path, text, traces, units, layer) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    width = min(24, 2 + 0.12 * len(text))
    height = 1.2 * len(SIGNALS) * max(1, len(units)) ** 0.5 + 1
    figure, axes = plt.subplots(len(SIGNALS), 1, figsize=(width, height), dpi=100)
    for axis, signal in zip(np.atleast_1d(axes), SIGNALS):
        image = traces[signal][:, units].T
        if signal == "cell":
            image = np.tanh(image)  # as in the HTML: cell states are unbounded
        axis.imshow(
            image,
            aspect="auto",
            cmap="coolwarm" if signal == "cell" else "Greens",
            vmin=-1 if signal == "cell" else 0,
            vmax=1,
            interpolation="nearest",
        )
        axis.set_yticks(range(len(units)), [str(u) for u in units])
        axis.set_ylabel(signal.replace("_", " "), fontsize=8)
        if len(text) <= 120:
            axis.set_xticks(range(len(text)), ["↵" if c == "\n" else c for c in text], fontsize=6)
        else:
            axis.set_xticks([])
    figure.suptitle(f"layer {layer}: units {', '.join(map(str, units))}")
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def inspect_run(
    run_dir: str,
    text: str,
    out_html: str,
    units: list[int] | None = None,
    layer: int = -1,
    checkpoint: str = "best",
) -> tuple[str, str, list[UnitFinding]]:
    """Write `out_html` (self-contained) and a PNG beside it; returns their paths and the
    units found to track a feature. `units` defaults to those units."""
    model, vocab = load_trained_model(run_dir, checkpoint)
    unknown = vocab.unknown_characters(text)
    text = "".join(c for c in text if c not in unknown)
    if not text:
        raise TextgenError("the text to inspect has no character the model knows")
    if not -model.num_layers <= layer < model.num_layers:
        raise TextgenError(f"--layer must be in [0, {model.num_layers - 1}], got {layer}")
    layer = layer % model.num_layers
    trace = model.trace(tf.constant([vocab.encode(text)], tf.int32))[layer]
    traces = {name: value.numpy()[0] for name, value in trace.items()}
    findings = find_tracking_units(traces["cell"], text_features(text))
    if units is None:
        units = sorted({f.unit for f in findings}) or [0]
    bad = [u for u in units if not 0 <= u < model.units]
    if bad:
        raise TextgenError(f"--units {bad} outside [0, {model.units - 1}]")
    with open(out_html, "w", encoding="utf-8") as f:
        f.write(render_html(text, traces, layer, units, findings))
    out_png = os.path.splitext(out_html)[0] + ".png"
    render_png(out_png, text, traces, units, layer)
    return out_html, out_png, findings
