"""Fine-tuning: a new model that starts from a trained one's weights."""

from __future__ import annotations

from lstm_textgen.errors import TextgenError


def copy_weights(source, model) -> None:
    """Copy the trainable weights of `source` into `model`, two `CharLanguageModel`s of
    one architecture whose vocabulary may have grown (`CharVocabulary.extended`).

    Every id of the source keeps its rows: its embedding row, and its column of the
    head's kernel and bias. The rows of new ids keep the fresh initialisation `model`
    was built with, as a new layer would start them. The dropout generators' states are
    not copied: the new run draws its own from its seed.
    """
    pairs = list(zip(source.trainable_variables, model.trainable_variables, strict=True))
    for old, new in pairs:
        old_shape, new_shape = tuple(old.shape), tuple(new.shape)
        if old_shape == new_shape:
            new.assign(old)
            continue
        # Only the vocabulary axis may differ: the embedding's rows (axis 0) and the
        # head's outputs (its kernel's axis 1, its bias's axis 0).
        axis = len(new_shape) - 1 if new.path.endswith("logits/kernel") else 0
        grows = all(
            o == n if k != axis else o < n for k, (o, n) in enumerate(zip(old_shape, new_shape))
        )
        if len(old_shape) != len(new_shape) or not grows:
            raise TextgenError(
                f"cannot start {new.path} {new_shape} from {old.path} {old_shape}: the "
                "architectures differ"
            )
        value = new.numpy()
        index = tuple(slice(0, size) for size in old_shape)
        value[index] = old.numpy()
        new.assign(value)
