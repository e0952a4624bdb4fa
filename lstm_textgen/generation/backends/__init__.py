"""The backends a request runs on: in-process Keras, a SavedModel, a TF Serving
server (REST) and a LiteRT file. Importing this package imports none of them.
"""
