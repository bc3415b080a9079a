"""Datasets of vgzoo: aligned pairs (pix2pix), unaligned domains (CycleGAN), labelled folders and built-in digits.

The data formats are those of the pix2pix and CycleGAN reference implementation (Isola et al. 2017; Zhu et al. 2017)
plus labelled class folders and scikit-learn's bundled digits for the class-conditional GAN (Mirza & Osindero, 2014).

Datasets decode and resize deterministically and return float tensors in [0, 1]; the random parts (crop, flip,
normalisation) run batched on the device in :mod:`vgzoo.augment`. Importing this package imports torch but not
scikit-learn, which is loaded only when the digits are requested.

:func:`create_dataset` picks the dataset for a model's task::

    ds = vgzoo.data.create_dataset("datasets/facades", "paired_translation", direction="BtoA")
    ds = vgzoo.data.create_dataset("builtin:digits", "conditional_generation", split="train")
    ds = vgzoo.data.create_dataset("pix2pix:facades", "paired_translation")   # fetched on first use, BtoA

The reference datasets of pix2pix and CycleGAN (``pix2pix:NAME``, ``cyclegan:NAME``) are listed in
:mod:`vgzoo.data.reference`.
"""

from __future__ import annotations

import difflib
import inspect
import os
from pathlib import Path
from typing import Any

from torch.utils.data import Dataset

from ..errors import DataError, PluginError
from ..tasks import BUILTIN_TASKS, UnknownTaskError, get_task, list_tasks
from .aligned import AlignedDataset
from .digits import DigitsDataset, stratified_split
from .images import IMG_EXTENSIONS, RandomCropFlip, list_images, read_image
from .labelled import LabelledImageFolder
from .reference import REFERENCE_DATASETS, dataset_args, fetch_dataset, is_reference_spec, resolve_input
from .single import ImageFolderDataset, ImagesOnly, SingleDataset
from .unaligned import UnalignedDataset
from .verify import VERIFY_MODES, verify_dataset, verify_datasets

__all__ = [
    "IMG_EXTENSIONS",
    "AlignedDataset",
    "BUILTIN_DATASETS",
    "DigitsDataset",
    "ImageFolderDataset",
    "ImagesOnly",
    "DATA_OPTIONS",
    "LabelledImageFolder",
    "REFERENCE_DATASETS",
    "RandomCropFlip",
    "SingleDataset",
    "TASK_DATASETS",
    "UnalignedDataset",
    "VERIFY_MODES",
    "create_dataset",
    "data_options",
    "fetch_dataset",
    "list_images",
    "read_image",
    "resolve_input",
    "stratified_split",
    "verify_dataset",
    "verify_datasets",
]

#: The dataset class a folder spec gets, by built-in task (the task registry, vgzoo.tasks, is the source).
TASK_DATASETS: dict[str, type[Dataset]] = {name: t.dataset_class() for name, t in BUILTIN_TASKS.items()}


def _served_by_builtin(task: str) -> bool:
    try:
        return get_task(task).builtin_view is not None
    except (UnknownTaskError, PluginError):
        return False


#: Built-in datasets by name (``builtin:NAME``) and the built-in tasks they serve (any task whose batches are
#: ``image`` or ``image`` + ``label``, plugin tasks included).
BUILTIN_DATASETS: dict[str, tuple[str, ...]] = {"digits": tuple(t for t in BUILTIN_TASKS if _served_by_builtin(t))}


#: Run options that are dataset keywords: ``-o direction=AtoB`` is ``-o 'data={"direction": "AtoB"}'``.
DATA_OPTIONS = ("direction",)


def data_options(options: dict[str, Any]) -> dict[str, Any]:
    """The dataset keywords of a run: ``options["data"]`` with the :data:`DATA_OPTIONS` moved into it.

    ``options`` is updated in place, so the keywords are saved with the run (and a resumed run reads the same data)
    and the recipe, which refuses names it does not know, never sees them.
    """
    moved = {key: options.pop(key) for key in DATA_OPTIONS if key in options}
    if moved:
        options["data"] = {**options.get("data", {}), **moved}
    return dict(options.get("data", {}))


def _accepted(cls: type) -> list[str]:
    params = list(inspect.signature(cls.__init__).parameters.values())[1:]
    return [p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name != "root"]


def _build(cls: type, spec: str, task: str, *args: Any, **kwargs: Any) -> Dataset:
    accepted = _accepted(cls)
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        close = {u: difflib.get_close_matches(u, accepted, n=1) for u in unknown}
        hints = "".join(f" (did you mean {m[0]!r} for {u!r}?)" for u, m in close.items() if m)
        raise DataError(
            f"create_dataset({spec!r}, task={task!r}) builds a {cls.__name__}, which does not accept "
            f"{', '.join(map(repr, unknown))}; it accepts: {', '.join(accepted)}{hints}"
        )
    return cls(*args, **kwargs)


