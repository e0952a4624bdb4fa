"""Run `lstm-textgen bench generate`; see lstm_textgen/bench_generate.py for what it measures."""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from lstm_textgen.bench_generate import main  # noqa: E402

if __name__ == "__main__":
    main(sys.argv[1:])
