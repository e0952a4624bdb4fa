#!/usr/bin/env bash
# The smoke test at the version floor: in a fresh virtual environment holding the oldest
# TensorFlow and Keras that pyproject.toml allows (.ci/constraints-floor.txt), check the
# layer against that Keras's LSTM (tests/test_layers*.py), train a few steps, resume,
# export, load the export without lstm_textgen, and generate.
#   .ci/floor_smoke.sh [VENV]     (default: a temporary folder, removed afterwards)
set -euo pipefail
cd "$(dirname "$0")/.."

WORK="$(mktemp -d "${TMPDIR:-/tmp}/floor-smoke.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
VENV="${1:-$WORK/venv}"
if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
        -c .ci/constraints-floor.txt -e . pytest
fi
CLI="$VENV/bin/lstm-textgen"
PY="$VENV/bin/python"
export TF_CPP_MIN_LOG_LEVEL=2

step() {  # step NAME COMMAND...: run it; stop the script if it fails
    local name="$1"
    shift
    local start=$SECONDS
    if "$@" >"$WORK/out.txt" 2>&1; then
        echo "floor smoke: $name: ok ($((SECONDS - start)) s)"
    else
        cat "$WORK/out.txt"
        echo "floor smoke: $name: FAILED"
        exit 1
    fi
}

"$PY" -c 'import tensorflow as tf, keras; print("floor smoke: tensorflow", tf.__version__, "keras", keras.__version__)' 2>/dev/null

"$PY" - "$WORK/corpus.txt" <<'PYTHON'
import sys

lines = []
for i in range(60):
    lines += ["the quick brown fox jumps over the lazy dog.", f"pack my box with {i} dozen jugs!"]
open(sys.argv[1], "w", encoding="utf-8").write("\n".join(lines) + "\n")
PYTHON

# GateLSTM is that Keras's LSTM, argument by argument (one process: no pytest-xdist here).
step "GateLSTM against keras.layers.LSTM" "$PY" -m pytest -q -p no:cacheprovider \
    -o addopts="" tests/test_layers.py tests/test_layers_keras.py

RUN="$WORK/run"
TINY=(--units 16 --layers 1 --embedding-dim 8 --seq-len 16 --batch-size 4 --checkpoint-every 2)
step "train 4 steps" "$CLI" train --run "$RUN" --text-file "$WORK/corpus.txt" "${TINY[@]}" \
    --max-steps 4
step "resume to 8 steps" "$CLI" train --run "$RUN" --resume --max-steps 8
step "state.json says step 8" "$PY" -c '
import json, sys
assert json.load(open(sys.argv[1]))["step"] == 8' "$RUN/state.json"
step "export" "$CLI" export --run "$RUN" --export-base "$WORK/export"
step "load the export without lstm_textgen" "$PY" -c '
import sys
import tensorflow as tf

signature = tf.saved_model.load(sys.argv[1]).signatures["serving_default"]
out = signature(
    prompt=tf.constant(["the ", "pack"]),
    num_chars=tf.constant([20, 10]),
    temperature=tf.constant([0.8, 0.0]),
    top_k=tf.constant([0, 0]),
    top_p=tf.constant([1.0, 1.0]),
    seed=tf.constant([1, 2], tf.int64),
    stop=tf.constant([["", "", "", ""], ["\n", "", "", ""]]),
)
texts = [t.decode() for t in out["text"].numpy()]
reasons = [r.decode() for r in out["finish_reason"].numpy()]
assert len(texts[0]) <= 20 and len(texts[1]) <= 10, texts
assert set(reasons) <= {"length", "stop", "end"}, reasons
assert "lstm_textgen" not in sys.modules' "$WORK/export/1"
step "generate --run" "$CLI" generate --run "$RUN" --prompt "the " --num-chars 40 --seed 1
step "generate --saved-model" "$CLI" generate --saved-model "$WORK/export" --prompt "the " \
    --num-chars 40 --seed 1
echo "floor smoke: passed"
