"""What the gates do: per-character gate activations and cell states of chosen units.

In the spirit of Karpathy, Johnson and Fei-Fei (2015), "Visualizing and Understanding
Recurrent Networks": run a text through a trained model, colour each character by a
unit's cell state and gates, and look for units whose cell state tracks something
readable, such as being inside quotes or the position in the line.
"""

from __future__ import annotations

import html
import logging
import os
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from lstm_textgen.data.vocab import UNKNOWN_ID
from lstm_textgen.errors import TextgenError, setting
from lstm_textgen.files import atomic_path
from lstm_textgen.generation.settings import MAX_PROMPT_CHARS
from lstm_textgen.model import stepping
from lstm_textgen.store.sources import load_source

SIGNALS = ("cell", "forget_gate", "input_gate", "output_gate")
# One page colours every character once per signal and unit: past this it stops being
# readable, and the page grows by about 300 bytes per character shown.
MAX_INSPECT_CHARS = 10_000

logger = logging.getLogger("lstm_textgen")


def parse_span(span: str) -> tuple[int, int | None]:
    """`"START:STOP"` (either side may be empty) as `(start, stop)`."""
    start, sep, stop = span.partition(":")
    try:
        if not sep:
            raise ValueError
        return int(start or 0), (int(stop) if stop else None)
    except ValueError:
        raise TextgenError(
            f"{setting('span')} must be START:STOP character offsets, e.g. 0:5000, got {span!r}"
        ) from None


def choose_span(text: str, span: tuple[int, int | None] | None) -> tuple[str, str]:
    """`(context, shown)`: the characters to show and the ones before them."""
    if not text:
        raise TextgenError("the text to inspect is empty")
    if span is None:
        start, stop = 0, None
    else:
        start, stop = span
    if not 0 <= start < len(text) or (stop is not None and stop <= start):
        raise TextgenError(
            f"{setting('span', f'{start}:' + ('' if stop is None else str(stop)))} is empty or "
            f"outside the text "
            f"of {len(text):,} characters"
        )
    shown = text[start:stop]
    if len(shown) > MAX_INSPECT_CHARS:
        raise TextgenError(
            f"inspect shows at most {MAX_INSPECT_CHARS:,} characters on one page, and the "
            f"text{' span' if span else ''} has {len(shown):,}; choose a part with "
            f"{setting('span', 'START:STOP')}, e.g. "
            f"{setting('span', f'{start}:{start + MAX_INSPECT_CHARS}')}"
        )
    return text[max(0, start - MAX_PROMPT_CHARS) : start], shown


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
        shown = "↵" if char == "\n" else html.escape(char)
        spans.append(
            f'<span style="background:{_colour(value, signal)}" title="{value:.3f}">'
            f"{shown}</span>" + ("\n" if char == "\n" else "")
            # The page breaks lines where the text does, so it reads like the text.
        )
    return "".join(spans)


