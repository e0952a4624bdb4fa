"""Exports: the SavedModel for TF Serving (with its warmup file) and the LiteRT file."""
