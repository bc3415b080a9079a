"""Tests of vgzoo.data: shapes, ranges, pairing, determinism and clear errors on bad data."""

from __future__ import annotations

import subprocess
import sys

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
