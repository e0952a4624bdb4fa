#!/usr/bin/env bash
# Reproduce the tiny Shakespeare result of docs/training.md on CPU: train the `shakespeare` preset,
# then report validation, test and their union (the last 10% of the text) in nats/char
# and bits/char, window by window as in training and with the state carried, and sample.
#
#   scripts/reproduce_shakespeare.sh [RUN_DIR [TRAIN_FLAGS...]]   (default runs/shakespeare)
#
# TRAIN_FLAGS go to `lstm-textgen train` after the preset and override its settings, e.g.
# `scripts/reproduce_shakespeare.sh runs/carried --carry-state` (how docs/training.md's
# table of what each setting bought was made).
#
# Offline, point tfds at karpathy's input.txt with LSTM_TEXTGEN_TFDS_MANUAL_DIR (default
# ../shared/data/tinyshakespeare when it exists); online, tfds downloads it.
set -euo pipefail

run=${1:-runs/shakespeare}
shift || true
manual_dir=${LSTM_TEXTGEN_TFDS_MANUAL_DIR:-../shared/data/tinyshakespeare}
corpus_args=()
if [ -d "$manual_dir" ]; then
    corpus_args=(--tfds-manual-dir "$manual_dir")
fi

resume=()
if [ -f "$run/last.keras" ]; then
    resume=(--resume)  # a killed reproduction continues where it stopped
fi
lstm-textgen train --preset shakespeare --run "$run" "${resume[@]}" "${corpus_args[@]}" "$@"

# "SPLIT: X nats/char = Y bits/char over N characters" -> "X nats (Y bits)"
loss() { awk '{print $(NF-7) " nats (" $(NF-4) " bits)"}'; }
echo "| split | windows of 100, zero state | windows of 256 (nanoGPT's block) | state carried |"
echo "| --- | ---: | ---: | ---: |"
for split in validation test validation+test; do
    windows=$(lstm-textgen evaluate --run "$run" --split "$split" "${corpus_args[@]}" | loss)
    windows256=$(lstm-textgen evaluate --run "$run" --split "$split" --seq-len 256 "${corpus_args[@]}" | loss)
    carried=$(lstm-textgen evaluate --run "$run" --split "$split" --carry-state "${corpus_args[@]}" | loss)
    echo "| $split | $windows | $windows256 | $carried |"
done

echo
lstm-textgen generate --run "$run" --prompt "ROMEO:" --num-chars 500 --temperature 0.8 --seed 1
