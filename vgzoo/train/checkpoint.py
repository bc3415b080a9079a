"""Training checkpoints in safetensors + JSON, written atomically, resumable bit for bit.

Layout of a run directory::

    RUN_DIR/checkpoints/step_<N>/model.safetensors     the model's state dict (loadable by vgzoo.create)
                                 ema.safetensors       the averaged model, when EMA is on
                                 optim.safetensors     every tensor of every optimizer's state
                                 state.safetensors     RNG states, image pools and other training tensors
                                 trainer_state.json    step, epoch, position in the epoch, optimizer groups,
                                                       schedulers, scaler, Python/NumPy RNG, monitor, config
    RUN_DIR/checkpoints/latest                         a text file naming the newest complete folder
    RUN_DIR/checkpoints/best                           a text file naming the best folder by the val metric

A checkpoint is written into a hidden temporary folder, which is renamed into place once every file
is complete; ``latest`` is then replaced atomically. A process killed mid-save therefore leaves the
previous checkpoint as ``latest``. Nothing is pickled: optimizer state is flattened into safetensors
(tensors) and JSON (everything else).
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .._hub import atomic_write, atomic_write_json, load_state_dict, save_state_dict
from ..errors import VgzooError

CHECKPOINTS = "checkpoints"
LATEST = "latest"
BEST = "best"
STATE_JSON = "trainer_state.json"
_STEP_RE = re.compile(r"^step_(\d+)$")
# Fault injection for the tests: "STEP[:SECONDS]" sleeps (60 s by default) in the middle of saving step STEP.
_SLOW_SAVE_ENV = "VGZOO_TEST_SLOW_SAVE_STEP"


class CheckpointError(VgzooError, FileNotFoundError):
    """A run directory with no usable checkpoint, or a checkpoint that cannot be read."""


# ------------------------------------------------------------------------------------------ optimizers
def flatten_optimizer(name: str, optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    """Split ``optimizer.state_dict()`` into tensors (for safetensors) and the JSON-able rest."""
    sd = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    state_json: dict[str, dict[str, Any]] = {}
    for idx, entry in sd["state"].items():
        plain = {}
        for key, value in entry.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{name}/state/{idx}/{key}"] = value
            else:
                plain[key] = value
        state_json[str(idx)] = plain
    return tensors, {"state": state_json, "param_groups": sd["param_groups"]}


def unflatten_optimizer(name: str, tensors: Mapping[str, torch.Tensor], meta: dict) -> dict:
    """Rebuild an optimizer state dict from :func:`flatten_optimizer`'s two halves."""
    state: dict[int, dict[str, Any]] = {int(k): dict(v) for k, v in meta["state"].items()}
    prefix = f"{name}/state/"
    for key, value in tensors.items():
        if key.startswith(prefix):
            idx, _, field = key[len(prefix) :].partition("/")
            state.setdefault(int(idx), {})[field] = value
    groups = []
    for group in meta["param_groups"]:
        group = dict(group)
        for key, value in group.items():
            if key != "params" and isinstance(value, list):
                group[key] = tuple(value)  # betas and friends were tuples before JSON
        groups.append(group)
    return {"state": state, "param_groups": groups}


