"""The one tiny LiteRT export the LiteRT tests share."""

from lstm_textgen.config import ModelConfig
from lstm_textgen.export.litert import export_litert
from lstm_textgen.export.saved_model import export_for_serving
from lstm_textgen.store.loading import load_trained_model

from conftest import built_once
from helpers import train_tiny_run

LAYERS, UNITS = 2, 32  # 32: dynamic-range quantization skips weights under 1,024 values
# LiteRT's kernels (XNNPACK) round differently from TensorFlow's; measured differences on
# this model are below 1e-6.
PARITY_ATOL = 1e-4


def make_litert_exports(tmp_path_factory, small_text):
    """A tiny run trained for 30 steps, exported to LiteRT (fp32 and int8) and a SavedModel
    (once per test session, `built_once`)."""

    def build(root):
        model_config = ModelConfig(units=UNITS, num_layers=LAYERS, embedding_dim=4)
        run = train_tiny_run(root, small_text, model_config, max_steps=30, checkpoint_every=30)
        return {
            "run": run,
            "fp32": export_litert(str(run), str(root / "model.tflite")),
            "int8": export_litert(str(run), str(root / "model-int8.tflite"), quantize="dynamic"),
            "saved_model": export_for_serving(str(run), str(root / "saved"), warmup=False),
        }

    paths = built_once(tmp_path_factory, "litert", build)
    model, vocab = load_trained_model(str(paths["run"]))
    as_strings = {name: str(paths[name]) for name in ("fp32", "int8", "saved_model")}
    return {**paths, **as_strings, "model": model, "vocab": vocab}
