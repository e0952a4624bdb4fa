"""Text into ids: the character vocabulary, corpora (tfds or text files), id files and
the windows a model trains on.
"""
