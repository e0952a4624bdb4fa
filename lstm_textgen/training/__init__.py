"""Training: the loop, its start (fresh, resumed or fine-tuned), its data, callbacks,
optimizer, XLA choice, distribution strategies and precision.
"""
