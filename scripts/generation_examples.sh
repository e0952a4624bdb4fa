#!/usr/bin/env bash
# The generation examples of README and docs/generation.md: the quick-start model with stop
# strings and finish reasons, and a model of items (tiny Shakespeare read as paragraphs,
# one speech per item) that writes whole new speeches, each ending by itself.
#
#   scripts/generation_examples.sh [RUNS_DIR]        (default runs)
#
# Trains runs/quickstart (the README's quick start) and runs/speeches unless they exist,
# about 3 minutes each on 2 cores. Offline, point tfds at karpathy's input.txt with
# LSTM_TEXTGEN_TFDS_MANUAL_DIR (default ../shared/data/tinyshakespeare when it exists).
set -euo pipefail

runs=${1:-runs}
manual_dir=${LSTM_TEXTGEN_TFDS_MANUAL_DIR:-../shared/data/tinyshakespeare}
corpus_args=()
if [ -d "$manual_dir" ]; then
    corpus_args=(--tfds-manual-dir "$manual_dir")
fi
train_once() {
    local run=$1
    shift
    if [ ! -f "$run/best.keras" ]; then
        lstm-textgen train --run "$run" "$@" "${corpus_args[@]}" > /dev/null
    fi
}
train_once "$runs/quickstart" --units 128 --layers 2 --max-steps 600
train_once "$runs/speeches" --items paragraphs --units 128 --layers 2 --max-steps 600

show() {
    printf '$ lstm-textgen'
    printf ' %q' "$@"
    printf '\n'
    lstm-textgen "$@"
    echo
}
show generate --run "$runs/quickstart" --prompt "ROMEO:" --num-chars 300 --temperature 0.8 \
    --seed 1 --stop $'\n\n' --show-finish-reason
show generate --run "$runs/quickstart" --prompt $'ROMEO:\n' --num-chars 300 --temperature 0.8 \
    --seed 1 --batch 3 --stop $'\n' --stop "," --show-finish-reason
show generate --run "$runs/speeches" --num-items 4 --num-chars 400 --temperature 0.8 --seed 1 \
    --show-finish-reason "${corpus_args[@]}"
show generate --run "$runs/speeches" --num-items 2 --prompt "JULIET:" --num-chars 400 \
    --temperature 0.8 --seed 1 "${corpus_args[@]}"
