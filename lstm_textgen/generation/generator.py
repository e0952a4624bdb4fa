"""The interface every generation backend shares (`Generator`: a trained run, a
SavedModel, a TF Serving endpoint or a LiteRT file) and streaming on top of it
(`TextStream`).

Nothing here imports TensorFlow: the REST client and the LiteRT runner use it as they are.

A `Generator` takes a `request.GenerationRequest`, checks it once and returns one
`Completion` per prompt, with the prompt policy of `lstm_textgen.generation.request`.
`Generator.stream` yields a text piece by piece: it continues each piece from the
`GenerationState` of the last, so N characters in one request are the same text as N in
several continued ones.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from lstm_textgen.errors import TextgenError
from lstm_textgen.generation.request import (
    CheckedRequest,
    Completion,
    GenerationRequest,
    prompt_tail,
)
from lstm_textgen.generation.settings import MAX_PROMPT_CHARS, MAX_STOP_CHARS

log = logging.getLogger("lstm_textgen")


def first_stop(text: str, stops, start: int = 1):
    """`(end, length)` of the first stop string completed in `text` (it ends right before
    index `end`; the longest of those completed there), looking at ends from `start` on;
    None if there is none."""
    for end in range(max(start, 1), len(text) + 1):
        done = [s for s in stops if s and text.endswith(s, 0, end)]
        if done:
            return end, max(len(s) for s in done)
    return None


class Generator:
    """The interface of every generation backend.

    Subclasses set `vocab` (a `CharVocabulary`, or None where it is not at hand),
    `model_key` (`request.model_key(...)`, or None where it is not known) and implement
    `_complete(request)`, which takes a `CheckedRequest` and returns one `Completion` per
    row.
    """

    vocab = None
    source = "model"
    model_key: str | None = None
    state_shape: tuple[int, int] | None = None  # (layers, units) where known
    # False for an export that predates continuation and log-probabilities.
    can_continue = True

    def complete(self, request: GenerationRequest) -> list[Completion]:
        """One `Completion` per prompt of `request`."""
        checked = request.checked()
        if checked.states is not None:
            self.check_states(checked.states)
        self.warn_about_prompts(request.prompts)
        return self._complete(checked)

    def check_states(self, states) -> None:
        """A one-line error for a state this model cannot continue from."""
        shape = tuple(states[0].h.shape)
        if self.state_shape is not None and shape != tuple(self.state_shape):
            raise TextgenError(
                f"a state of {list(shape)} (layers, units) cannot continue this model of "
                f"{list(self.state_shape)}; continue on the model that made it"
            )
        given = states[0].model
        if given is not None and self.model_key is not None and given != self.model_key:
            raise TextgenError(
                f"the state comes from another model ({given}; this one is "
                f"{self.model_key}, layers x units:vocabulary); continue on the model "
                "that made it"
            )

    def stream(self, request: GenerationRequest, chunk_chars: int = 32) -> TextStream:
        """The text of a one-row request, piece by piece as it is generated: an iterator
        of strings whose concatenation is `complete(request)[0].text`; its `completion`
        is that `Completion` once the iterator is exhausted.

        It runs `complete` on `chunk_chars` characters at a time, each continuing the
        last. Stop strings are found across the pieces: up to `MAX_STOP_CHARS - 1`
        characters are held back until they cannot begin one.
        """
        return TextStream(self, request, chunk_chars)

    def generate(self, prompts, *, settings=None, **values) -> list[str]:
        """The texts alone of `complete` for the request of these settings (see
        `GenerationRequest`)."""
        request = GenerationRequest(prompts, settings=settings, **values)
        return [c.text for c in self.complete(request)]

    def warn_about_prompts(self, prompts) -> None:
        """The one warning of each prompt policy that a request runs into."""
        longest = max((len(p) for p in prompts), default=0)
        if longest > MAX_PROMPT_CHARS:
            log.warning(
                "only the last %s characters of a prompt prime the state, of the %s given",
                f"{MAX_PROMPT_CHARS:,}",
                f"{longest:,}",
            )
        if self.vocab is not None:
            unknown = self.vocab.unknown_characters("".join(prompt_tail(p) for p in prompts))
            if unknown:
                log.warning(
                    "the model never saw %r in training; those prompt characters are skipped",
                    "".join(unknown),
                )

    @property
    def has_items(self) -> bool:
        """Whether the model was trained on items (it can end a row by itself)."""
        return self.vocab is not None and self.vocab.end_id is not None

    def _complete(self, request: CheckedRequest) -> list[Completion]:
        raise NotImplementedError


class TextStream(Iterator[str]):
    """The pieces of one row's text as `Generator.stream` makes them."""

    def __init__(self, generator: Generator, request: GenerationRequest, chunk_chars: int):
        if len(request) != 1:
            raise TextgenError(f"streaming takes one prompt at a time, got {len(request)}")
        if chunk_chars < 1:
            raise TextgenError(f"chunk_chars must be >= 1, got {chunk_chars}")
        if not generator.can_continue:
            raise TextgenError(
                f"{generator.source} cannot continue a text (an export that predates "
                "continuation); export the run again to stream from it"
            )
        checked = request.checked()
        self.completion: Completion | None = None
        self._pieces = self._generate(generator, request.prompts[0], checked, chunk_chars)

    def __next__(self) -> str:
        return next(self._pieces)

    def _generate(self, generator, prompt, checked, chunk_chars):
        """The pieces. Each chunk is generated without stop strings, and the stops are
        found here in the text so far, so one that spans two chunks is found as the
        sampling loop finds it; a stop ends the text, and the state is then made anew by
        replaying that chunk up to the stop's end (the random stream makes it the same)."""
        settings = checked.rows[0]
        states = checked.states
        free = settings.replace(stop=())
        remaining = settings.num_chars
        # Characters that may begin a stop string wait until they cannot.
        held = max((len(s) for s in settings.stop), default=1) - 1
        text, emitted, logprobs, model_logprobs = "", 0, [], []
        while True:
            count = min(chunk_chars, remaining)
            request = GenerationRequest(
                [prompt], settings=free.replace(num_chars=count), state=states
            )
            part = generator.complete(request)[0]
            remaining -= count
            # A stop string begun in an earlier chunk is found here: the window reaches
            # back as far as the longest stop string.
            window = text[len(text) - min(len(text), MAX_STOP_CHARS - 1) :]
            found = first_stop(window + part.text, settings.stop, start=len(window) + 1)
            state = part.state
            if found is not None:
                end, length = found
                text = text[: len(text) - len(window)] + (window + part.text)[: end - length]
                # The state after the stop string's last character, as the loop ends there.
                replay = free.replace(num_chars=end - len(window))
                again = GenerationRequest([prompt], settings=replay, state=states)
                state = generator.complete(again)[0].state
            else:
                text += part.text
            logprobs += part.logprobs
            model_logprobs += part.model_logprobs
            finish = "stop" if found is not None else part.finish_reason
            last = finish != "length" or remaining <= 0
            ready = len(text) if last else max(len(text) - held, emitted)
            if ready > emitted:
                yield text[emitted:ready]
                emitted = ready
            if last:
                self.completion = Completion(
                    text,
                    finish,
                    state,
                    tuple(logprobs[: len(text)]),
                    tuple(model_logprobs[: len(text)]),
                )
                return
            if state is None:
                raise TextgenError(
                    f"{generator.source} cannot continue a text (an export that predates "
                    "continuation); export the run again to stream from it"
                )
            prompt, states = "", (state,)
