"""Export a trained run as a versioned SavedModel that TensorFlow Serving serves as is.

`export_for_serving(run_dir, "saved_models/NAME")` writes `saved_models/NAME/<version>/`,
the next free integer version. It is written to a hidden temporary folder and renamed, so a
server watching `saved_models/NAME` never sees a partial version. Signatures (strings in,
strings out, no Python at serve time); every input of every signature has the batch as its
first dimension, so TF Serving's batching (`--enable_batching`) can merge requests:

- `serving_default`: `prompt` string [B] and one input per setting of
  `lstm_textgen.generation.settings.SETTINGS`, of the table's dtype (`generate_spec`): `num_chars`,
  `temperature`, `top_k`, `top_p`, `seed` [B] and `stop` string [B, MAX_STOP_STRINGS]
  (each row's stop strings, then empty strings for unused slots) -> `text` string [B],
  `finish_reason` string [B] (`length`, `stop` or `end`), `h` and `c` float32
  [B, layers, units] and `next_step` int32 [B] (where each row continues), `logprobs` and
  `model_logprobs` float32 [B, T] (each generated character's log-probability under the
  distribution it was sampled from and under the model; 0 past a row's text).
- `continue`: the inputs of `serving_default`, then `h`, `c` and `start_step` int32 [B]
  (a row's `next_step`) -> the same outputs: each row goes on from its state, its prompt
  read on from there (an items model adds no end-of-item marker).
- `generate_rows`: `serving_default` under its earlier name (an alias).
- `step`: `ids` int32 [B], `h` and `c` float32 [B, layers, units] -> `logits` [B, V] and
  the new `h`, `c`, for clients that stream one character at a time.
- `score`: `text` string [B] -> `log_likelihood` (nats, summed), `bits_per_char` and
  `num_chars` (characters scored; unknown ones are skipped) per row, and `log_probs`
  float32 [B, T], each character's log-probability (0 where skipped or past the text).

A row's text depends only on its own inputs, not on the rows merged with it (up to the
rounding of matrix products across batch sizes, see docs/serving.md). The request follows the
limits of `lstm_textgen.generation.settings.SETTINGS`, checked in the graph (`check_request`): the
last `MAX_PROMPT_CHARS` characters of a prompt prime the state, at most `MAX_NUM_CHARS`
are generated per row (more is clamped), and `score` reads the first `MAX_SCORE_CHARS` of
a text. A setting outside its limits, a stop string longer than `MAX_STOP_CHARS`
characters, an empty stop string before a non-empty one, or inputs of different lengths
fail the request with INVALID_ARGUMENT.
"""

from __future__ import annotations

import dataclasses
import os
import shutil

import tensorflow as tf

from lstm_textgen.config import LN2, MAX_SCORE_CHARS, ModelConfig
from lstm_textgen.data.vocab import UNKNOWN_ID, CharVocabulary
from lstm_textgen.errors import TextgenError, first_line, setting
from lstm_textgen.export.model import export_model
from lstm_textgen.files import atomic_write_text
from lstm_textgen.generation.graph import (
    continue_spec,
    first_characters,
    generate_spec,
    generate_text,
)
from lstm_textgen.generation.settings import (
    MAX_NUM_CHARS,
    MAX_PROMPT_CHARS,
    MAX_START_STEP,
    MAX_STOP_CHARS,
    MAX_STOP_STRINGS,
    SETTINGS,
    START_STEP,
)
from lstm_textgen.generation.signature_state import (
    row_spec,
    stacked_state,
    state_spec,
    unstacked_state,
)
from lstm_textgen.model import stepping
from lstm_textgen.model.language_model import CharLanguageModel
from lstm_textgen.store.export_layout import (
    EXPORT_EXTRA_DIR,
    EXPORT_METADATA_FILE,
    ExportMetadata,
    export_versions,
    file_checksums,
)

WARMUP_FILE = "tf_serving_warmup_requests"