# ------------------------------------------------------------------------------------------------- RNG
def capture_rng() -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The states of torch's CPU generator (also Kornia's), CUDA generators, NumPy's and Python's."""
    tensors = {"rng/torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng/cuda/{i}"] = s
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    tensors["rng/numpy_keys"] = torch.from_numpy(np.asarray(keys, dtype=np.int64))
    version, internal, gauss_next = random.getstate()
    meta = {
        "numpy": {"kind": kind, "pos": int(pos), "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "python": {"version": version, "state": list(internal), "gauss_next": gauss_next},
    }
    return tensors, meta


def restore_rng(tensors: Mapping[str, torch.Tensor], meta: dict) -> None:
    """Inverse of :func:`capture_rng`."""
    torch.set_rng_state(tensors["rng/torch"])
    cuda = sorted((k for k in tensors if k.startswith("rng/cuda/")), key=lambda k: int(k.rsplit("/", 1)[1]))
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([tensors[k] for k in cuda][: torch.cuda.device_count()])
    n = meta["numpy"]
    keys = tensors["rng/numpy_keys"].numpy().astype(np.uint32)
    np.random.set_state((n["kind"], keys, n["pos"], n["has_gauss"], n["cached_gaussian"]))
    p = meta["python"]
    random.setstate((p["version"], tuple(p["state"]), p["gauss_next"]))


# ------------------------------------------------------------------------------------------ folders
def checkpoint_dir(run_dir: str | os.PathLike) -> Path:
    return Path(run_dir) / CHECKPOINTS


def list_checkpoints(run_dir: str | os.PathLike) -> list[Path]:
    """Complete checkpoint folders of a run, oldest first."""
    root = checkpoint_dir(run_dir)
    if not root.is_dir():
        return []
    found = []
    for p in root.iterdir():
        m = _STEP_RE.match(p.name)
        if m and p.is_dir() and (p / STATE_JSON).is_file():
            found.append((int(m.group(1)), p))
    return [p for _, p in sorted(found)]


def latest_checkpoint(run_dir: str | os.PathLike) -> Path | None:
    """The folder ``latest`` names, or (if it is missing or broken) the newest complete one."""
    root = checkpoint_dir(run_dir)
    pointer = root / LATEST
    if pointer.is_file():
        target = root / pointer.read_text(encoding="utf-8").strip()
        if (target / STATE_JSON).is_file():
            return target
    found = list_checkpoints(run_dir)
    return found[-1] if found else None


def _write_pointer(root: Path, name: str, folder: Path) -> None:
    atomic_write(root / name, lambda tmp: Path(tmp).write_text(folder.name + "\n", encoding="utf-8"))


def save_checkpoint(
    run_dir: str | os.PathLike,
    step: int,
    *,
    model: torch.nn.Module,
    optimizers: Mapping[str, torch.optim.Optimizer],
    trainer_state: dict[str, Any],
    tensors: Mapping[str, torch.Tensor] | None = None,
    ema: torch.nn.Module | None = None,
    keep_last: int = 3,
    is_best: bool = False,
) -> Path:
    """Write ``RUN_DIR/checkpoints/step_<step>/`` atomically and point ``latest`` at it.

    Args:
        run_dir: the run directory.
        step: the number of completed training steps.
        model: the (unwrapped) model; its state dict becomes ``model.safetensors``.
        optimizers: the optimizers by name.
        trainer_state: JSON-able state (schedulers, scaler, data position, monitor, ...); RNG states are added.
        tensors: further training tensors (image pools, ...), saved into ``state.safetensors``.
        ema: an averaged model (its ``module`` state dict becomes ``ema.safetensors``).
        keep_last: keep this many newest checkpoints (the best one is kept as well).
        is_best: also point ``best`` at this checkpoint.

    Returns:
        The checkpoint folder.
    """
    root = checkpoint_dir(run_dir)
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step_{step}"
    tmp = root / f".step_{step}.tmp"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()

    save_state_dict(model.state_dict(), tmp / "model.safetensors", metadata={"step": str(step)})
    if ema is not None:
        module = getattr(ema, "module", ema)
        save_state_dict(module.state_dict(), tmp / "ema.safetensors", metadata={"step": str(step)})
        trainer_state = {**trainer_state, "ema_n_averaged": int(getattr(ema, "n_averaged", torch.tensor(0)).item())}

    slow = os.environ.get(_SLOW_SAVE_ENV)  # "STEP" or "STEP:SECONDS"
    if slow is not None and int(slow.partition(":")[0]) == step:  # pragma: no cover - runs in a subprocess
        print(f"vgzoo-test: saving step {step}", flush=True)
        sys.stdout.flush()
        time.sleep(float(slow.partition(":")[2] or 60))

    opt_tensors: dict[str, torch.Tensor] = {}
    opt_meta: dict[str, Any] = {}
    for name, opt in optimizers.items():
        t, m = flatten_optimizer(name, opt)
        opt_tensors.update(t)
        opt_meta[name] = m
    save_state_dict(opt_tensors, tmp / "optim.safetensors")

    rng_tensors, rng_meta = capture_rng()
    save_state_dict({**rng_tensors, **dict(tensors or {})}, tmp / "state.safetensors")
    state = {**trainer_state, "step": int(step), "optimizers": opt_meta, "rng": rng_meta}
    atomic_write_json(tmp / STATE_JSON, state)  # written last: its presence marks a complete folder

    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    _write_pointer(root, LATEST, final)
    if is_best:
        _write_pointer(root, BEST, final)
    _prune(root, keep_last)
    return final


def _prune(root: Path, keep_last: int) -> None:
    found = list_checkpoints(root.parent)
    keep = set(found[-max(1, keep_last) :])
    best = root / BEST
    if best.is_file():
        keep.add(root / best.read_text(encoding="utf-8").strip())
    for p in found:
        if p not in keep:
            shutil.rmtree(p, ignore_errors=True)
    for p in root.glob(".step_*.tmp"):  # leftovers of a killed save
        shutil.rmtree(p, ignore_errors=True)


def read_trainer_state(folder: str | os.PathLike) -> dict[str, Any]:
    """The ``trainer_state.json`` of a checkpoint folder as a dict.

    Raises:
        CheckpointError: the file is missing, unreadable, not JSON or not a JSON object; the message names the file
            and the older checkpoints to fall back on.
    """
    folder = Path(folder)
    path = folder / STATE_JSON
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CheckpointError(
            f"{str(folder)!r} is not a complete vgzoo checkpoint (no {STATE_JSON}). "
            "Point --resume at a run directory written by `vgzoo train`, or start a fresh run."
        ) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        why = f"is not valid JSON ({exc})" if isinstance(exc, json.JSONDecodeError) else f"cannot be read ({exc})"
        raise CheckpointError(f"checkpoint file {str(path)!r} {why}. {_fallback_hint(folder)}") from exc
    if not isinstance(state, dict):
        raise CheckpointError(f"checkpoint file {str(path)!r} holds a JSON {type(state).__name__}, not the trainer "
                              f"state object. {_fallback_hint(folder)}")
    return state


def _fallback_hint(folder: Path) -> str:
    older = [p for p in list_checkpoints(folder.parent.parent) if p != folder]
    if not older:
        return "No other checkpoint of this run is complete; start a fresh run (another --out)."
    return (f"Move {str(folder)!r} out of {CHECKPOINTS}/ and --resume continues from {older[-1].name}, the newest "
            "other checkpoint.")


def load_checkpoint(folder: str | os.PathLike) -> dict[str, Any]:
    """Read a checkpoint folder: ``{"model", "ema", "optim", "tensors", "state"}`` (no object is touched).

    Raises:
        CheckpointError: the folder is incomplete or unreadable.
    """
    folder = Path(folder)
    state = read_trainer_state(folder)
    ema_path = folder / "ema.safetensors"
    return {
        "model": load_state_dict(folder / "model.safetensors"),
        "ema": load_state_dict(ema_path) if ema_path.is_file() else None,
        "optim": load_state_dict(folder / "optim.safetensors"),
        "tensors": load_state_dict(folder / "state.safetensors"),
        "state": state,
    }


def restore_optimizers(
    optimizers: Mapping[str, torch.optim.Optimizer], tensors: Mapping[str, torch.Tensor], meta: dict
) -> None:
    """Load every optimizer's flattened state back."""
    for name, opt in optimizers.items():
        if name not in meta:
            raise CheckpointError(
                f"the checkpoint has no state for optimizer {name!r} (it has {sorted(meta)}); it was written by "
                "another recipe. Resume with the same model and options, or start a fresh run."
            )
        sd = unflatten_optimizer(name, tensors, meta[name])
        device = next((p.device for g in opt.param_groups for p in g["params"]), torch.device("cpu"))
        for entry in sd["state"].values():
            for k, v in entry.items():
                if isinstance(v, torch.Tensor) and k != "step":
                    entry[k] = v.to(device)
        opt.load_state_dict(sd)
