"""Benchmarks behind `lstm-textgen bench NAME`: `train`, `generate`, `serve`, `memory`.

Each module has a `main(argv)` and prints its tables; the library never imports from
here.
"""

BENCHMARKS = ("train", "generate", "serve", "memory")
