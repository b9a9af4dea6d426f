"""Checkpoints: the one reader and writer of the ``.pt`` files ``python -m vasr.train`` writes.

A checkpoint (format 1) is a dict:

    format            CHECKPOINT_FORMAT
    vasr_version      the package version that wrote it
    config            the TrainConfig as a plain dict (``vasr.config.to_dict``)
    model             the CtcModel state dict (CMVN buffers included)
    optimizer, scaler their state dicts (AdamW, GradScaler)
    tokenizer         ``Tokenizer.to_state()``
    cmvn              {"mean": float32 (80,), "istd": float32 (80,)}, a copy for readers without a model
    progress          the trainer's Progress as a dict (step, epoch, next batch, best metrics, elapsed_s)
    rng               one ``rng_state()`` per rank (index = rank), for an exact resume
    run_id, run_dir   the training_runs row and the directory of the run
    num_parameters    trainable parameters of the model

Files are read weights-only (DESIGN.md section 2: never unpickle a file the user hands in): tensors,
containers, numbers and strings, plus numpy's array reconstruction for the numpy RNG state; torch refuses
any other global, so a checkpoint from elsewhere cannot run code when it is loaded.
"""
from __future__ import annotations

import os
import pickle
import random
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from vasr import __version__
from vasr import config as cfg
from vasr.model import CtcModel, num_parameters
from vasr.text.tokens import Tokenizer

if TYPE_CHECKING:
    from vasr.train import TrainConfig

CHECKPOINT_FORMAT = 1    # bump when the layout above changes
# what np.random.get_state()'s uint32 key array pickles as; nothing else beyond torch's own allowlist
_NUMPY_GLOBALS = [np.core.multiarray._reconstruct, np.ndarray, np.dtype, type(np.dtype(np.uint32))]


@dataclass
class Loaded:
    """A checkpoint ready for inference."""
    model: CtcModel                            # in eval mode, on the device asked for
    tokenizer: Tokenizer
    config: TrainConfig
    raw: dict                                  # everything the file holds (the layout above)


def save(path: Path, *, config: TrainConfig, model: CtcModel, optimizer: torch.optim.Optimizer,
         scaler: torch.amp.GradScaler, tokenizer: Tokenizer, progress: dict, rng: list[dict], run_id: int,
         run_dir: Path) -> None:
    """Write the checkpoint ``path``: to a temporary file beside it, then renamed, so that a crash
    never leaves half a file where the last good one was."""
    state = {
        "format": CHECKPOINT_FORMAT, "vasr_version": __version__, "config": cfg.to_dict(config),
        "model": model.state_dict(), "optimizer": optimizer.state_dict(), "scaler": scaler.state_dict(),
        "tokenizer": tokenizer.to_state(), "cmvn": {"mean": model.cmvn_mean.cpu(), "istd": model.cmvn_istd.cpu()},
        "progress": progress, "rng": rng, "run_id": run_id, "run_dir": str(run_dir),
        "num_parameters": num_parameters(model)}
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: str | os.PathLike, device: str = "cpu") -> Loaded:
    """The model (in eval mode), tokenizer and config of a checkpoint written by ``vasr.train``, and
    everything else it holds (``raw``, tensors on ``device``); read weights-only. ValueError if it
    is not a vasr checkpoint of this format."""
    from vasr.train import TrainConfig   # the configs live with the loop, and train imports this module

    raw = _read(path, device)
    if not isinstance(raw, dict) or raw.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path}: not a vasr checkpoint of format {CHECKPOINT_FORMAT}")
    config = cfg.from_dict(TrainConfig, raw["config"])
    tokenizer = Tokenizer.from_state(raw["tokenizer"])
    model = CtcModel(config.model, tokenizer.vocab_size).to(device)
    model.load_state_dict(raw["model"])
    return Loaded(model.eval(), tokenizer, config, raw)


def _read(path: str | os.PathLike, device: str) -> Any:
    """``torch.load`` weights-only; a file it refuses or cannot read is a one-line ValueError naming
    ``path`` (a missing file stays FileNotFoundError)."""
    if Path(path).is_dir():
        raise ValueError(f"{path}: is a directory, not a checkpoint file")
    try:
        with torch.serialization.safe_globals(_NUMPY_GLOBALS):
            return torch.load(path, map_location=device, weights_only=True)
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such checkpoint") from None
    except pickle.UnpicklingError as exc:  # what weights-only reading says of a global it does not allow
        found = re.search(r"Unsupported global: GLOBAL (\S+)", str(exc))
        detail = re.search(r"WeightsUnpickler error:\s*(.+)", str(exc))
        what = (f"it asks for {found.group(1)}" if found else detail.group(1).strip() if detail
                else "not a torch.save file")
        raise ValueError(f"{path}: refused: not a weights-only checkpoint ({what}); vasr reads tensors, numbers, "
                         f"strings and containers only, nothing that could run code") from None
    except (RuntimeError, EOFError, OSError, zipfile.BadZipFile, ValueError, KeyError, AttributeError) as exc:
        detail = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise ValueError(f"{path}: not a readable checkpoint ({detail})") from None


def rng_state() -> dict[str, Any]:
    """This process's random generators (Python, numpy, torch CPU and every CUDA device)."""
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Put back what ``rng_state`` captured (CUDA only where it was captured and is available)."""
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
