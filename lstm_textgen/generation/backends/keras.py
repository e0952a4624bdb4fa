"""The in-process backend: `TextGenerator` runs the generation graph on a Keras model."""

from __future__ import annotations

import tensorflow as tf

from lstm_textgen.data.vocab import CharVocabulary
from lstm_textgen.errors import TextgenError
from lstm_textgen.generation.generator import Generator
from lstm_textgen.generation.graph import (
    continue_function,
    continue_spec,
    generate_function,
    generate_spec,
)
from lstm_textgen.generation.request import (
    CheckedRequest,
    Completion,
    completion_from_row,
    model_key,
)
from lstm_textgen.model.language_model import CharLanguageModel


class TextGenerator(Generator):
    """Samples text from a trained `CharLanguageModel` in this process.

    Args:
        model: the trained model.
        vocab: the run's `CharVocabulary`.

    Example:

    >>> generator = TextGenerator(model, vocab)
    >>> generator.generate(["ROMEO:"], num_chars=100, temperature=0.8, seed=1)
    >>> generator.complete(GenerationRequest(["ROMEO:"], stop=["\n"]))[0].finish_reason
    """

    source = "run"

    def __init__(self, model: CharLanguageModel, vocab: CharVocabulary):
        if model.vocab_size != vocab.size:
            raise TextgenError(
                f"model predicts {model.vocab_size} ids but the vocabulary has {vocab.size}"
            )
        self.model = model
        self.vocab = vocab
        self.state_shape = (model.num_layers, model.units)
        self.model_key = model_key(vocab, *self.state_shape)
        self._functions = {
            "serving_default": tf.function(
                generate_function(model, vocab), input_signature=generate_spec()
            ),
            "continue": tf.function(
                continue_function(model, vocab),
                input_signature=continue_spec(model.num_layers, model.units),
            ),
        }

    def unknown_characters(self, prompts) -> list[str]:
        """Prompt characters outside the vocabulary; generation skips them."""
        return self.vocab.unknown_characters("".join(prompts))

    def _complete(self, request: CheckedRequest) -> list[Completion]:
        inputs = request.export_inputs()
        function = self._functions[request.signature]
        specs = function.input_signature
        out = function(*[tf.constant(inputs[spec.name], spec.dtype) for spec in specs])
        out = {name: value.numpy() for name, value in out.items()}
        return [
            completion_from_row(t.decode("utf-8"), r.decode(), out, row, self.model_key)
            for row, (t, r) in enumerate(zip(out["text"], out["finish_reason"]))
        ]
