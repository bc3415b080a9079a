"""The reference datasets by name (pix2pix:facades, cyclegan:horse2zebra), served from a loopback server.

The archives are built here in the upstream layouts: a zip holding horse2zebra/trainA/... for CycleGAN, a tar.gz
holding facades/train/1.jpg (A|B side by side) for pix2pix. Everything goes through the real download, extraction
and training paths; only the host is replaced, through VGZOO_MIRROR.
"""

from __future__ import annotations

import io
import json
import os
import tarfile
import zipfile

import numpy as np
import pytest
from _http import http_server  # noqa: F401  (the fixture)
from click.testing import CliRunner
from PIL import Image

from vgzoo.cli import cli
from vgzoo.data import create_dataset, fetch_dataset
from vgzoo.data.archive import UnsafeArchiveError, extract_archive
from vgzoo.data.reference import REFERENCE_DATASETS, dataset_folder, get_reference
from vgzoo.errors import DataError, DataNotFoundError, OfflineError

H2Z = "/cyclegan/datasets/horse2zebra.zip"
FACADES = "/pix2pix/datasets/facades.tar.gz"
RED, BLUE = (220, 20, 20), (20, 20, 220)


def jpeg(size, color, seed=0) -> bytes:
    rng = np.random.default_rng(seed)
    arr = np.clip(np.array(color)[None, None] + rng.integers(-10, 10, (size[1], size[0], 3)), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG", quality=95)
    return buf.getvalue()


def aligned_jpeg(half: int, seed: int) -> bytes:
    """A on the left half (red), B on the right half (blue), as the facades files are."""
    arr = np.zeros((half, 2 * half, 3), np.uint8)
    arr[:, :half], arr[:, half:] = RED, BLUE
    arr[0, 0] = seed
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG", quality=95)
    return buf.getvalue()


def h2z_zip(members: dict[str, bytes] | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("horse2zebra/", b"")
        for split, n in (("trainA", 3), ("trainB", 4), ("testA", 2), ("testB", 2)):
            zf.writestr(f"horse2zebra/{split}/", b"")
            for i in range(n):
                color = RED if split.endswith("A") else BLUE
                zf.writestr(f"horse2zebra/{split}/n0238146{i}_{i}.jpg", jpeg((36, 36), color, i))
        for name, data in (members or {}).items():
            zf.writestr(name, data)
    return buf.getvalue()


def tar_gz(files: dict[str, bytes], extra: list[tarfile.TarInfo] = ()) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        for info in extra:
            tf.addfile(info)
    return buf.getvalue()


def facades_tar(extra: list[tarfile.TarInfo] = ()) -> bytes:
    files = {f"facades/{split}/{i + 1}.jpg": aligned_jpeg(64, i) for split, n in (("train", 3), ("val", 2),
                                                                               ("test", 2)) for i in range(n)}
    return tar_gz(files, extra)


@pytest.fixture
def mirror(tmp_path, monkeypatch, http_server):  # noqa: F811
    """A loopback server with both archives as VGZOO_MIRROR, and an empty VGZOO_CACHE."""
    monkeypatch.setenv("VGZOO_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("VGZOO_MIRROR", http_server.url)
    monkeypatch.delenv("VGZOO_OFFLINE", raising=False)
    http_server.add(H2Z, h2z_zip())
    http_server.add(FACADES, facades_tar())
    return http_server


def everything(root):
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*"))


def run(args):
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    return result


# ------------------------------------------------------------------------------------------------ registry
def test_registry_lists_the_reference_sets_with_their_facts():
    names = set(REFERENCE_DATASETS)
    for n in ("facades", "maps", "edges2shoes", "edges2handbags", "night2day"):
        assert f"pix2pix:{n}" in names
    for n in ("apple2orange", "summer2winter_yosemite", "horse2zebra", "monet2photo", "cezanne2photo", "ukiyoe2photo",
              "vangogh2photo", "maps", "facades", "iphone2dslr_flower", "ae_photos", "mini", "mini_pix2pix",
              "mini_colorization"):
        assert f"cyclegan:{n}" in names
    facades = get_reference("pix2pix:facades")
    assert (facades.kind, facades.direction, facades.splits) == ("aligned", "BtoA", ("train", "val", "test"))
    assert facades.url == "http://efrosgans.eecs.berkeley.edu/pix2pix/datasets/facades.tar.gz"
    assert get_reference("cyclegan:horse2zebra").url == "http://efrosgans.eecs.berkeley.edu/cyclegan/datasets/horse2zebra.zip"
    with pytest.raises(DataError, match="cityscapes-dataset.com"):
        get_reference("pix2pix:cityscapes")
    with pytest.raises(DataError, match="did you mean 'cyclegan:horse2zebra'"):
        get_reference("cyclegan:horse2zebr")


# ------------------------------------------------------------------------------- fetch, train, translate
def test_fetch_list_and_default_direction(mirror, tmp_path):
    out = run(["data", "fetch", "cyclegan:horse2zebra", "--no-progress"]).output
    folder = tmp_path / "cache" / "datasets" / "cyclegan" / "horse2zebra"
    assert str(folder) in out
    assert sorted(os.listdir(folder)) == ["testA", "testB", "trainA", "trainB"]
    assert len(os.listdir(folder / "trainB")) == 4
    assert (tmp_path / "cache" / "datasets" / "cyclegan" / "horse2zebra.zip.sha256").is_file()
    rows = {r["name"]: r for r in json.loads(run(["data", "list", "--json"]).stdout)}
    assert rows["cyclegan:horse2zebra"]["cached"] == "yes"
    assert rows["pix2pix:facades"]["cached"] == "no"
    assert rows["pix2pix:cityscapes"]["cached"] == "restricted"
    assert "horse2zebra" in run(["data", "list"]).output

    # facades is fetched on first use by create_dataset, BtoA by default: A is the right (blue) half
    ds = create_dataset("pix2pix:facades", "paired_translation", load_size=64, crop_size=64)
    assert ds.direction == "BtoA" and len(ds) == 3
    a = ds[0]["A"]
    assert a[2].mean() > 0.7 and a[0].mean() < 0.3
    ab = create_dataset("pix2pix:facades", "paired_translation", split="val", direction="AtoB", load_size=64,
                        crop_size=64)
    assert len(ab) == 2 and ab[0]["A"][0].mean() > 0.7
    assert mirror.requests == [H2Z, FACADES]  # each archive once
    with pytest.raises(DataError, match="aligned dataset"):
        create_dataset("pix2pix:facades", "unpaired_translation")


def test_a_plugin_task_gets_the_reference_sets_of_its_folder_layout(mirror, plugin_task):
    plugin_task("pairs_fake", "paired_translation")  # reuses AlignedDataset, so the pix2pix sets serve it
    plugin_task("domains_fake", "unpaired_translation")
    ds = create_dataset("pix2pix:facades", "pairs_fake", load_size=64, crop_size=64)
    assert ds.direction == "BtoA" and len(ds) == 3  # the set's own direction, as for paired_translation
    with pytest.raises(DataError, match="aligned dataset .* not for a domains_fake model; pick a cyclegan: dataset"):
        create_dataset("pix2pix:facades", "domains_fake")
    with pytest.raises(DataError, match="unaligned dataset .* not for a pairs_fake model; pick a pix2pix: dataset"):
        create_dataset("cyclegan:horse2zebra", "pairs_fake")
    with pytest.raises(DataError, match="pass a labelled folder"):
        create_dataset("pix2pix:facades", "classification")
    assert mirror.requests == [FACADES]  # a refused set is never fetched


def test_train_two_steps_on_each_and_translate_a_split(mirror, tmp_path, monkeypatch):
    p2p = tmp_path / "p2p"
    run(["train", "pix2pix_unet128", "--data", "pix2pix:facades", "--out", str(p2p), "--steps", "2",
         "--batch-size", "2", "--no-progress", "-k", "ngf=2", "-k", "ndf=2", "-o", "direction=AtoB",
         "-o", 'data={"load_size": 143, "crop_size": 128}'])
    config = json.loads((p2p / "config.json").read_text())
    assert config["data"] == "pix2pix:facades"
    assert config["options"]["data"] == {"load_size": 143, "crop_size": 128, "direction": "AtoB"}
    assert (p2p / "checkpoints" / "step_2" / "model.safetensors").is_file()

    h2z = tmp_path / "h2z"
    run(["train", "cyclegan_resnet", "--data", "cyclegan:horse2zebra", "--out", str(h2z), "--steps", "2",
         "--batch-size", "1", "--no-progress", "-k", "ngf=4", "-k", "ndf=4", "-k", "n_blocks=2", "-k", "img_size=32",
         "-o", 'data={"load_size": 36, "crop_size": 32}'])
    assert (h2z / "checkpoints" / "step_2" / "model.safetensors").is_file()

    # a split of a fetched set is an input path; with the network off the cache serves it
    monkeypatch.setenv("VGZOO_OFFLINE", "1")
    out = tmp_path / "translated"
    result = run(["translate", str(h2z / "final"), "cyclegan:horse2zebra/testA", str(out)])
    assert "wrote 2 image(s)" in result.output
    assert sorted(os.listdir(out)) == ["n02381460_0.png", "n02381461_1.png"]
    bad = CliRunner().invoke(cli, ["translate", str(h2z / "final"), "cyclegan:horse2zebra/valA", str(out)])
    assert bad.exit_code == 1 and "has no 'valA'" in bad.output
    assert mirror.requests.count(H2Z) == 1 and mirror.requests.count(FACADES) == 1


def test_offline_trains_from_the_cache_and_names_url_and_folder_when_missing(mirror, tmp_path, monkeypatch):
    fetch_dataset("pix2pix:facades", progress=False)
    mirror.stop()
    monkeypatch.setenv("VGZOO_OFFLINE", "1")
    ds = create_dataset("pix2pix:facades", "paired_translation", load_size=64, crop_size=64)
    assert len(ds) == 3
    with pytest.raises(OfflineError) as info:
        create_dataset("cyclegan:horse2zebra", "unpaired_translation")
    message = str(info.value)
    assert "http://efrosgans.eecs.berkeley.edu/cyclegan/datasets/horse2zebra.zip" in message
    assert str(tmp_path / "cache" / "datasets" / "cyclegan" / "horse2zebra") in message
    assert str(tmp_path / "cache" / "datasets" / "cyclegan" / "horse2zebra.zip") in message
    result = CliRunner().invoke(cli, ["train", "cyclegan_resnet", "--data", "cyclegan:horse2zebra", "--out",
                                      str(tmp_path / "run"), "--steps", "1"])
    assert result.exit_code == 1 and "VGZOO_OFFLINE" in result.output


def snapshot(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("how", ["server down", "VGZOO_OFFLINE=1"])
def test_force_keeps_the_cached_set_when_no_new_copy_arrives(mirror, tmp_path, monkeypatch, how):
    run(["data", "fetch", "cyclegan:horse2zebra", "--no-progress"])
    datasets = tmp_path / "cache" / "datasets" / "cyclegan"
    before = snapshot(datasets)
    assert "horse2zebra/trainA/n02381460_0.jpg" in before and "horse2zebra.zip" in before
    if how == "server down":
        mirror.stop()
    else:
        monkeypatch.setenv("VGZOO_OFFLINE", "1")
    result = CliRunner().invoke(cli, ["data", "fetch", "cyclegan:horse2zebra", "--force", "--no-progress"])
    assert result.exit_code == 1, result.output
    assert snapshot(datasets) == before
    assert "was kept as it was" in result.output
    assert ("cannot connect" if how == "server down" else "VGZOO_OFFLINE is set") in result.output
    assert sorted(os.listdir(datasets)) == ["horse2zebra", "horse2zebra.zip", "horse2zebra.zip.sha256"]


def test_force_replaces_the_set_only_with_a_complete_new_one(mirror, tmp_path):
    fetch_dataset("cyclegan:horse2zebra", progress=False)
    datasets = tmp_path / "cache" / "datasets" / "cyclegan"
    folder = datasets / "horse2zebra"
    mirror.add(H2Z, h2z_zip({"horse2zebra/trainA/new.jpg": jpeg((36, 36), RED, 9)}))
    assert fetch_dataset("cyclegan:horse2zebra", progress=False, force=True) == folder
    assert (folder / "trainA" / "new.jpg").is_file() and len(os.listdir(folder / "trainA")) == 4
    assert sorted(os.listdir(datasets)) == ["horse2zebra", "horse2zebra.zip", "horse2zebra.zip.sha256"]
    before = snapshot(folder)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("horse2zebra/images/1.jpg", jpeg((36, 36), RED))
    mirror.add(H2Z, buf.getvalue())  # a new archive without the layout: the set it would replace stays
    with pytest.raises(DataNotFoundError, match="has no trainA/, trainB/") as info:
        fetch_dataset("cyclegan:horse2zebra", progress=False, force=True)
    assert snapshot(folder) == before
    assert "was kept as it was" in str(info.value)
    assert sorted(os.listdir(datasets)) == ["horse2zebra", "horse2zebra.zip", "horse2zebra.zip.sha256"]


def test_a_folder_unpacked_by_hand_is_used_and_a_wrong_one_is_named(tmp_path, monkeypatch):
    monkeypatch.setenv("VGZOO_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("VGZOO_OFFLINE", "1")
    folder = dataset_folder(get_reference("cyclegan:horse2zebra"))
    with zipfile.ZipFile(io.BytesIO(h2z_zip())) as zf:
        zf.extractall(folder.parent)
    assert len(create_dataset("cyclegan:horse2zebra", "unpaired_translation", load_size=36, crop_size=32)) == 4
    wrong = dataset_folder(get_reference("cyclegan:apple2orange"))
    (wrong / "images").mkdir(parents=True)
    with pytest.raises(DataNotFoundError, match=r"no trainA/, trainB/ \(found: images/\)"):
        fetch_dataset("cyclegan:apple2orange")


# ------------------------------------------------------------------------------------------ safe extraction
def _symlink(name, target):
    info = tarfile.TarInfo(name)
    info.type, info.linkname = tarfile.SYMTYPE, target
    return info


def _hardlink(name, target):
    info = tarfile.TarInfo(name)
    info.type, info.linkname = tarfile.LNKTYPE, target
    return info


def _device(name):
    info = tarfile.TarInfo(name)
    info.type, info.devmajor, info.devminor = tarfile.CHRTYPE, 1, 3
    return info


def _zip_symlink() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        info = zipfile.ZipInfo("horse2zebra/trainA/link.jpg")
        info.external_attr = (0o120777 << 16)
        zf.writestr(info, "../../../../outside.jpg")
    return buf.getvalue()


@pytest.mark.parametrize("path,archive,why", [
    (H2Z, lambda: h2z_zip({"horse2zebra/../../evil.txt": b"owned"}), "'..'"),
    (H2Z, lambda: h2z_zip({"/tmp/evil.txt": b"owned"}), "absolute path"),
    (H2Z, _zip_symlink, "symbolic link"),
    (FACADES, lambda: tar_gz({"facades/train/1.jpg": aligned_jpeg(8, 0), "facades/../../evil.txt": b"owned"}), "'..'"),
    (FACADES, lambda: facades_tar([_symlink("facades/train/2.jpg", "../../../../etc/passwd")]), "symbolic link"),
    (FACADES, lambda: facades_tar([_symlink("facades/train/3.jpg", "/etc/passwd")]), "symbolic link"),
    (FACADES, lambda: facades_tar([_hardlink("facades/train/4.jpg", "../outside.txt")]), "hard link"),
    (FACADES, lambda: facades_tar([_device("facades/train/null")]), "device file"),
])
def test_unsafe_archives_are_refused_with_nothing_written(mirror, tmp_path, path, archive, why):
    mirror.add(path, archive())
    spec = "cyclegan:horse2zebra" if path == H2Z else "pix2pix:facades"
    before = everything(tmp_path)
    with pytest.raises(UnsafeArchiveError, match=why):
        fetch_dataset(spec, progress=False)
    after = [p for p in everything(tmp_path) if p not in before and not p.startswith("cache/.locks")]  # empty locks
    # only the downloaded archive and its hash arrived: no dataset folder, no temporary folder, nothing outside
    assert all(p in ("cache", "cache/datasets") or p.startswith("cache/datasets/") for p in after), after
    assert sorted(p.rsplit("/", 1)[-1] for p in after if "." in p.rsplit("/", 1)[-1]) == sorted(
        [path.rsplit("/", 1)[-1], path.rsplit("/", 1)[-1] + ".sha256"])
    assert not any(p.endswith("evil.txt") for p in everything(tmp_path.parent))
    assert not any("extracting" in p for p in everything(tmp_path))
    assert not dataset_folder(get_reference(spec)).exists()


def test_even_an_internal_tar_link_is_refused(tmp_path):
    archive = tmp_path / "a.tar.gz"
    archive.write_bytes(tar_gz({"d/train/1.jpg": b"x"}, [_symlink("d/train/2.jpg", "1.jpg")]))
    with pytest.raises(UnsafeArchiveError, match="symbolic link"):
        extract_archive(archive, tmp_path / "d", locate=lambda tmp: tmp / "d")
    archive.write_bytes(tar_gz({"d/train/1.jpg": b"x"}, [_hardlink("d/train/2.jpg", "d/train/1.jpg")]))
    with pytest.raises(UnsafeArchiveError, match="hard link"):
        extract_archive(archive, tmp_path / "d", locate=lambda tmp: tmp / "d")
    assert sorted(os.listdir(tmp_path)) == ["a.tar.gz"]


def _path_max_chain(victim: str, depth: int) -> bytes:
    """A tar whose links each look harmless as text but whose chain resolves past PATH_MAX (CVE-2025-4517).

    Sixteen folders of 247-character names, each reached through a one-letter link, make a real path longer than
    PATH_MAX; ``realpath`` stops resolving there, so the link climbing out of it is judged inside the target, and a
    file written through it lands at ``victim`` (``depth``: how many folders the extraction folder is below ``/``).
    """
    comp, steps, path = "d" * 247, "abcdefghijklmnop", ""
    infos: list[tarfile.TarInfo] = []
    for step in steps:
        folder = tarfile.TarInfo(os.path.join(path, comp))
        folder.type = tarfile.DIRTYPE
        infos += [folder, _symlink(os.path.join(path, step), comp)]
        path = os.path.join(path, comp)
    deep = os.path.join(*steps, "l" * 254)
    infos += [_symlink(deep, "../" * len(steps)), _symlink("escape", deep + "/" + "../" * depth)]
    payload = tarfile.TarInfo("escape" + victim)
    payload.size = len(b"owned\n")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for info in infos:
            tf.addfile(info)
        tf.addfile(payload, io.BytesIO(b"owned\n"))
    return buf.getvalue()


def test_a_link_chain_longer_than_path_max_writes_nothing_outside(tmp_path):
    victim = tmp_path / "home" / "notes.txt"
    victim.parent.mkdir()
    victim.write_text("the user's notes\n")
    archive = tmp_path / "chain.tar.gz"
    target = tmp_path / "cache" / "d"
    extracting_depth = len((target.parent / ".d.x.extracting").parts) - 1
    archive.write_bytes(_path_max_chain(str(victim), extracting_depth))
    with pytest.raises(UnsafeArchiveError, match="symbolic link"):
        extract_archive(archive, target)
    assert victim.read_text() == "the user's notes\n"
    assert os.listdir(target.parent) == []


def _archive(kind: str, files: dict[str, bytes]) -> bytes:
    if kind == "tar.gz":
        return tar_gz(files)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buf.getvalue()


@pytest.mark.parametrize("kind", ["tar.gz", "zip"])
def test_a_compression_bomb_is_refused_before_anything_is_written(tmp_path, monkeypatch, kind):
    monkeypatch.delenv("VGZOO_EXTRACT_MAX_RATIO", raising=False)
    monkeypatch.delenv("VGZOO_EXTRACT_MAX_BYTES", raising=False)
    zeros = 16 << 20  # a thousand times its compressed size, like the 1 GiB-in-1 MB bomb, only smaller
    archive = tmp_path / f"bomb.{kind}"
    archive.write_bytes(_archive(kind, {"d/train/1.jpg": b"x", "d/train/zeros.jpg": bytes(zeros)}))
    assert archive.stat().st_size * 100 < zeros
    with pytest.raises(UnsafeArchiveError, match=r"declare .*VGZOO_EXTRACT_MAX_RATIO.*compression bomb") as info:
        extract_archive(archive, tmp_path / "cache" / "d", locate=lambda tmp: tmp / "d")
    assert "raise the cap" in str(info.value)
    assert os.listdir(tmp_path / "cache") == []
    # the documented override lets a trusted archive through
    monkeypatch.setenv("VGZOO_EXTRACT_MAX_RATIO", "0")
    target = extract_archive(archive, tmp_path / "cache" / "d", locate=lambda tmp: tmp / "d")
    assert (target / "train" / "zeros.jpg").stat().st_size == zeros


def test_bytes_are_counted_again_while_they_are_written(tmp_path, monkeypatch):
    """Members that unpack to more than their headers declare are stopped by the count kept while writing."""
    from vgzoo.data import archive as archive_module

    monkeypatch.setattr(archive_module._Budget, "declare", lambda self, name, size: None)  # headers that lie
    monkeypatch.setenv("VGZOO_EXTRACT_MAX_BYTES", "3e6")
    monkeypatch.setenv("VGZOO_EXTRACT_MAX_RATIO", "0")
    archive = tmp_path / "bomb.zip"
    archive.write_bytes(_archive("zip", {"d/1.jpg": bytes(2 << 20), "d/2.jpg": bytes(2 << 20)}))
    with pytest.raises(UnsafeArchiveError, match=r"members up to 'd/2.jpg' unpack \d+ bytes, over the cap"):
        extract_archive(archive, tmp_path / "cache" / "d", locate=lambda tmp: tmp / "d")
    assert os.listdir(tmp_path / "cache") == []


@pytest.mark.parametrize("kind", ["tar.gz", "zip"])
def test_the_total_size_cap_is_lowered_through_its_variable(tmp_path, monkeypatch, kind):
    monkeypatch.delenv("VGZOO_EXTRACT_MAX_RATIO", raising=False)
    noise = np.random.default_rng(0).integers(0, 256, 3 << 20, dtype=np.uint8).tobytes()  # does not compress
    archive = tmp_path / f"big.{kind}"
    archive.write_bytes(_archive(kind, {"d/train/a.jpg": noise[: 1 << 20], "d/train/b.jpg": noise[1 << 20:]}))
    monkeypatch.setenv("VGZOO_EXTRACT_MAX_BYTES", "2e6")
    with pytest.raises(UnsafeArchiveError, match=r"'d/train/b.jpg' declare 3145728 bytes, over the cap of 2000000 "
                                                 r"bytes \(VGZOO_EXTRACT_MAX_BYTES\)"):
        extract_archive(archive, tmp_path / "cache" / "d", locate=lambda tmp: tmp / "d")
    assert os.listdir(tmp_path / "cache") == []
    monkeypatch.setenv("VGZOO_EXTRACT_MAX_BYTES", "nine")
    with pytest.raises(DataError, match="VGZOO_EXTRACT_MAX_BYTES='nine': expected a number"):
        extract_archive(archive, tmp_path / "cache" / "d", locate=lambda tmp: tmp / "d")
    monkeypatch.setenv("VGZOO_EXTRACT_MAX_BYTES", "4e6")
    target = extract_archive(archive, tmp_path / "cache" / "d", locate=lambda tmp: tmp / "d")
    assert (target / "train" / "a.jpg").read_bytes() + (target / "train" / "b.jpg").read_bytes() == noise


@pytest.mark.parametrize("kind", ["tar.gz", "zip"])
def test_a_truncated_archive_leaves_no_extracted_half(tmp_path, monkeypatch, kind):
    monkeypatch.setenv("VGZOO_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("VGZOO_OFFLINE", "1")  # the archive was put in the cache by hand
    spec, data = ("pix2pix:facades", facades_tar()) if kind == "tar.gz" else ("cyclegan:horse2zebra", h2z_zip())
    entry = get_reference(spec)
    archive = tmp_path / "cache" / entry.archive_relpath
    archive.parent.mkdir(parents=True)
    archive.write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises(DataError, match="truncated or corrupt"):
        fetch_dataset(spec, progress=False)
    assert sorted(os.listdir(archive.parent)) == sorted([archive.name, archive.name + ".sha256"])


def test_an_archive_without_the_layout_names_what_it_holds(mirror, tmp_path):
    mirror.add(FACADES, tar_gz({"facades/images/1.jpg": aligned_jpeg(8, 0), "facades/README": b"hi"}))
    with pytest.raises(DataNotFoundError, match=r"has no train/ \(found: README, images/\)"):
        fetch_dataset("pix2pix:facades", progress=False)
    assert not dataset_folder(get_reference("pix2pix:facades")).exists()
    assert not any("extracting" in p for p in everything(tmp_path))


def test_unreadable_images_are_reported_at_fetch_time(mirror):
    mirror.add(H2Z, h2z_zip({"horse2zebra/trainA/broken.jpg": b"not a jpeg"}))
    with pytest.raises(DataError, match="broken.jpg") as info:
        fetch_dataset("cyclegan:horse2zebra", progress=False)
    assert "--no-verify" in str(info.value)
    assert fetch_dataset("cyclegan:horse2zebra", progress=False, verify=False).is_dir()
