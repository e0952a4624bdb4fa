"""What lies on disk: a run directory (layout, lock, checkpoints, loading), the
export's layout and metadata, the shipped model, and model sources.
"""
