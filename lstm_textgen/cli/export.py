"""`lstm-textgen export`."""

from __future__ import annotations

import os

from lstm_textgen.cli import common

NAME = "export"
HELP = "export a run as a versioned SavedModel for TF Serving, or for LiteRT"
DESCRIPTION = (
    "Write --export-base/<version>/ (the next free version number unless --version is "
    "given) with the signatures serving_default, continue, generate_rows, step and score, "
    "and a TF Serving warmup file. The version is written to a hidden temporary folder "
    "and renamed, so a watching server never sees half of it. Or write --litert "
    "FILE.tflite, a LiteRT model with the signatures step, prime and generate, its "
    "vocabulary and config embedded as metadata; written whole or not at all."
)


def add_cli_args(parser) -> None:
    common.add_model_source(parser)
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument(
        "--export-base",
        metavar="DIR",
        help="model folder, e.g. saved_models/shakespeare",
    )
    target.add_argument("--litert", metavar="FILE", help="LiteRT model to write (.tflite)")
    parser.add_argument("--version", type=int, help="version number (default: the next free one)")
    parser.add_argument(
        "--quantize",
        choices=["dynamic"],
        help="with --litert: store the weights as int8 (dynamic-range quantization)",
    )


def main(args) -> int:
    from lstm_textgen.errors import TextgenError
    from lstm_textgen.export.litert import export_litert
    from lstm_textgen.export.saved_model import export_for_serving

    if args.litert:
        if args.version is not None:
            raise TextgenError("--version numbers SavedModel exports; leave it out with --litert")
        path = export_litert(args.run, args.litert, args.checkpoint, args.quantize)
        print(f"{path} ({os.path.getsize(path):,} bytes)")
        return 0
    if args.quantize:
        raise TextgenError("--quantize applies to --litert exports only")
    path = export_for_serving(
        args.run, args.export_base, checkpoint=args.checkpoint, version=args.version
    )
    print(path)
    return 0
