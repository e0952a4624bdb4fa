"""The generation request: settings per row, their limits, stop strings and prompt policy
(pure Python; no backend runs here)."""

import logging

import pytest

from lstm_textgen.data.vocab import END_OF_ITEM, CharVocabulary
from lstm_textgen.errors import TextgenError
from lstm_textgen.generation.generator import Generator, first_stop
from lstm_textgen.generation.request import (
    Completion,
    GenerationRequest,
    prompt_tail,
)
from lstm_textgen.generation.settings import (
    MAX_PROMPT_CHARS,
    MAX_SEED,
    MAX_STOP_STRINGS,
    stop_matrix,
)


def test_one_value_applies_to_every_row_and_a_seed_counts_up_per_row():
    rows = GenerationRequest(["a", "b", "c"], num_chars=5, top_k=[0, 2, 3], seed=7).checked()
    assert rows.column("num_chars") == [5, 5, 5]
    assert rows.column("top_k") == [0, 2, 3]
    assert rows.column("seed") == [7, 8, 9]
    assert rows.column("stop") == [(), (), ()]
    assert GenerationRequest("one").checked().prompts == ("one",)


def test_rows_are_checked_once_so_a_random_seed_is_drawn_once():
    request = GenerationRequest(["a", "b"])
    first = request.checked().column("seed")
    assert request.checked().column("seed") == first
    assert first[1] == first[0] + 1 and 0 <= first[0] <= MAX_SEED


def test_stop_strings_are_shared_or_given_per_row():
    assert GenerationRequest(["a", "b"], stop="\n").checked().column("stop") == [("\n",), ("\n",)]
    assert (
        GenerationRequest(["a", "b"], stop=["x", "y"]).checked().column("stop") == [("x", "y")] * 2
    )
    per_row = GenerationRequest(["a", "b"], stop=[["x"], []]).checked().column("stop")
    assert per_row == [("x",), ()]
    assert stop_matrix(per_row) == [["x", "", "", ""], ["", "", "", ""]]
    assert all(len(row) == MAX_STOP_STRINGS for row in stop_matrix(per_row))


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"prompts": []}, "at least one prompt"),
        ({"prompts": [3]}, "a prompt must be a string"),
        ({"num_chars": 10_001}, "num_chars must be 0 to 10,000"),
        ({"num_chars": 2.5}, "num_chars"),
        ({"num_chars": True}, "num_chars"),
        ({"temperature": float("nan")}, "temperature must be finite and >= 0"),
        ({"temperature": -1.0}, "temperature"),
        ({"top_k": -1}, "top_k must be >= 0"),
        ({"top_p": 0.0}, r"top_p must be in \(0, 1\]"),
        ({"top_p": 1.5}, "top_p"),
        ({"seed": MAX_SEED}, "less the 1 rows after the first"),  # row 2's seed is too big
        ({"seed": -1}, "seed must be 0"),
        ({"top_k": [1, 2, 3]}, r"give one top_k per prompt \(2\), got 3"),
        ({"stop": [""]}, "stop string is empty"),
        ({"stop": ["x" * 17]}, "at most 16"),
        ({"stop": ["a", "b", "c", "d", "e"]}, "at most 4 stop strings"),
        ({"stop": [["a"], [3]]}, "must be a string"),
    ],
)
def test_each_limit_is_one_error_that_names_it(settings, message):
    settings = {"prompts": ["a", "b"], **settings}
    with pytest.raises(TextgenError, match=message):
        GenerationRequest(**settings).checked()


def test_only_the_last_prompt_characters_prime_the_state():
    long = "x" * 5 + "y" * MAX_PROMPT_CHARS
    assert prompt_tail(long) == "y" * MAX_PROMPT_CHARS
    assert GenerationRequest(long).checked().prompts == ("y" * MAX_PROMPT_CHARS,)


def test_first_stop_is_the_first_completed_and_the_longest_of_those():
    # (end, length): the stop ends right before `end`, so the text is text[: end - length].
    assert first_stop("abcdef", ["cde", "de"]) == (5, 3)
    assert first_stop("abcdef", ["bcdef", "cd"]) == (4, 2)
    assert first_stop("abcdef", ["x", ""]) is None
    assert first_stop("", ["x"]) is None
    # Ends before `start` are not looked at: a stream looks past what it has emitted.
    assert first_stop("abcab", ["ab"], start=3) == (5, 2)


class EchoGenerator(Generator):
    """A backend that returns each row's prompt and seed, to see what `complete` passes."""

    def __init__(self, vocab=None):
        self.vocab = vocab
        self.seen = None

    def _complete(self, request):
        self.seen = request
        return [
            Completion(f"{p}:{s}", "length")
            for p, s in zip(request.prompts, request.column("seed"))
        ]


def test_a_backend_gets_checked_rows_and_one_warning_per_prompt_policy(caplog):
    generator = EchoGenerator(CharVocabulary(list("ab")))
    with caplog.at_level(logging.WARNING, logger="lstm_textgen"):
        texts = generator.generate(["ab", "z" + "a" * MAX_PROMPT_CHARS], num_chars=3, seed=4)
    assert texts == ["ab:4", "a" * MAX_PROMPT_CHARS + ":5"]
    assert generator.seen.column("num_chars") == [3, 3]
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1 and "only the last 1,000 characters" in warnings[0]
    with caplog.at_level(logging.WARNING, logger="lstm_textgen"):
        generator.generate(["abc"], seed=0)
    assert "never saw 'c'" in caplog.records[-1].getMessage()
    assert not generator.has_items
    assert EchoGenerator(CharVocabulary(list("ab"), end_of_item=END_OF_ITEM)).has_items


@pytest.mark.parametrize(
    "prompts, message",
    [
        (b"ROMEO:", "got bytes; decode it first"),
        ([b"ROMEO:"], "got bytes; decode it first"),
        (None, "prompts must be a string or a list of strings, got NoneType"),
        (5, "prompts must be a string or a list of strings, got int"),
        ([5], "a prompt must be a string, got int"),
    ],
)
def test_a_prompt_that_is_not_a_string_is_one_clear_error(prompts, message):
    with pytest.raises(TextgenError, match=message):
        GenerationRequest(prompts).checked()


def test_lone_surrogates_are_left_out_of_the_prompt_and_named_in_the_warning(caplog):
    generator = EchoGenerator(CharVocabulary(list("ab")))
    with caplog.at_level(logging.WARNING, logger="lstm_textgen"):
        texts = generator.generate(["a\udcffb"], num_chars=1, seed=0)
    assert texts == ["ab:0"]
    assert "never saw" in caplog.records[-1].getMessage()