def render_html(text, traces, layer, units, findings) -> str:
    rows = []
    for unit in units:
        rows.append(f"<h2>layer {layer}, unit {unit}</h2>")
        for signal in SIGNALS:
            values = traces[signal][:, unit]
            rows.append(
                f"<h3>{signal.replace('_', ' ')}</h3>"
                f'<div class="text">{_row(text, values, signal)}</div>'
            )
    found = "".join(
        f"<li>unit {f.unit}: {html.escape(f.feature)} (r = {f.correlation:+.2f})</li>"
        for f in findings
    )
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>lstm-textgen inspect</title>
<style>
body {{ font-family: sans-serif; margin: 2em; }}
h3 {{ margin: 0.8em 0 0.2em; font-size: 0.95em; color: #555; font-weight: normal; }}
.text {{ font-family: monospace; white-space: pre-wrap; line-height: 1.6;
         border-left: 3px solid #ddd; padding-left: 0.6em; }}
</style></head><body>
<h1>Gate activations, layer {layer}</h1>
<p>Cell state: blue (negative) to red (positive), squashed with tanh. Gates: white (0)
to green (1): the forget gate keeps the old cell, the input gate writes the candidate,
the output gate shows the cell. Hover a character for its value.</p>
<h2>Units that track something</h2><ul>{found or "<li>none found</li>"}</ul>
{"".join(rows)}
</body></html>
"""


# The PNG draws its characters under the colours, at most this many to a row of panels;
# a text of more than PNG_LABELLED_CHARS is drawn in one row, without them.
PNG_ROW_CHARS = 120
PNG_LABELLED_CHARS = 600


def _png_rows(text: str) -> list[tuple[int, int]]:
    """`(start, stop)` of each row of the PNG: rows of `PNG_ROW_CHARS`, or one row."""
    if len(text) > PNG_LABELLED_CHARS:
        return [(0, len(text))]
    return [(k, min(k + PNG_ROW_CHARS, len(text))) for k in range(0, len(text), PNG_ROW_CHARS)]


def render_png(path, text, traces, units, layer) -> None:
    """The gates of `units` as colour panels, one per signal, each character under its
    column (see `PNG_ROW_CHARS`)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = _png_rows(text) or [(0, 0)]
    labelled = len(rows) > 1 or len(text) <= PNG_LABELLED_CHARS
    columns = max(stop - start for start, stop in rows) or 1
    width = min(24, 2 + 0.12 * columns)
    panel = 0.35 + 0.18 * len(units)
    gap = 0.45 if labelled else 0.05  # under a row's last panel: its characters
    height = len(rows) * (len(SIGNALS) * panel + gap) + 0.6
    # A thin empty axis between rows keeps one row's characters off the next row.
    ratios = ([1.0] * len(SIGNALS) + [gap / panel]) * len(rows)
    figure, axes = plt.subplots(
        len(ratios), 1, figsize=(width, height), dpi=100, squeeze=False,
        gridspec_kw={"height_ratios": ratios, "hspace": 0.25},
    )  # fmt: skip
    for spacer in axes[len(SIGNALS) :: len(SIGNALS) + 1, 0]:
        spacer.axis("off")
    for r, (start, stop) in enumerate(rows):
        for k, signal in enumerate(SIGNALS):
            axis = axes[r * (len(SIGNALS) + 1) + k, 0]
            image = traces[signal][start:stop, units].T
            if signal == "cell":
                image = np.tanh(image)  # as in the HTML: cell states are unbounded
            axis.imshow(
                image,
                aspect="auto",
                cmap="coolwarm" if signal == "cell" else "Greens",
                vmin=-1 if signal == "cell" else 0,
                vmax=1,
                interpolation="nearest",
                extent=(-0.5, columns - 0.5, len(units) - 0.5, -0.5),
            )
            axis.set_xlim(-0.5, columns - 0.5)
            axis.set_yticks(range(len(units)), [str(u) for u in units], fontsize=7)
            axis.set_ylabel(signal.replace("_", " ").replace(" gate", ""), fontsize=7)
            last = k == len(SIGNALS) - 1
            if labelled and last:
                shown = ["↵" if c == "\n" else c for c in text[start:stop]]
                axis.set_xticks(range(len(shown)), shown, fontsize=7, family="monospace")
                axis.tick_params(axis="x", length=0, pad=2)
            else:
                axis.set_xticks([])
    figure.suptitle(
        f"layer {layer}: units {', '.join(map(str, units))} (rows: cell, forget, input, output)",
        fontsize=9,
    )
    figure.subplots_adjust(left=0.04, right=0.99, top=1 - 0.45 / height, bottom=0.02)
    figure.savefig(path)
    plt.close(figure)


def layer_traces(model, ids, state=None, num_layers=None):
    """Gate activations of the first `num_layers` layers of `model` (default all) for ids
    `[B, T]`, starting from `state` (zeros if None): a list of `GateLSTM.trace` dicts, one
    per layer (inference mode, no dropout)."""
    x = model.embedding(ids)
    traces = []
    for k, layer in enumerate(model.lstm_layers[:num_layers]):
        trace = layer.trace(x, None if state is None else list(state[k]))
        traces.append(trace)
        x = trace["hidden"]
    return traces


def inspect_run(
    run_dir: str | None,
    text: str,
    out_html: str,
    units: list[int] | None = None,
    layer: int = -1,
    checkpoint: str = "best",
    span: tuple[int, int | None] | None = None,
) -> tuple[str, str, list[UnitFinding]]:
    """Write `out_html` (self-contained) and a PNG beside it; returns their paths and the
    units found to track a feature. `units` defaults to those units. `run_dir` is a run,
    an export or a shipped model's name (`lstm_textgen.store.sources`; None: the shipped model).

    At most `MAX_INSPECT_CHARS` characters are shown: `span` `(start, stop)` picks them
    out of a longer text, and the state at `start` comes from the `MAX_PROMPT_CHARS`
    characters before it. The folder of `out_html` is created if needed.
    """
    context, text = choose_span(text, span)
    out_dir = os.path.dirname(os.path.abspath(out_html))
    try:
        os.makedirs(out_dir, exist_ok=True)
    except OSError as e:
        raise TextgenError(f"cannot create the folder {out_dir}: {e.strerror}") from None
    trained = load_source(run_dir, checkpoint)
    model, vocab = trained.model, trained.vocab
    unknown = vocab.unknown_characters(text)
    if unknown:
        logger.warning(
            "the model never saw %s; the page leaves them out", ", ".join(map(repr, unknown))
        )
    text = "".join(c for c in text if c not in unknown)
    if not text:
        raise TextgenError("the text to inspect has no character the model knows")
    if not -model.num_layers <= layer < model.num_layers:
        raise TextgenError(
            f"{setting('layer')} must be in [0, {model.num_layers - 1}], got {layer}"
        )
    layer = layer % model.num_layers
    bad = [u for u in (units or []) if not 0 <= u < model.units]
    if bad:
        raise TextgenError(f"{setting('units', bad)} outside [0, {model.units - 1}]")

    @tf.function
    def trace(context_ids, ids):
        state = stepping.prime(model, context_ids, mask=tf.not_equal(context_ids, UNKNOWN_ID))
        return layer_traces(model, ids, state, num_layers=layer + 1)[layer]

    as_ids = lambda t: tf.constant([vocab.encode(t)], tf.int32)  # noqa: E731
    traces = {
        name: value.numpy()[0] for name, value in trace(as_ids(context), as_ids(text)).items()
    }
    findings = find_tracking_units(traces["cell"], text_features(text))
    if units is None:
        units = sorted({f.unit for f in findings}) or [0]
    with atomic_path(out_html, suffix=".html") as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(render_html(text, traces, layer, units, findings))
    out_png = os.path.splitext(out_html)[0] + ".png"
    with atomic_path(out_png, suffix=".png") as tmp:
        render_png(tmp, text, traces, units, layer)
    return out_html, out_png, findings