def _setting_checks(spec, value):
    """The in-graph checks of one number setting's limits (`Setting.in_graph == "check"`)."""
    checks = [tf.debugging.assert_all_finite(value, spec.message)] if not spec.is_integer else []
    if spec.minimum is not None:
        bound = tf.constant(spec.minimum, value.dtype)
        above = (
            tf.debugging.assert_greater
            if spec.minimum_excluded
            else (tf.debugging.assert_greater_equal)
        )
        checks.append(above(value, tf.fill(tf.shape(value), bound), message=spec.message))
    if spec.maximum is not None:
        bound = tf.fill(tf.shape(value), tf.constant(spec.maximum, value.dtype))
        checks.append(tf.debugging.assert_less_equal(value, bound, message=spec.message))
    return checks


def check_request(prompt, settings):
    """In-graph request validation, the limits of `settings.SETTINGS`: a bad request
    fails with INVALID_ARGUMENT, it never crashes the server. Returns the checks."""
    rows = tf.size(prompt)
    checks = [
        tf.debugging.assert_equal(
            tf.shape(value)[0], rows, message="every input needs one value per prompt"
        )
        for value in settings.values()
    ]
    for name, value in settings.items():
        spec = SETTINGS[name]
        if spec.is_number and spec.in_graph == "check":
            checks += _setting_checks(spec, value)
    stop = settings["stop"]
    stop_chars = tf.strings.length(stop, unit="UTF8_CHAR")
    # An empty slot ends a row's list: an empty string before a non-empty one is an empty
    # stop string.
    used = tf.cast(stop_chars > 0, tf.int32)
    return checks + [
        # A loader that does not check feed shapes (TF Serving's C++ session) would pass a
        # wider `stop` on: count its slots in the graph.
        tf.debugging.assert_equal(
            tf.size(stop),
            rows * MAX_STOP_STRINGS,
            message=f"at most {MAX_STOP_STRINGS} stop strings per row, padded with empty "
            f"strings to {MAX_STOP_STRINGS}",
        ),
        tf.debugging.assert_less_equal(
            stop_chars,
            MAX_STOP_CHARS,
            message=f"a stop string has at most {MAX_STOP_CHARS} characters",
        ),
        tf.debugging.assert_greater_equal(
            used[:, :-1],
            used[:, 1:],
            message="a stop string is empty; give at least one character (empty slots go last)",
        ),
    ]


STATE_NOT_FINITE = (
    "h and c must be finite numbers: a state with NaN or infinity is damaged; continue from "
    "the h and c of a reply"
)


def check_state(h, c, start_step, rows, num_layers: int, units: int):
    """In-graph checks of a continuation's inputs: a finite state of this model's shape,
    one per prompt, and a start step within `START_STEP`'s limits."""
    message = (
        f"h and c must be [rows, {num_layers}, {units}], a state of this model "
        "(the h and c of its own reply)"
    )
    expected = tf.stack([rows, num_layers, units])
    return [
        tf.debugging.assert_equal(tf.shape(h), expected, message=message),
        tf.debugging.assert_equal(tf.shape(c), expected, message=message),
        tf.debugging.assert_all_finite(h, STATE_NOT_FINITE),
        tf.debugging.assert_all_finite(c, STATE_NOT_FINITE),
        tf.debugging.assert_equal(
            tf.size(start_step), rows, message="every input needs one value per prompt"
        ),
        *_setting_checks(START_STEP, start_step),
    ]


