"""Check a dataset's files before training starts, so one bad image among thousands stops the run at step 0, with
every bad file named, instead of at step 6 with one of them.

The trainer calls :func:`verify_datasets` on its train and val sets; ``create_dataset(..., verify=...)`` does the same
for library users. The check is the dataset's own ``verify()`` (see :func:`vgzoo.data.images.verify_images`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from torch.utils.data import Dataset

from ..errors import DataError

__all__ = ["VERIFY_MODES", "verify_dataset", "verify_datasets"]

#: How thoroughly to check: ``"headers"`` (open + Pillow's verify; the default), ``"decode"`` (decode every image),
#: ``"off"``. ``True``/``False`` mean ``"headers"``/``"off"``.
VERIFY_MODES = ("headers", "decode", "off")


def _mode(decode: bool | str | None) -> str:
    if decode is None or decode is True or decode is False:
        return {None: "headers", True: "decode", False: "headers"}[decode]
    if decode in VERIFY_MODES:
        return str(decode)
    raise DataError(f"verify={decode!r}: expected one of {', '.join(map(repr, VERIFY_MODES))} (e.g. -o "
                    "'data={\"verify\": \"decode\"}' to decode every image before training)")


def _file_count(dataset: Dataset) -> int:
    for attr in ("paths", "samples"):
        if hasattr(dataset, attr):
            return len(getattr(dataset, attr))
    if hasattr(dataset, "paths_A"):
        return len(dataset.paths_A) + len(dataset.paths_B)
    return len(dataset)  # type: ignore[arg-type]


def verify_dataset(dataset: Dataset, decode: bool | str = False, progress: bool = False) -> int:
    """Check every file of ``dataset`` now; return how many files were checked (0 for in-memory datasets).

    Args:
        dataset: a vgzoo dataset (or a wrapper with ``.dataset``, such as ``ImagesOnly`` or a ``Subset``);
            datasets without files (``builtin:digits``, user datasets without a ``verify`` method) pass.
        decode: ``False``/``"headers"`` reads headers and runs Pillow's integrity check (cheap, no decompression);
            ``True``/``"decode"`` decodes every image; ``"off"`` skips the check.
        progress: show a progress bar.

    Raises:
        DataError: one error naming every bad file and what is wrong with it.
    """
    mode = _mode(decode)
    if mode == "off":
        return 0
    while not hasattr(dataset, "verify") and hasattr(dataset, "dataset"):
        dataset = dataset.dataset
    if not hasattr(dataset, "verify"):
        return 0
    dataset.verify(decode=mode == "decode", progress=progress)
    return _file_count(dataset)


def verify_datasets(datasets: Mapping[str, Dataset | None] | Iterable[Dataset | None], decode: bool | str = False,
                    progress: bool = False) -> int:
    """:func:`verify_dataset` on each dataset given (``None`` entries are skipped); the files checked in all.

    ``datasets`` is a list or a mapping ``{split name: dataset}`` (the names head their part of the error). All
    datasets are checked before the error is raised, so it names the bad files of every split at once.
    """
    named = datasets.items() if isinstance(datasets, Mapping) else ((None, ds) for ds in datasets)
    errors, total = [], 0
    for name, ds in named:
        if ds is None:
            continue
        try:
            total += verify_dataset(ds, decode, progress)
        except DataError as exc:
            errors.append(f"{name} split: {exc}" if name else str(exc))
    if errors:
        raise DataError("\n".join(errors))
    return total
