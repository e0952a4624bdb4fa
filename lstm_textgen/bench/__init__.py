"""Benchmarks behind `lstm-textgen bench NAME`: `train`, `profile`, `generate`, `serve`,
`memory`.

Each module has a `main(argv)` and prints its tables; the library never imports from
here.
"""

BENCHMARKS = ("train", "profile", "generate", "serve", "memory")