class ServingFunctions:
    """The signature functions, as plain graph code over one model and vocabulary."""

    def __init__(self, model: CharLanguageModel, vocab: CharVocabulary):
        self.model = model
        self.vocab = vocab

    def generate(self, prompt, *settings):
        """`generate_spec`'s inputs: every setting per row; row r's text depends only on
        row r's inputs."""
        settings = dict(zip(SETTINGS, settings))
        with tf.control_dependencies(check_request(prompt, settings)):
            return generate_text(self.model, self.vocab, prompt, settings)

    def continue_(self, prompt, *inputs):
        """`continue_spec`'s inputs: `generate`'s, each row from its `h`, `c` and
        `start_step`."""
        *settings, h, c, start_step = inputs
        settings = dict(zip(SETTINGS, settings))
        model = self.model
        checks = check_request(prompt, settings) + check_state(
            h, c, start_step, tf.size(prompt), model.num_layers, model.units
        )
        with tf.control_dependencies(checks):
            continued = {"h": h, "c": c, START_STEP.name: start_step}
            return generate_text(model, self.vocab, prompt, settings, continued)

    def step(self, ids, h, c):
        state = unstacked_state(h, c, self.model.num_layers)
        logits, state = stepping.step(self.model, ids, state)
        return {"logits": logits, **stacked_state(state)}

    def score(self, text):
        """Log-likelihood of the first `MAX_SCORE_CHARS` characters of each text; its
        first character is scored from the initial state, and characters outside the
        vocabulary are skipped."""
        codepoints = first_characters(text, MAX_SCORE_CHARS)
        ids = self.vocab.tf_encode_codepoints(codepoints).to_tensor(default_value=UNKNOWN_ID)
        mask = tf.not_equal(ids, UNKNOWN_ID)
        batch, length = tf.shape(ids)[0], tf.shape(ids)[1]
        first = stepping.next_logits(self.model, self.model.initial_state(batch))[:, None]
        following = self.model(ids, padding_mask=mask)[:, :-1]
        logits = tf.concat([first, following], axis=1)[:, :length]
        log_probs = -tf.nn.sparse_softmax_cross_entropy_with_logits(labels=ids, logits=logits)
        weights = tf.cast(mask, log_probs.dtype)
        log_probs = log_probs * weights
        log_likelihood = tf.reduce_sum(log_probs, axis=1)
        count = tf.reduce_sum(weights, axis=1)
        bits = -log_likelihood / tf.maximum(count, 1.0) / LN2
        return {
            "log_likelihood": log_likelihood,
            "bits_per_char": bits,
            "num_chars": tf.cast(count, tf.int32),
            "log_probs": tf.cast(log_probs, tf.float32),
        }


def _signatures(functions: ServingFunctions, config: ModelConfig):
    row, state = row_spec, lambda name: state_spec(config, name)  # noqa: E731
    return {
        "serving_default": (functions.generate, generate_spec()),
        "continue": (functions.continue_, continue_spec(config.num_layers, config.units)),
        "generate_rows": (functions.generate, generate_spec()),
        "step": (functions.step, [row(tf.int32, "ids"), state("h"), state("c")]),
        "score": (functions.score, [row(tf.string, "text")]),
    }


def _traced_signatures(functions: ServingFunctions, config: ModelConfig) -> dict:
    """`{signature name: concrete function}`; names that share a function share its trace."""
    traced, signatures = {}, {}
    for name, (fn, spec) in _signatures(functions, config).items():
        if fn not in traced:
            traced[fn] = tf.function(fn, input_signature=spec, autograph=False)
        signatures[name] = traced[fn].get_concrete_function()
    return signatures


def next_version(export_base: str) -> int:
    return max(export_versions(export_base), default=0) + 1