def create_dataset(spec: str | os.PathLike, task: str, *, verify: bool | str = "off", **kwargs: Any) -> Dataset:
    """Build the dataset a model of ``task`` trains on, from a folder or a built-in name.

    ========================  ===========================================  ==================================
    task                      folder spec                                  ``builtin:digits``
    ========================  ===========================================  ==================================
    paired_translation        :class:`AlignedDataset` (A|B side by side)   not available
    unpaired_translation      :class:`UnalignedDataset` (trainA/, trainB/)  not available
    classification            :class:`LabelledImageFolder`                 :class:`DigitsDataset`
    conditional_generation    :class:`LabelledImageFolder`                 :class:`DigitsDataset`
    generation, restoration   :class:`ImageFolderDataset`                  ``ImagesOnly(DigitsDataset)``
    single (inference)        :class:`SingleDataset`                       not available
    ========================  ===========================================  ==================================

    ``unaligned_translation`` is accepted as another name of ``unpaired_translation``. ``split`` is accepted for every
    dataset: the translation datasets take it as their ``phase`` (``"train"``, ``"val"``, ``"test"``).

    Args:
        spec: a folder path, ``"builtin:digits"``, or a reference dataset (``"pix2pix:facades"``,
            ``"cyclegan:horse2zebra"``; fetched into the cache on first use, with its default ``direction``).
        task: the model's task (``model.pretrained_cfg["task"]``), or ``"single"`` for one folder of inference inputs.
        verify: check every file now (:func:`verify_dataset`): ``"headers"``, ``"decode"`` or ``"off"`` (the
            default here; the trainer checks its datasets with ``"headers"``).
        **kwargs: passed on to the dataset class (``load_size``, ``direction``, ``split``, ``channels``...); a name the
            class does not take raises a :class:`~vgzoo.errors.DataError` listing those it does.

    Returns:
        A ``torch.utils.data.Dataset`` whose items follow the data contract (float tensors in [0, 1]).

    Raises:
        DataError: an unknown task or built-in, a built-in that does not serve the task, or an unknown keyword.
        DataNotFoundError: a missing or empty folder.
    """
    dataset = _create(spec, task, **kwargs)
    verify_dataset(dataset, {True: "headers", False: "off"}.get(verify, verify) if isinstance(verify, bool) else verify)
    return dataset


def _create(spec: str | os.PathLike, task: str, **kwargs: Any) -> Dataset:
    record = None
    if task != "single":
        try:
            record = get_task(task)
        except (UnknownTaskError, PluginError) as exc:
            raise DataError(f"{exc} For inference inputs pass task='single' (a model's task is "
                            "model.pretrained_cfg['task'])") from exc
        task = record.name
    text = os.fspath(spec)
    if is_reference_spec(text):
        path, kwargs = dataset_args(text, task, kwargs)
        text = os.fspath(path)
    if text.startswith("builtin:"):
        name = text.split(":", 1)[1]
        if name not in BUILTIN_DATASETS:
            raise DataError(
                f"unknown built-in dataset {text!r}; available: "
                f"{', '.join('builtin:' + n for n in sorted(BUILTIN_DATASETS))}, or pass a folder path"
            )
        view = record.builtin_view if record is not None else None
        if view is None:
            served = [t for t in list_tasks() if _served_by_builtin(t)]
            raise DataError(
                f"{text!r} has no data for task {task!r} (it serves {', '.join(served)}); "
                "pass a folder of images in the layout that task needs"
            )
        dataset = _build(DigitsDataset, text, task, **kwargs)
        return ImagesOnly(dataset) if view == "images" else dataset

    root = Path(text).expanduser()
    if task == "single":
        return _build(SingleDataset, text, task, root, **kwargs)
    cls = record.dataset_class()
    if cls in (AlignedDataset, UnalignedDataset) and "split" in kwargs:
        if "phase" in kwargs:
            raise DataError(f"pass either split or phase to create_dataset for task {task!r}, not both")
        kwargs["phase"] = kwargs.pop("split")
    if cls is UnalignedDataset and kwargs.get("phase") == "val":
        kwargs["phase"] = unaligned_val_phase(root)
    return _build(cls, text, task, root, **kwargs)


def unaligned_val_phase(root: str | os.PathLike) -> str:
    """The phase that validates a CycleGAN-format folder: ``val`` (valA/, valB/), else ``test`` (testA/, testB/).

    The reference datasets ship trainA/trainB/testA/testB only, so without valA/valB the test split validates;
    this is logged, and the dataset's ``phase`` says which split it is.
    """
    root = Path(root)
    if not (root / "valA").is_dir() and (root / "testA").is_dir() and (root / "testB").is_dir():
        import logging

        logging.getLogger("vgzoo.data").warning(
            "validating on %s/testA and testB (the folder has no valA/ and valB/)", root)
        return "test"
    return "val"
