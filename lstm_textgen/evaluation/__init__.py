"""A text's loss under a model, in windows (`evaluate`)."""
