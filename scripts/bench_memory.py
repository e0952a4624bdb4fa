"""Run `lstm-textgen bench memory`; see lstm_textgen/bench_memory.py for what it measures."""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from lstm_textgen.bench_memory import main  # noqa: E402

if __name__ == "__main__":
    main(sys.argv[1:])
