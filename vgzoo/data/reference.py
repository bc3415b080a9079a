"""The reference datasets of pix2pix and CycleGAN by name: ``pix2pix:facades``, ``cyclegan:horse2zebra``, ...

These are the sets the reference implementation's download scripts fetch (Isola et al. 2017; Zhu et al. 2017). Each
entry records where the archive lives, its kind (``aligned``: A|B side by side; ``unaligned``: two domain folders),
its layout, its splits, the direction that translates the way the papers do (facades: ``BtoA``, labels to photo),
its image size and where the images come from. A spec names an entry, optionally followed by a sub-folder:
``cyclegan:horse2zebra/testA``.

:func:`fetch_dataset` downloads the archive through :mod:`vgzoo.download` (so ``VGZOO_CACHE``, ``VGZOO_MIRROR`` and
``VGZOO_OFFLINE`` apply), extracts it safely (:mod:`vgzoo.data.archive`), checks its layout and image headers, and
moves it into place at ``VGZOO_CACHE/datasets/<collection>/<name>/``. A folder already there (fetched before, or
unpacked by hand) is used as it is once its layout checks out. A fetch holds a file lock on the dataset folder, so
concurrent fetches of one set wait for the first and reuse its folder; SIGTERM removes the temporary extraction, and
what a killed process left (``.NAME.*.extracting``) is swept by the next fetch. The upstream servers publish no
checksums: the SHA-256 of the archive is recorded on first fetch and checked when the archive is reused.

The image counts, sizes and sources below are taken from the reference's dataset documentation; they were not
checked against the servers here.
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import DataError, DataNotFoundError, OfflineError

__all__ = [
    "COLLECTIONS",
    "REFERENCE_DATASETS",
    "ReferenceDataset",
    "dataset_args",
    "dataset_folder",
    "describe",
    "fetch_dataset",
    "get_reference",
    "is_cached",
    "is_reference_spec",
    "list_references",
    "resolve_input",
    "resolve_spec",
]

#: Archive URL pattern of each collection, from the reference's download scripts.
COLLECTIONS: dict[str, str] = {
    "pix2pix": "http://efrosgans.eecs.berkeley.edu/pix2pix/datasets/{name}.tar.gz",
    "cyclegan": "http://efrosgans.eecs.berkeley.edu/cyclegan/datasets/{name}.zip",
}

_KIND_TASK = {"aligned": "paired_translation", "unaligned": "unpaired_translation", "images": None}
# the folder layout (vgzoo.tasks.DATA_LAYOUTS) of each kind: a set serves the tasks whose record names that layout
_KIND_LAYOUT = {"aligned": "pairs", "unaligned": "domains", "images": None}
_PICK = {"pairs": "pick a pix2pix: dataset", "domains": "pick a cyclegan: dataset", "classes": "pass a labelled folder"}
_LAYOUT = {
    "aligned": "{splits}: each image holds A (left) and B (right) side by side",
    "unaligned": "{splits}: domain A and domain B images, unpaired",
    "images": "{splits}: RGB images",
}
_CITYSCAPES = (
    "Cityscapes is licence-restricted: the reference may not redistribute it, so vgzoo does not download it. Register "
    "at https://www.cityscapes-dataset.com, download gtFine_trainvaltest.zip and leftImg8bit_trainvaltest.zip, and "
    "prepare them with the reference's datasets/prepare_cityscapes_dataset.py (pix2pix: aligned label|photo pairs in "
    "train/ and val/; CycleGAN: trainA/ trainB/ testA/ testB/). Then pass the prepared folder to --data."
)


@dataclass(frozen=True)
class ReferenceDataset:
    """One reference dataset: where its archive is, what it holds and how to train on it."""

    collection: str
    name: str
    kind: str
    splits: tuple[str, ...]
    required: tuple[str, ...]
    source: str
    license: str
    direction: str = "AtoB"
    image_size: int | None = 256
    restricted: str | None = None

    @property
    def spec(self) -> str:
        """The name to pass to ``--data``: ``collection:name``."""
        return f"{self.collection}:{self.name}"

    @property
    def url(self) -> str:
        """The upstream archive URL (``VGZOO_MIRROR`` rewrites its host when fetched)."""
        return COLLECTIONS[self.collection].format(name=self.name)

    @property
    def archive_name(self) -> str:
        return self.url.rsplit("/", 1)[-1]

    @property
    def archive_relpath(self) -> str:
        """Where the archive lives under the cache root."""
        return f"datasets/{self.collection}/{self.archive_name}"

    @property
    def task(self) -> str | None:
        """The model task that trains on this kind of dataset (``None``: inference inputs only)."""
        return _KIND_TASK[self.kind]

    @property
    def layout(self) -> str:
        return _LAYOUT[self.kind].format(splits=", ".join(f"{s}/" for s in self.splits))


def _p2p(name: str, splits: tuple[str, ...], source: str, license: str, **kw: Any) -> ReferenceDataset:
    return ReferenceDataset("pix2pix", name, "aligned", splits, ("train",), source, license, **kw)


def _cg(name: str, source: str, license: str, *, splits=("trainA", "trainB", "testA", "testB"),
        kind: str = "unaligned", required: tuple[str, ...] | None = None, **kw: Any) -> ReferenceDataset:
    required = required if required is not None else (("trainA", "trainB") if kind == "unaligned" else splits[:1])
    return ReferenceDataset("cyclegan", name, kind, tuple(splits), required, source, license, **kw)


_IMAGENET = "ImageNet terms: non-commercial research and education"
_FLICKR = "Flickr photos: each photographer's licence"
_ART = "WikiArt and Flickr: the artworks' and photographers' terms"

_ENTRIES = [
    _p2p("facades", ("train", "val", "test"), "400 training images of the CMP Facades database (Tylecek & Sara 2013)",
         "CMP Facades database: research use; cite Tylecek & Sara 2013", direction="BtoA"),
    _p2p("maps", ("train", "val"), "1096 training pairs of aerial photo and map scraped from Google Maps",
         "Google Maps imagery: Google's terms; research use", image_size=600),
    _p2p("edges2shoes", ("train", "val"), "50k shoe photos of UT Zappos50K with HED edges",
         "UT Zappos50K: non-commercial research; cite Yu & Grauman 2014"),
    _p2p("edges2handbags", ("train", "val"), "137k Amazon handbag photos from the iGAN project with HED edges",
         "Amazon photos via iGAN: research use; cite Zhu et al. 2016"),
    _p2p("night2day", ("train", "val", "test"), "night and day pairs of the Transient Attributes webcams",
         "Transient Attributes: research use; cite Laffont et al. 2014"),
    _p2p("cityscapes", ("train", "val"), "2975 Cityscapes training images, label and photo",
         "Cityscapes licence: registration, no redistribution", restricted=_CITYSCAPES),
    _cg("apple2orange", "996 apple and 1020 navel orange images from ImageNet", _IMAGENET),
    _cg("summer2winter_yosemite", "1273 summer and 854 winter Yosemite photos from Flickr", _FLICKR),
    _cg("horse2zebra", "939 wild horse and 1177 zebra images from ImageNet", _IMAGENET),
    _cg("monet2photo", "Monet paintings (1074 for training) and landscape photos", _ART),
    _cg("cezanne2photo", "Cezanne paintings (584 for training) and landscape photos", _ART),
    _cg("ukiyoe2photo", "Ukiyo-e prints (1433 for training) and landscape photos", _ART),
    _cg("vangogh2photo", "Van Gogh paintings (401 for training) and landscape photos", _ART),
    _cg("maps", "1096 training aerial photos and maps scraped from Google Maps, unpaired",
        "Google Maps imagery: Google's terms; research use", image_size=600),
    _cg("facades", "400 CMP Facades labels and photos, unpaired",
        "CMP Facades database: research use; cite Tylecek & Sara 2013"),
    _cg("iphone2dslr_flower", "flower photos from Flickr: 1813 iPhone, 3316 DSLR for training", _FLICKR),
    _cg("ae_photos", "test photos of the reference's pretrained style models",
        "research use (see the reference implementation)", splits=("testA",), kind="images", image_size=None),
    _cg("cityscapes", "2975 Cityscapes training images, labels and photos, unpaired",
        "Cityscapes licence: registration, no redistribution", restricted=_CITYSCAPES),
    _cg("mini", "a few horse2zebra-style images, for smoke tests", "as horse2zebra (ImageNet terms)",
        image_size=None),
    _cg("mini_pix2pix", "a few aligned pairs, for smoke tests", "as the pix2pix set it was cut from",
        splits=("train", "val", "test"), kind="aligned", required=("train",), image_size=None),
    _cg("mini_colorization", "a few RGB images for colorization, for smoke tests",
        "research use (see the reference implementation)", splits=("train", "test"), kind="images",
        required=("train",), image_size=None),
]

#: Every reference dataset by spec (``collection:name``).
REFERENCE_DATASETS: dict[str, ReferenceDataset] = {e.spec: e for e in _ENTRIES}


def list_references() -> list[ReferenceDataset]:
    """Every reference dataset, in the registry's order (pix2pix first)."""
    return list(REFERENCE_DATASETS.values())