def export_for_serving(
    run_dir: str,
    export_base: str,
    checkpoint: str = "best",
    version: int | None = None,
    warmup: bool = True,
) -> str:
    """Write the run's model to `export_base/<version>/`; returns that path."""
    trained = export_model(run_dir, checkpoint)
    functions = ServingFunctions(trained.model, trained.vocab)
    version, final = _version_folder(export_base, version)
    signatures = _traced_signatures(functions, trained.model_config)
    root, weights = _serving_root(signatures, trained.model)

    # A dot-name keeps TF Serving's version scan from picking up the half-written folder.
    tmp = os.path.join(export_base, f".tmp-{version}-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        _write_version(tmp, trained, root, signatures, weights, warmup)
        os.rename(tmp, final)
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        reason = e.strerror or str(e)
        raise TextgenError(f"could not write the export to {export_base}: {reason}") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def _version_folder(export_base: str, version: int | None) -> tuple[int, str]:
    """`(version, its folder)` of a new export under `export_base` (created if missing):
    the given version, or the next free one; an existing folder is an error."""
    try:
        os.makedirs(export_base, exist_ok=True)
    except OSError as e:
        raise TextgenError(f"cannot create {export_base}: {e.strerror}") from None
    if version is None:
        version = next_version(export_base)
    elif version < 1:
        raise TextgenError(f"{setting('version')} must be a positive integer, got {version}")
    final = os.path.join(export_base, str(version))
    if os.path.exists(final):
        raise TextgenError(
            f"{final} already exists; pick another {setting('version')} or leave it out"
        )
    return version, final


def _serving_root(signatures, model) -> tuple[tf.Module, list]:
    """`(root, weights)`: the module to save, holding just the model's weights that the
    traced `signatures` read, and those weights."""
    # The root holds just the weights the signatures read; the signatures are all a server
    # calls. Each function is traced once here: saving the tf.functions themselves would
    # trace each again in the save context.
    read = {id(v) for function in signatures.values() for v in function.variables}
    weights = [v for v in model.variables if id(v.value) in read]
    root = tf.Module()
    root.weights = [v.value for v in weights]
    return root, weights


def _write_version(tmp, trained, root, signatures, weights, warmup: bool) -> None:
    """Save the SavedModel to `tmp`, then its extra files: the vocabulary, the warm-up
    requests (if `warmup`) and, last, the metadata. A failed save raises OSError."""
    try:
        tf.saved_model.save(root, tmp, signatures=signatures)
    except tf.errors.OpError as e:
        raise OSError(first_line(e)) from None
    extra = os.path.join(tmp, EXPORT_EXTRA_DIR)
    os.makedirs(extra, exist_ok=True)
    trained.vocab.save(extra)
    if warmup:
        from lstm_textgen.export.warmup import write_warmup_requests

        write_warmup_requests(os.path.join(extra, WARMUP_FILE), trained.model_config)
    # The metadata last: it holds the checksums of every other file.
    metadata = dataclasses.replace(
        export_metadata(trained, weight_paths(weights, trained.model)),
        checksums=file_checksums(tmp),
    )
    atomic_write_text(os.path.join(extra, EXPORT_METADATA_FILE), metadata.to_json())


def export_metadata(trained, weights: dict[str, str]) -> ExportMetadata:
    """The export's `ExportMetadata`: the model's architecture, what it was trained with,
    where each weight lies (`weight_paths`) and the request limits the graph enforces."""
    train = trained.train_config
    return ExportMetadata(
        model=dict(trained.model_config.__dict__),
        train=dataclasses.asdict(train) if train else None,
        weights=weights,
        limits={
            "max_num_chars": MAX_NUM_CHARS,
            "max_prompt_chars": MAX_PROMPT_CHARS,
            "max_stop_strings": MAX_STOP_STRINGS,
            "max_stop_chars": MAX_STOP_CHARS,
            "max_score_chars": MAX_SCORE_CHARS,
            "max_start_step": MAX_START_STEP,
        },
    )


def weight_paths(weights: list, model: CharLanguageModel) -> dict[str, str]:
    """`{checkpoint key: weight path}` of the export's `weights` (the root's list), e.g.
    `{"weights/0/.ATTRIBUTES/VARIABLE_VALUE": "lstm_0/cell/kernel"}`, so a reader can
    rebuild the Keras model (`sources.load_source`)."""
    saved = {id(v) for v in weights}
    missing = [v.path for v in model.trainable_variables if id(v) not in saved]
    if missing:
        raise TextgenError(f"the export lacks the weights {missing}")
    return {
        f"weights/{k}/.ATTRIBUTES/VARIABLE_VALUE": v.path.split("/", 1)[1]
        for k, v in enumerate(weights)
    }
