"""Gate inspection: traced activations equal a NumPy recomputation; the report is written."""

import numpy as np

from lstm_textgen.model.layers import GateLSTM
from lstm_textgen.reports.inspect_gates import find_tracking_units, text_features

from helpers import assert_close, cli_in_process, error_lines


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def test_trace_equals_a_numpy_recomputation():
    rng = np.random.default_rng(0)
    layer = GateLSTM(3)
    layer.build((None, None, 4))
    layer.set_weights(
        [rng.normal(scale=0.5, size=w.shape).astype("float32") for w in layer.get_weights()]
    )
    x = rng.normal(size=(2, 5, 4)).astype("float32")
    trace = {k: v.numpy() for k, v in layer.trace(x).items()}
    kernel, recurrent, bias = layer.get_weights()
    h = c = np.zeros((2, 3))
    for t in range(5):
        z = x[:, t] @ kernel + h @ recurrent + bias
        i, f, g, o = sigmoid(z[:, :3]), sigmoid(z[:, 3:6]), np.tanh(z[:, 6:9]), sigmoid(z[:, 9:])
        c = f * c + i * g
        h = o * np.tanh(c)
        for name, value in (
            ("input_gate", i),
            ("forget_gate", f),
            ("candidate", g),
            ("output_gate", o),
            ("cell", c),
            ("hidden", h),
        ):
            assert_close(trace[name][:, t], value)
    # The trace is the same computation as the layer itself.
    sequence_layer = GateLSTM(3, return_sequences=True)
    sequence_layer.build((None, None, 4))
    sequence_layer.set_weights(layer.get_weights())
    assert_close(trace["hidden"], sequence_layer(x))


def test_a_planted_tracking_unit_is_found():
    text = 'ab "cd" e\nfg "h" ij\n' * 3
    features = text_features(text)
    cell = np.random.default_rng(1).normal(scale=0.1, size=(len(text), 5))
    cell[:, 3] += features["position in line"] / 10.0
    cell[:, 1] += features["inside double quotes"]
    found = {f.feature: f.unit for f in find_tracking_units(cell, features)}
    assert found["position in line"] == 3
    assert found["inside double quotes"] == 1


def test_inspect_writes_html_and_png(trained_text_run, tmp_path):
    run, _ = trained_text_run
    out = tmp_path / "gates.html"
    result = cli_in_process(
        "inspect",
        "--run",
        run,
        "--text",
        'the "lazy" dog.\npack my box',
        "--units",
        "0,3",
        "--out",
        out,
    )
    assert result.returncode == 0, result.stderr
    page = out.read_text(encoding="utf-8")
    assert "layer 0, unit 3" in page and "forget gate" in page and "↵" in page
    assert out.with_suffix(".png").read_bytes()[:4] == b"\x89PNG"
    bad = cli_in_process("inspect", "--run", run, "--text", "the", "--units", "99")
    assert bad.returncode == 2 and "outside [0, 7]" in error_lines(bad)[0]


def test_inspect_refuses_a_long_text_in_one_line_and_shows_a_span(trained_text_run, tmp_path):
    # Bug: 200,000 characters took minutes and gigabytes; --out into a new folder failed
    # only after all the work; the page showed the whole text as one line.
    run, _ = trained_text_run
    long_text = tmp_path / "long.txt"
    long_text.write_text("the lazy dog.\npack my box\n" * 8000, encoding="utf-8")  # 208,000 chars
    refused = cli_in_process("inspect", "--run", run, "--text-file", long_text)
    lines = error_lines(refused)
    assert refused.returncode == 2 and len(lines) == 1, refused.stderr
    assert "208,000" in lines[0] and "--span" in lines[0]
    out = tmp_path / "new" / "folder" / "gates.html"
    shown = cli_in_process(
        "inspect", "--run", run, "--text-file", long_text, "--span", "99987:100013", "--out", out
    )
    assert shown.returncode == 0, shown.stderr
    page = out.read_text(encoding="utf-8")
    # 26 characters from the middle of the text, broken at its own newlines.
    assert page.count('title="') == 26 * 4 * page.count("<h2>layer")
    assert "↵</span>\n" in page
    assert out.with_suffix(".png").exists()
    bad = cli_in_process("inspect", "--run", run, "--text", "abc", "--span", "5:1")
    assert bad.returncode == 2 and "--span 5:1" in error_lines(bad)[0]


def test_a_span_is_primed_by_the_text_before_it(trained_text_run):
    from lstm_textgen.reports.inspect_gates import choose_span

    text = "abcdef" * 500
    context, shown = choose_span(text, (2000, 2010))
    assert shown == text[2000:2010] and context == text[1000:2000]
    assert choose_span("short", None) == ("", "short")


def test_the_png_puts_each_character_under_its_column_up_to_a_length(tmp_path):
    import matplotlib.image

    from lstm_textgen.reports.inspect_gates import (
        PNG_LABELLED_CHARS,
        PNG_ROW_CHARS,
        SIGNALS,
        render_png,
    )

    heights = {}
    for length in (PNG_ROW_CHARS, 2 * PNG_ROW_CHARS + 1, PNG_LABELLED_CHARS + 1):
        text = ("the lazy dog.\n" * 100)[:length]
        traces = {s: np.random.default_rng(0).random((length, 4)) for s in SIGNALS}
        path = tmp_path / f"{length}.png"
        render_png(path, text, traces, [0, 3], layer=0)
        heights[length] = matplotlib.image.imread(path).shape[0]
    # Three rows of characters are about three times as tall as one; a text too long to
    # label is one row without them.
    assert 2.6 < heights[2 * PNG_ROW_CHARS + 1] / heights[PNG_ROW_CHARS] < 3.2
    assert heights[PNG_LABELLED_CHARS + 1] < heights[PNG_ROW_CHARS]