def describe(entry: ReferenceDataset) -> dict[str, Any]:
    """One row of ``vgzoo data list``: name, kind, image size, splits, direction, licence note, cache state."""
    size = f"{entry.image_size}x{entry.image_size}" if entry.image_size else "varies"
    if entry.kind == "aligned" and entry.image_size:
        size += " per half"
    archive_only = (dataset_folder(entry).parent / entry.archive_name).is_file()
    state = "restricted" if entry.restricted else "yes" if is_cached(entry) else "archive" if archive_only else "no"
    return {"name": entry.spec, "kind": entry.kind, "size": size, "splits": list(entry.splits),
            "direction": entry.direction if entry.task else None, "license": entry.license, "cached": state,
            "url": entry.url, "folder": str(dataset_folder(entry))}


def is_reference_spec(spec: str | os.PathLike) -> bool:
    """Whether ``spec`` names a reference dataset collection (``pix2pix:...`` or ``cyclegan:...``)."""
    if not isinstance(spec, str):
        return False
    prefix, sep, _ = spec.partition(":")
    return bool(sep) and prefix in COLLECTIONS


def _split_spec(spec: str) -> tuple[str, str]:
    collection, _, rest = spec.partition(":")
    name, _, sub = rest.strip("/").partition("/")
    return f"{collection}:{name}", sub


