"""Tests of vgzoo.data: shapes, ranges, pairing, determinism and clear errors on bad data."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from vgzoo.errors import DataError, VgzooError

# --------------------------------------------------------------------------- digits


def test_digits_items_shapes_ranges_and_labels():
    from vgzoo.data import DigitsDataset

    ds = DigitsDataset()
    assert len(ds) == 1797
    item = ds[5]
    assert set(item) == {"image", "label"}
    assert item["image"].shape == (1, 16, 16) and item["image"].dtype == torch.float32
    assert item["label"].dtype == torch.int64 and item["label"].ndim == 0
    assert float(ds.images.min()) >= 0.0 and float(ds.images.max()) <= 1.0
    assert float(ds.images.max()) > 0.9  # the 0..16 scale is used, not left at 0..1/16
    assert sorted(torch.unique(ds.labels).tolist()) == list(range(10))
    # the 8x8 originals are reproduced exactly at size 8
    from sklearn.datasets import load_digits

    raw = load_digits()
    small = DigitsDataset(size=8)
    np.testing.assert_allclose(small.images[:, 0].numpy(), raw.images / 16.0, atol=1e-6)
    np.testing.assert_array_equal(small.labels.numpy(), raw.target)
    # upsampling keeps the mean grey level close to the original
    assert abs(float(ds.images.mean()) - float(small.images.mean())) < 0.02


def test_digits_are_read_without_importing_sklearn_and_the_fallback_agrees(tmp_path, monkeypatch):
    import subprocess
    import sys
    import types

    from vgzoo.data import digits

    code = ("import sys; from vgzoo.data.digits import load_digits_arrays; load_digits_arrays(); "
            "assert 'sklearn' not in sys.modules, 'imported sklearn'")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).returncode == 0
    # a release that keeps the file elsewhere: load_digits reads it, to the same table
    direct = digits._digits_table()
    monkeypatch.setattr(digits.importlib.util, "find_spec",
                        lambda name: types.SimpleNamespace(submodule_search_locations=[str(tmp_path)]))
    fallback = digits._digits_table()
    assert direct.shape == (1797, 65)
    np.testing.assert_array_equal(fallback, direct)


def test_digits_split_is_stratified_disjoint_and_deterministic():
    from vgzoo.data import DigitsDataset

    train, val = DigitsDataset("train"), DigitsDataset("val")
    assert len(train) + len(val) == 1797
    assert not set(train.indices.tolist()) & set(val.indices.tolist())
    assert abs(len(val) / 1797 - 0.2) < 0.01
    counts = np.bincount(val.labels.numpy(), minlength=10)
    assert counts.min() >= 34 and counts.max() <= 38  # every class about 20 %
    again = DigitsDataset("val")
    assert torch.equal(again.indices, val.indices) and torch.equal(again.images, val.images)
    other = DigitsDataset("val", seed=1)
    assert not torch.equal(other.indices, val.indices)
    assert len(DigitsDataset("val", val_fraction=0.5)) > len(val)


def test_digits_bad_arguments():
    from vgzoo.data import DigitsDataset

    with pytest.raises(DataError, match="split"):
        DigitsDataset("test")
    with pytest.raises(ValueError, match="size"):
        DigitsDataset(size=0)
    with pytest.raises(VgzooError, match="val_fraction"):
        DigitsDataset("train", val_fraction=1.5)


def test_import_is_light_and_missing_sklearn_names_the_extra():
    code = (
        "import sys\n"
        "import vgzoo.data\n"
        "assert 'sklearn' not in sys.modules, 'sklearn imported eagerly'\n"
        "sys.modules['sklearn'] = None\n"
        "try:\n"
        "    vgzoo.data.DigitsDataset()\n"
        "except ImportError as e:\n"
        "    assert 'vgzoo[data]' in str(e), str(e)\n"
        "    print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


# --------------------------------------------------------------------------- helpers

from PIL import Image  # noqa: E402

from vgzoo.data import (  # noqa: E402
    AlignedDataset,
    ImageFolderDataset,
    ImagesOnly,
    LabelledImageFolder,
    RandomCropFlip,
    SingleDataset,
    UnalignedDataset,
    create_dataset,
)
from vgzoo.errors import DataNotFoundError  # noqa: E402


def _rand_rgb(h: int, w: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(h, w, 3), dtype=np.uint8)


def _save(path, arr: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)


def _make_aligned(folder, n: int = 3, h: int = 20, w: int = 20) -> list[tuple[np.ndarray, np.ndarray]]:
    pairs = []
    for i in range(n):
        a, b = _rand_rgb(h, w, 2 * i), _rand_rgb(h, w, 2 * i + 1)
        _save(folder / f"{i:03d}.png", np.concatenate([a, b], axis=1))
        pairs.append((a, b))
    return pairs


def _as_chw(arr: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(arr).permute(2, 0, 1).float() / 255.0


# --------------------------------------------------------------------------- aligned


def test_aligned_pairs_direction_and_native_size(tmp_path):
    pairs = _make_aligned(tmp_path / "facades" / "train")
    ds = AlignedDataset(tmp_path / "facades", load_size=None, crop_size=None)
    assert len(ds) == 3
    item = ds[1]
    assert set(item) == {"A", "B", "path"} and item["path"].endswith("001.png")
    assert torch.allclose(item["A"], _as_chw(pairs[1][0])) and torch.allclose(item["B"], _as_chw(pairs[1][1]))
    swapped = AlignedDataset(
        tmp_path / "facades" / "train", phase=None, direction="BtoA", load_size=None, crop_size=None
    )
    assert torch.equal(swapped[1]["A"], item["B"]) and torch.equal(swapped[1]["B"], item["A"])
    # a folder given directly (no train/ inside) is read as the split itself
    direct = AlignedDataset(tmp_path / "facades" / "train", load_size=None, crop_size=None)
    assert direct.paths == ds.paths


def test_aligned_resizes_deterministically_and_grayscale(tmp_path):
    _make_aligned(tmp_path / "train", n=2, h=20, w=30)
    ds = AlignedDataset(tmp_path, load_size=24, crop_size=16, in_chans=1)
    item = ds[0]
    assert item["A"].shape == (1, 24, 24) and item["B"].shape == (3, 24, 24)
    assert ds.in_chans == 1 and ds.out_chans == 3
    for t in (item["A"], item["B"]):
        assert t.dtype == torch.float32 and 0.0 <= float(t.min()) and float(t.max()) <= 1.0
        assert t.is_contiguous()
    assert torch.equal(ds[0]["A"], item["A"])  # deterministic
    rect = AlignedDataset(tmp_path, load_size=(12, 18), crop_size=None)
    assert rect[0]["A"].shape == (3, 12, 18)
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=2)))
    assert batch["A"].shape == (2, 1, 24, 24) and len(batch["path"]) == 2


def test_paired_crop_flip_is_identical_for_a_and_b(tmp_path):
    img = _rand_rgb(20, 20, 7)
    _save(tmp_path / "train" / "same.png", np.concatenate([img, img], axis=1))
    gen = torch.Generator().manual_seed(0)
    ds = AlignedDataset(tmp_path, load_size=None, crop_size=12, paired_transform=RandomCropFlip(12, generator=gen))
    seen = set()
    for _ in range(12):
        item = ds[0]
        assert item["A"].shape == (3, 12, 12)
        assert torch.equal(item["A"], item["B"])
        seen.add(item["A"].sum().item())
    assert len(seen) > 2  # the crop (and flip) really varies
    # the default leaves the random part to vgzoo.augment: full deterministic image
    assert AlignedDataset(tmp_path, load_size=None, crop_size=12)[0]["A"].shape == (3, 20, 20)


def test_random_crop_flip_flips_and_checks_sizes():
    x = torch.arange(12.0).reshape(1, 3, 4)
    flips = RandomCropFlip(crop_size=None, generator=torch.Generator().manual_seed(1))
    outs = [flips(x) for _ in range(16)]
    assert any(torch.equal(o, x.flip(-1)) for o in outs) and any(torch.equal(o, x) for o in outs)
    with pytest.raises(DataError, match="smaller than the crop"):
        RandomCropFlip(5)(x)
    with pytest.raises(DataError, match="different sizes"):
        RandomCropFlip(2)(x, torch.zeros(1, 2, 2))


def test_aligned_bad_data_errors_name_the_file(tmp_path):
    _save(tmp_path / "odd" / "wide.png", _rand_rgb(8, 21, 0))
    with pytest.raises(DataError, match=r"wide\.png.*odd width"):
        AlignedDataset(tmp_path / "odd", load_size=None, crop_size=None)[0]

    _save(tmp_path / "small" / "tiny.png", _rand_rgb(8, 16, 0))
    with pytest.raises(DataError, match=r"tiny\.png.*smaller than the crop"):
        AlignedDataset(tmp_path / "small", load_size=None, crop_size=16)[0]

    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "bad.png").write_bytes(b"not an image at all")
    with pytest.raises(DataError, match=r"cannot read image .*bad\.png"):
        AlignedDataset(tmp_path / "broken", load_size=None, crop_size=None)[0]

    _save(tmp_path / "trunc" / "cut.png", _rand_rgb(64, 128, 0))
    data = (tmp_path / "trunc" / "cut.png").read_bytes()
    (tmp_path / "trunc" / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(VgzooError, match=r"cut\.png"):
        AlignedDataset(tmp_path / "trunc", load_size=None, crop_size=None)[0]

    (tmp_path / "empty" / "train").mkdir(parents=True)
    (tmp_path / "empty" / "train" / "notes.txt").write_text("no images here")
    with pytest.raises(DataNotFoundError, match="holds no image files"):
        AlignedDataset(tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        AlignedDataset(tmp_path / "missing")
    with pytest.raises(DataNotFoundError, match="no 'test' sub-folder"):
        AlignedDataset(tmp_path / "empty", phase="test")
    with pytest.raises(DataError, match="larger than load_size"):
        AlignedDataset(tmp_path / "odd", load_size=128, crop_size=256)
    with pytest.raises(DataError, match="direction"):
        AlignedDataset(tmp_path / "odd", direction="AB")
    with pytest.raises(DataError, match="in_chans"):
        AlignedDataset(tmp_path / "odd", in_chans=4)


# --------------------------------------------------------------------------- unaligned


def _make_unaligned(root, n_a: int = 3, n_b: int = 5, phase: str = "train") -> None:
    for i in range(n_a):
        _save(root / f"{phase}A" / f"a{i}.png", _rand_rgb(10, 12, 100 + i))
    for i in range(n_b):
        _save(root / f"{phase}B" / f"b{i}.jpg", _rand_rgb(10, 12, 200 + i))


def test_unaligned_length_pairing_and_reproducible_draw(tmp_path):
    _make_unaligned(tmp_path)
    ds = UnalignedDataset(tmp_path, load_size=8, crop_size=8)
    assert len(ds) == 5
    item = ds[4]
    assert set(item) == {"A", "B", "A_path", "B_path"}
    assert item["A"].shape == (3, 8, 8) and item["B"].shape == (3, 8, 8)
    assert item["A_path"].endswith("a1.png")  # 4 mod 3
    draws0 = [ds.index_b(i) for i in range(len(ds))]
    assert draws0 == [UnalignedDataset(tmp_path, load_size=8, crop_size=8).index_b(i) for i in range(5)]
    assert all(0 <= j < 5 for j in draws0)
    assert ds[2]["B_path"].endswith(f"b{draws0[2]}.jpg")
    many = set()
    for epoch in range(6):
        ds.set_epoch(epoch)
        many.add(tuple(ds.index_b(i) for i in range(5)))
    assert len(many) > 1  # another epoch, other pairings
    ds.set_epoch(0)
    assert [ds.index_b(i) for i in range(5)] == draws0
    serial = UnalignedDataset(tmp_path, load_size=8, crop_size=8, serial_batches=True)
    assert [Path(serial[i]["B_path"]).name for i in range(5)] == [f"b{i}.jpg" for i in range(5)]


def test_unaligned_direction_channels_and_errors(tmp_path):
    _make_unaligned(tmp_path, phase="test")
    ds = UnalignedDataset(tmp_path, phase="test", direction="BtoA", load_size=None, crop_size=None, out_chans=1)
    item = ds[0]
    assert "testB" in item["A_path"] and "testA" in item["B_path"]
    assert item["A"].shape == (3, 10, 12) and item["B"].shape == (1, 10, 12)
    with pytest.raises(DataNotFoundError, match="trainA"):
        UnalignedDataset(tmp_path)
    with pytest.raises(DataError, match=r"a0\.png.*smaller than the crop"):
        UnalignedDataset(tmp_path, phase="test", load_size=None, crop_size=11, serial_batches=True)[0]


# --------------------------------------------------------------------------- single / image folders


def test_single_dataset_reads_a_folder_sorted_and_recursive(tmp_path):
    _save(tmp_path / "b.png", _rand_rgb(6, 8, 1))
    _save(tmp_path / "a.png", _rand_rgb(10, 4, 2))
    _save(tmp_path / "sub" / "c.JPG", _rand_rgb(5, 5, 3))
    _save(tmp_path / ".hidden" / "d.png", _rand_rgb(5, 5, 4))
    (tmp_path / "readme.txt").write_text("skip me")
    ds = SingleDataset(tmp_path)
    assert [p.name for p in ds.paths] == ["a.png", "b.png", "c.JPG"]
    assert set(ds[0]) == {"A", "path"} and ds[0]["A"].shape == (3, 10, 4) and ds.in_chans == 3
    assert SingleDataset(tmp_path, load_size=8, in_chans=1)[2]["A"].shape == (1, 8, 8)
    one = SingleDataset(tmp_path / "b.png")
    assert len(one) == 1 and one[0]["A"].shape == (3, 6, 8)
    with pytest.raises(DataNotFoundError, match="not a folder"):
        SingleDataset(tmp_path / "readme.txt")
    folder = ImageFolderDataset(tmp_path, load_size=8)
    assert set(folder[0]) == {"image", "path"}
    train, val = ImageFolderDataset(tmp_path, split="train"), ImageFolderDataset(tmp_path, split="val")
    assert sorted(train.paths + val.paths) == folder.paths and len(val.paths) == 1


def test_sixteen_bit_grayscale_keeps_its_range(tmp_path):
    arr = np.zeros((4, 4), dtype=np.uint16)
    arr[0, 0], arr[1, 1] = 65535, 32768
    Image.fromarray(arr).save(tmp_path / "depth.png")
    x = SingleDataset(tmp_path, in_chans=1)[0]["A"]
    assert x.shape == (1, 4, 4)
    assert abs(float(x[0, 0, 0]) - 1.0) < 1e-3 and abs(float(x[0, 1, 1]) - 0.5) < 1e-2 and float(x[0, 2, 2]) == 0.0


# --------------------------------------------------------------------------- labelled folders


def test_labelled_folder_classes_labels_and_split(tmp_path):
    for cls, n in (("dog", 5), ("cat", 5), ("bird", 10)):
        for i in range(n):
            val = {"bird": 10, "cat": 120, "dog": 240}[cls]
            _save(tmp_path / cls / f"{i}.png", np.full((6, 6, 3), val, dtype=np.uint8))
    ds = LabelledImageFolder(tmp_path, load_size=4)
    assert ds.classes == ["bird", "cat", "dog"] and ds.num_classes == 3 and len(ds) == 20
    for i in range(len(ds)):
        item = ds[i]
        assert item["image"].shape == (3, 4, 4) and item["label"].dtype == torch.int64
        expected = {0: 10, 1: 120, 2: 240}[int(item["label"])] / 255.0
        assert torch.allclose(item["image"], torch.full_like(item["image"], expected), atol=1e-6)
    train = LabelledImageFolder(tmp_path, split="train", val_fraction=0.2)
    val = LabelledImageFolder(tmp_path, split="val", val_fraction=0.2)
    assert len(train) + len(val) == 20 and not {p for p, _ in train.samples} & {p for p, _ in val.samples}
    assert sorted(val.targets) == [0, 0, 1, 2]  # stratified: 2 of 10 birds, 1 of 5 of the others


def test_labelled_folder_errors(tmp_path):
    _save(tmp_path / "flat" / "x.png", _rand_rgb(4, 4, 0))
    with pytest.raises(DataNotFoundError, match="no class sub-folders.*holds images directly"):
        LabelledImageFolder(tmp_path / "flat")
    _save(tmp_path / "classes" / "one" / "x.png", _rand_rgb(4, 4, 0))
    (tmp_path / "classes" / "two").mkdir()
    with pytest.raises(DataNotFoundError, match=r"class folder 'two'.*holds no image files"):
        LabelledImageFolder(tmp_path / "classes")
    with pytest.raises(DataError, match="split"):
        LabelledImageFolder(tmp_path / "classes", split="test")


# --------------------------------------------------------------------------- create_dataset


def test_create_dataset_picks_the_dataset_by_task(tmp_path):
    _make_aligned(tmp_path / "pairs" / "val", n=1)
    _make_unaligned(tmp_path / "domains")
    _save(tmp_path / "classes" / "c0" / "x.png", _rand_rgb(4, 4, 0))

    aligned = create_dataset(tmp_path / "pairs", "paired_translation", split="val", load_size=16, crop_size=16)
    assert isinstance(aligned, AlignedDataset) and aligned[0]["A"].shape == (3, 16, 16)
    assert isinstance(create_dataset(str(tmp_path / "domains"), "unaligned_translation"), UnalignedDataset)
    assert isinstance(create_dataset(tmp_path / "domains", "unpaired_translation"), UnalignedDataset)
    for task in ("classification", "conditional_generation"):
        assert isinstance(create_dataset(tmp_path / "classes", task), LabelledImageFolder)
    for task in ("generation", "restoration"):
        assert isinstance(create_dataset(tmp_path / "classes", task), ImageFolderDataset)
    assert isinstance(create_dataset(tmp_path / "classes" / "c0", "single"), SingleDataset)

    digits = create_dataset("builtin:digits", "conditional_generation", split="val")
    assert digits.split == "val" and set(digits[0]) == {"image", "label"}
    images = create_dataset("builtin:digits", "generation")
    assert isinstance(images, ImagesOnly) and set(images[0]) == {"image"} and len(images) == 1797


def test_create_dataset_errors(tmp_path):
    with pytest.raises(DataError, match="unknown task"):
        create_dataset("builtin:digits", "segmentation")
    with pytest.raises(DataError, match="unknown built-in"):
        create_dataset("builtin:mnist", "classification")
    with pytest.raises(DataError, match="no data for task 'paired_translation'"):
        create_dataset("builtin:digits", "paired_translation")
    with pytest.raises(DataError, match=r"does not accept 'val_fractoin'.*did you mean 'val_fraction'"):
        create_dataset("builtin:digits", "classification", val_fractoin=0.1)
    with pytest.raises(DataNotFoundError, match="does not exist"):
        create_dataset(tmp_path / "nowhere", "paired_translation")


def test_verify_reports_every_bad_file_at_once(tmp_path):
    _make_aligned(tmp_path / "train", n=1)
    _save(tmp_path / "train" / "odd.png", _rand_rgb(20, 41, 0))
    _save(tmp_path / "train" / "narrow.png", _rand_rgb(20, 16, 0))
    (tmp_path / "train" / "junk.jpg").write_bytes(b"\x00" * 64)
    _save(tmp_path / "train" / "trunc.png", _rand_rgb(64, 128, 1))
    data = (tmp_path / "train" / "trunc.png").read_bytes()
    (tmp_path / "train" / "trunc.png").write_bytes(data[: len(data) // 2])
    ds = AlignedDataset(tmp_path, load_size=None, crop_size=12)
    with pytest.raises(DataError) as info:
        ds.verify()
    msg = str(info.value)
    # the header check runs Pillow's verify(), whose PNG chunk CRCs find the truncated file without decoding it
    assert "4 of 5 files" in msg and "odd.png" in msg and "junk.jpg" in msg and "narrow.png" in msg
    assert "trunc.png" in msg and "000.png" not in msg
    with pytest.raises(DataError, match=r"4 of 5 files(.|\n)*trunc\.png"):
        ds.verify(decode=True)
    # with a load_size the native size no longer matters, the odd width and unreadable (also truncated) files do
    with pytest.raises(DataError, match="3 of 5 files"):
        AlignedDataset(tmp_path, load_size=16, crop_size=12).verify()


def test_errors_keep_their_type_through_dataloader_workers(tmp_path):
    (tmp_path / "bad.png").write_bytes(b"garbage")
    loader = torch.utils.data.DataLoader(SingleDataset(tmp_path), batch_size=1, num_workers=1)
    with pytest.raises(DataError, match=r"bad\.png"):
        next(iter(loader))


def test_unaligned_validation_uses_test_split_when_there_is_no_val(tmp_path, caplog):
    """The reference layout (trainA/trainB/testA/testB) validates on testA/testB, and says so."""
    import logging

    from vgzoo.data import create_dataset

    for phase in ("train", "test"):
        _make_unaligned(tmp_path, phase=phase)
    with caplog.at_level(logging.WARNING, logger="vgzoo.data"):
        val = create_dataset(tmp_path, "unpaired_translation", split="val", load_size=8, crop_size=8)
    assert val.phase == "test" and val.paths_A[0].parent.name == "testA"
    assert "validating on" in caplog.text and "testA" in caplog.text and "no valA/" in caplog.text
    _make_unaligned(tmp_path, phase="val")
    assert create_dataset(tmp_path, "unpaired_translation", split="val", load_size=8, crop_size=8).phase == "val"
    with pytest.raises(DataNotFoundError, match="valA"):  # a layout with neither still says what is missing
        create_dataset(tmp_path / "trainA", "unpaired_translation", split="val", load_size=8, crop_size=8)
