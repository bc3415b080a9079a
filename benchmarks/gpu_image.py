"""What the offline GPU image lacks for vgzoo, and wheels of it (used by benchmarks/gpu_wheels.sh).

    python benchmarks/gpu_image.py missing DIR                # the third-party distributions to carry, one a line
    python benchmarks/gpu_image.py repack DIST ... -d DIR     # wheels of installed distributions (no network)

The GPU machines hold the packages of ``IMAGE`` (and what they depend on) but no network. ``missing`` reads the
requirements of vgzoo's own wheels in DIR (vgzoo and the plugins, built from the tree: their metadata, whether or
not they are installed here), follows them transitively through this machine's installed metadata, and keeps what
the image does not bring: a dependency reachable from the image's packages is taken to be there; one vgzoo names
itself and the image's packages do not name directly is carried, whatever this machine happens to have, since the
image's versions may reach it by another path or not at all.

``repack`` turns installed distributions back into wheels, for a machine without network that has them installed
(the test suite's rehearsal): pip cannot build a wheel from an installed distribution, but an installed pure or
binary distribution is an unpacked wheel (its files plus ``.dist-info``), which ``wheel pack`` zips up again.
"""

from __future__ import annotations

import argparse
import importlib.metadata as md
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterable
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

#: What the GPU image holds (its own dependencies come with it).
IMAGE = ("torch", "timm", "torchvision", "onnx", "onnxruntime", "torchmetrics", "scikit-learn", "matplotlib",
         "pytest")
#: vgzoo's own packages: built from this tree (gpu_wheels.sh), never downloaded.
OURS_PREFIX = "vgzoo"


def requirements(name: str | md.Distribution) -> list[str]:
    """The names a distribution (installed, or a wheel's) requires (markers evaluated here, extras left out)."""
    dist = name if isinstance(name, md.Distribution) else md.distribution(name)
    out = []
    for line in dist.requires or []:
        req = Requirement(line)
        if req.marker is None or req.marker.evaluate({"extra": ""}):
            out.append(canonicalize_name(req.name))
    return out


def our_wheels(folder: Path) -> dict[str, md.Distribution]:
    """vgzoo's own wheels in ``folder`` (vgzoo and plugins) by name, read from the wheels' metadata."""
    out = {}
    for wheel in sorted(Path(folder).glob("*.whl")):
        dist = md.PathDistribution(zipfile.Path(wheel, _dist_info(wheel)))
        name = canonicalize_name(dist.metadata["Name"])
        if name.startswith(OURS_PREFIX):
            out[name] = dist
    return out


def _dist_info(wheel: Path) -> str:
    with zipfile.ZipFile(wheel) as z:
        return next(n.split("/")[0] + "/" for n in z.namelist() if n.split("/")[0].endswith(".dist-info"))


def closure(names: Iterable[str]) -> set[str]:
    """``names`` and everything they require, transitively, as far as this machine's metadata tells."""
    seen: set[str] = set()
    todo = [canonicalize_name(n) for n in names]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            todo += requirements(name)
        except md.PackageNotFoundError:  # not installed here: carried, its own needs found by pip download
            pass
    return seen


def missing(folder: Path) -> list[str]:
    """The third-party distributions vgzoo's wheels in ``folder`` need that the image does not bring, sorted."""
    ours = our_wheels(folder)
    image = closure(IMAGE)
    sure = {canonicalize_name(n) for n in IMAGE} | {r for n in IMAGE for r in _requirements_or_none(n)}
    direct = {r for dist in ours.values() for r in requirements(dist)} - set(ours)
    carried = (closure(direct) - image) | (direct - sure)
    carried |= closure(carried) - image
    return sorted(n for n in carried if not n.startswith(OURS_PREFIX))


def _requirements_or_none(name: str) -> list[str]:
    try:
        return requirements(name)
    except md.PackageNotFoundError:
        return []


def repack(names: Iterable[str], dest: Path) -> list[Path]:
    """Wheels of installed distributions ``names`` in ``dest`` (the files their RECORD lists, ``wheel pack``ed)."""
    dest.mkdir(parents=True, exist_ok=True)
    made = []
    for name in names:
        dist = md.distribution(name)
        root = Path(dist.locate_file(""))
        with tempfile.TemporaryDirectory() as tmp:
            for f in dist.files or []:
                parts = Path(f).parts
                if not parts or parts[0] == ".." or "__pycache__" in parts:  # scripts outside site-packages, caches
                    continue
                if parts[0].endswith(".dist-info") and parts[-1] in ("RECORD", "INSTALLER", "REQUESTED",
                                                                      "direct_url.json"):
                    continue  # written by the installer, not part of the wheel (wheel pack writes RECORD)
                target = Path(tmp, f)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(root / f, target)
            before = set(dest.glob("*.whl"))
            subprocess.run([sys.executable, "-m", "wheel", "pack", tmp, "-d", str(dest)], check=True,
                           stdout=subprocess.DEVNULL)
            made += sorted(set(dest.glob("*.whl")) - before)
    return made


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("missing", help="the third-party distributions to carry, one a line")
    m.add_argument("folder", type=Path, help="the folder with vgzoo's own wheels (vgzoo and the plugins)")
    r = sub.add_parser("repack", help="wheels of installed distributions")
    r.add_argument("names", nargs="+")
    r.add_argument("-d", "--dest", type=Path, required=True)
    args = p.parse_args()
    if args.cmd == "missing":
        print("\n".join(missing(args.folder)))
    else:
        for path in repack(args.names, args.dest):
            print(path.name)


if __name__ == "__main__":
    main()