def get_reference(spec: str, *, allow_restricted: bool = False) -> ReferenceDataset:
    """The entry of ``spec`` (``"pix2pix:facades"``; a trailing ``/sub/folder`` is ignored).

    Raises:
        DataError: an unknown name (with the close matches and the list), or a licence-restricted one.
    """
    key, _ = _split_spec(spec)
    entry = REFERENCE_DATASETS.get(key)
    if entry is None:
        collection = key.partition(":")[0]
        names = [e.spec for e in REFERENCE_DATASETS.values() if e.collection == collection]
        close = difflib.get_close_matches(key, names, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise DataError(f"unknown reference dataset {key!r}{hint}; {collection} datasets: {', '.join(names)} "
                        "(vgzoo data list shows them all)")
    if entry.restricted and not allow_restricted:
        raise DataError(f"{entry.spec}: {entry.restricted}")
    return entry


def dataset_folder(entry: ReferenceDataset) -> Path:
    """Where ``entry`` is (or will be) extracted: ``VGZOO_CACHE/datasets/<collection>/<name>``."""
    from ..download import cache_path

    return cache_path(f"datasets/{entry.collection}/{entry.name}")


def _found(folder: Path) -> str:
    entries = sorted(p.name + ("/" if p.is_dir() else "") for p in folder.iterdir() if not p.name.startswith("."))
    shown = ", ".join(entries[:12]) + (f", ... ({len(entries)} entries)" if len(entries) > 12 else "")
    return shown or "nothing"


def check_layout(entry: ReferenceDataset, folder: Path, *, origin: str, hint: str = "") -> None:
    """Raise a :class:`DataNotFoundError` naming what was found when ``folder`` lacks the entry's required splits."""
    from .images import list_images

    missing = [s for s in entry.required if not (folder / s).is_dir()]
    if missing:
        raise DataNotFoundError(
            f"{origin} has no {', '.join(s + '/' for s in missing)} (found: {_found(folder)}); expected the "
            f"{entry.spec} layout: {entry.layout}{hint}"
        )
    for split in entry.required:
        list_images(folder / split, what=f"{entry.spec} split folder")


def _verify(entry: ReferenceDataset, folder: Path, progress: bool = False) -> None:
    """Read every image header now, so a bad file is reported at fetch time and not mid-training."""
    from tqdm.auto import tqdm

    from .images import is_image_file, verify_images

    paths = sorted(p for s in entry.splits if (folder / s).is_dir() for p in (folder / s).rglob("*")
                   if p.is_file() and is_image_file(p))
    chunk = 500
    with tqdm(total=len(paths), desc=f"check {entry.spec}", unit="img", disable=not progress, leave=False) as bar:
        for start in range(0, len(paths), chunk):
            verify_images(paths[start:start + chunk], aligned=entry.kind == "aligned", what=f"{entry.spec} download")
            bar.update(len(paths[start:start + chunk]))


def _locate(entry: ReferenceDataset):
    def locate(tmp: Path) -> Path:
        if (tmp / entry.name).is_dir():
            return tmp / entry.name
        if any((tmp / s).is_dir() for s in entry.splits):
            return tmp
        dirs = [p for p in tmp.iterdir() if p.is_dir() and not p.name.startswith((".", "__MACOSX"))]
        return dirs[0] if len(dirs) == 1 else tmp

    return locate


def is_cached(entry: ReferenceDataset) -> bool:
    """Whether ``entry`` is extracted in the cache with its required splits."""
    folder = dataset_folder(entry)
    return folder.is_dir() and all((folder / s).is_dir() for s in entry.required)


def fetch_dataset(spec: str | ReferenceDataset, *, progress: bool = True, force: bool = False,
                  verify: bool = True) -> Path:
    """Make a reference dataset available locally and return its folder (the one holding its splits).

    Args:
        spec: ``"pix2pix:facades"``... or an entry of :data:`REFERENCE_DATASETS`.
        progress: progress bars for the download and the extraction.
        force: download and extract again, replacing the cached archive and folder (the user asked for it), each
            only once its new copy is complete: with the server down or ``VGZOO_OFFLINE=1`` the cached set stays.
        verify: read every image header after extraction and refuse the set if some cannot be read.

    Raises:
        DataError: an unknown or licence-restricted name, an unsafe or corrupt archive, unreadable images.
        DataNotFoundError: an archive (or a folder unpacked by hand) without the expected layout, naming what was found.
        OfflineError: ``VGZOO_OFFLINE=1`` and neither the folder nor the archive is cached; names the URL and folder.
        DownloadError: the download failed.
    """
    from ..download import cache_lock, removed_on_sigterm

    entry = spec if isinstance(spec, ReferenceDataset) else get_reference(spec)
    if entry.restricted:
        raise DataError(f"{entry.spec}: {entry.restricted}")
    folder = dataset_folder(entry)
    if folder.exists() and not force:
        return _cached(entry, folder)
    with cache_lock(folder, entry.spec), removed_on_sigterm():
        if folder.exists() and not force:  # another process made it while this one waited for the lock
            return _cached(entry, folder)
        _sweep_extractions(folder)
        return _fetch_and_extract(entry, folder, progress=progress, force=force, verify=verify)


def _cached(entry: ReferenceDataset, folder: Path) -> Path:
    check_layout(entry, folder, origin=f"cached folder {str(folder)!r} of {entry.spec}",
                 hint="; fix that folder, or delete it to fetch the set again")
    return folder


def _sweep_extractions(folder: Path) -> None:
    """Remove what a killed extraction of ``folder`` left (the caller holds its lock, so nobody is extracting).

    A ``.replaced`` folder holds the previous set while ``--force`` swaps the new one in: if the process died
    between the two renames, the previous set is put back rather than removed.
    """
    import shutil

    for leftover in folder.parent.glob(f".{folder.name}.*.extracting"):
        shutil.rmtree(leftover, ignore_errors=True)
    for aside in folder.parent.glob(f".{folder.name}.*.replaced"):
        if not folder.exists() and (aside / folder.name).is_dir():
            os.rename(aside / folder.name, folder)
        shutil.rmtree(aside, ignore_errors=True)


def _fetch_archive(entry: ReferenceDataset, folder: Path, *, force: bool, progress: bool, replacing: bool) -> Path:
    from ..download import fetch
    from ..errors import DownloadError

    kept = f"; the cached {entry.spec} at {str(folder)!r} was kept as it was" if replacing else ""
    try:
        return fetch(entry.url, entry.archive_relpath, progress=progress, force=force, desc=entry.spec)
    except OfflineError as exc:
        raise OfflineError(
            f"{exc}. Or unpack the archive by hand so that {str(folder)!r} holds "
            f"{', '.join(s + '/' for s in entry.splits)}"
        ) from None
    except DownloadError as exc:
        if replacing:
            raise DownloadError(f"{exc}{kept}") from exc
        raise


def _fetch_and_extract(entry: ReferenceDataset, folder: Path, *, progress: bool, force: bool, verify: bool) -> Path:
    from ..download import OFFLINE_ENV, is_offline
    from .archive import extract_archive

    replacing = force and folder.exists()
    kept = f"; the cached {entry.spec} at {str(folder)!r} was kept as it was" if replacing else ""
    if force and is_offline():
        raise OfflineError(f"--force downloads {entry.spec} again from {entry.url}, but {OFFLINE_ENV} is set"
                           f"{kept}. Unset {OFFLINE_ENV} to fetch it again")
    archive = _fetch_archive(entry, folder, force=force, progress=progress, replacing=replacing)

    def validate(root: Path) -> None:
        check_layout(entry, root, origin=f"archive {entry.url}",
                     hint=f"; the archive (kept at {str(archive)!r}) is not the one expected: check VGZOO_MIRROR")
        if verify:
            try:
                _verify(entry, root, progress)
            except DataError as exc:
                raise DataError(
                    f"{exc}\nthe extracted files were discarded; the archive stays at {str(archive)!r}. To use the "
                    f"set anyway: vgzoo data fetch {entry.spec} --no-verify, then fix or remove those files"
                ) from None

    try:
        return extract_archive(archive, folder, locate=_locate(entry), validate=validate, progress=progress,
                               replace=force)
    except DataError as exc:
        if replacing:
            raise type(exc)(f"{exc}{kept}") from exc
        raise


def resolve_spec(spec: str, *, progress: bool = True) -> tuple[ReferenceDataset, Path]:
    """The entry and the local path of ``spec``, fetching the dataset first if needed.

    ``"cyclegan:horse2zebra"`` gives the dataset folder; ``"cyclegan:horse2zebra/testA"`` its ``testA`` sub-folder.

    Raises:
        DataNotFoundError: a sub-folder the dataset does not have, naming those it has.
    """
    entry = get_reference(spec)
    _, sub = _split_spec(spec)
    folder = fetch_dataset(entry, progress=progress)
    if not sub:
        return entry, folder
    path = folder.joinpath(*[p for p in sub.split("/") if p])
    if ".." in sub.split("/") or not path.exists():
        raise DataNotFoundError(f"{entry.spec} has no {sub!r} (it holds: {_found(folder)}); e.g. {entry.spec}/"
                                f"{entry.splits[-1]}")
    return entry, path


def dataset_args(spec: str, task: str, kwargs: dict[str, Any]) -> tuple[Path, dict[str, Any]]:
    """The folder and dataset keywords :func:`vgzoo.data.create_dataset` uses for a reference ``spec``.

    A set serves a task whose record names its folder layout (:attr:`vgzoo.tasks.Task.layout`: an aligned set the
    ``pairs`` tasks, an unaligned one the ``domains`` tasks), and every task that reads plain images (no layout) or
    ``task="single"``. The entry's default direction applies to the tasks of its layout, unless ``kwargs`` has a
    ``direction``.

    Raises:
        DataError: a dataset of the wrong kind for ``task`` (an unaligned set for pix2pix, ...).
    """
    from ..tasks import get_task

    entry = get_reference(spec)
    wanted = None if task == "single" else get_task(task).layout
    served = _KIND_LAYOUT[entry.kind]
    if wanted is not None and wanted != served:
        fits = f"{entry.task} models" if entry.task else "inference (vgzoo translate) or generation/restoration"
        raise DataError(f"{entry.spec} is an {entry.kind} dataset ({entry.layout}) for {fits}, not for a {task} "
                        f"model; {_PICK[wanted]}")
    entry, path = resolve_spec(spec)
    kwargs = dict(kwargs)
    if wanted is not None and wanted == served:
        kwargs.setdefault("direction", entry.direction)
    return path, kwargs


def resolve_input(path: str | os.PathLike) -> str | os.PathLike:
    """A reference spec (``cyclegan:horse2zebra/testA``) as its local folder, fetched if needed; else ``path``."""
    if is_reference_spec(path):
        return resolve_spec(str(path))[1]
    return path
