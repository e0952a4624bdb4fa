"""The model: the gate math (`recurrence`), the Keras layers built on it, the
character language model, the state it carries and the weights a step reads.

Imports only the top-level modules (errors, config, files); no TensorFlow at import.
"""
