"""vgzoo generate (seeds, truncation, classes by name) and vgzoo export --check on a small BigGAN."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image
from vgzoo_biggan.model import TINY

import vgzoo
from vgzoo.cli import cli


@pytest.fixture(scope="module")
def imagenet_tiny(tmp_path_factory):
    """A small BigGAN over ImageNet's 1000 classes (random weights), saved as a local-dir folder."""
    folder = tmp_path_factory.mktemp("biggan") / "model"
    model = vgzoo.create("biggan", **{**TINY, "num_classes": 1000, "class_names": "imagenet-1k",
                                      "default_truncation": 0.5})
    vgzoo.save_pretrained(model, folder)
    return folder


def test_generate_by_seed_truncation_and_class_name(imagenet_tiny, tmp_path):
    out = tmp_path / "out"
    args = ["generate", f"local-dir:{imagenet_tiny}", "--class", "tiger cat", "--class", "207", "--truncation", "0.4",
            "--seeds", "0-1", "--out", str(out), "--precision", "fp32"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in out.glob("*.png"))
    assert names == [f"class{c:04d}-seed{s:04d}.png" for c in (207, 282) for s in (0, 1)]
    assert Image.open(out / names[0]).size == (16, 16)
    # the same seed and class give the same image as the model's own call at that truncation
    model = vgzoo.create(f"local-dir:{imagenet_tiny}").eval()
    z = model.latents_for_seeds([1], 0.4)
    image = model.generate_images(z, torch.tensor([282]), 0.4)
    expected = (image[0].detach() * 127.5 + 128).clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()
    got = np.array(Image.open(out / "class0282-seed0001.png").convert("RGB"))
    assert np.abs(got.astype(int) - expected.astype(int)).max() <= 1


@pytest.mark.parametrize("suffix", ["onnx", "pt2"])
def test_export_checks_against_pytorch(imagenet_tiny, tmp_path, suffix):
    target = tmp_path / f"biggan.{suffix}"
    result = CliRunner().invoke(cli, ["export", f"local-dir:{imagenet_tiny}", "--out", str(target), "--check"])
    assert result.exit_code == 0, result.output
    assert target.is_file() and "max abs difference" in result.output
