"""Seeded generation as the reference writes it, and the generator exported with psi built in."""

from __future__ import annotations

import numpy as np
import onnxruntime
import pytest
import torch
from _sg2_fixtures import REF, needs_ref
from click.testing import CliRunner
from PIL import Image
from safetensors.torch import load_file
from vgzoo_stylegan2.snapshot import convert_snapshot

import vgzoo
from vgzoo.cli import cli


def converted(name: str, **kwargs):
    """A fixture snapshot converted into the registered model it is (built by vgzoo.create, so it saves)."""
    config, state_dict = convert_snapshot(REF / f"{name}.pkl")
    model = vgzoo.create("stylegan2_cifar" if config["c_dim"] else "stylegan2", **config, **kwargs)
    model.load_state_dict(state_dict)
    return model.eval()


def reference_png(img: torch.Tensor) -> np.ndarray:
    """The reference's generate.py conversion of one image (C, H, W) in [-1, 1] to HWC uint8."""
    return (img.permute(1, 2, 0) * 127.5 + 128).clamp(0, 255).to(torch.uint8).numpy()


@needs_ref
def test_generate_writes_the_reference_pngs_for_seeds(tmp_path):
    model = converted("tiny_uncond")
    vgzoo.save_pretrained(model, tmp_path / "tiny")
    result = CliRunner().invoke(cli, ["generate", str(tmp_path / "tiny"), "--seeds", "0-2,9", "--psi", "0.7",
                                      "--out", str(tmp_path / "cats"), "--precision", "fp32"])  # the reference's fp32
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "cats").iterdir()) == [f"seed{s:04d}.png" for s in (0, 1, 2, 9)]
    for seed in (0, 1, 2, 9):  # one seed at a time, as the reference's generate.py runs them
        z = torch.from_numpy(np.random.RandomState(seed).randn(1, model.z_dim))
        with torch.no_grad():
            img = model.G_ema(z, None, truncation_psi=0.7, noise_mode="const")[0]
        written = np.asarray(Image.open(tmp_path / "cats" / f"seed{seed:04d}.png").convert("RGB"))
        assert np.abs(written.astype(int) - reference_png(img).astype(int)).max() <= 1, seed  # batching rounding

    # and the fixture's own images (the reference's, in float16 blocks) through that conversion: the same PNG
    # but for float16 rounding
    io = load_file(REF / "tiny_uncond.io.safetensors")
    with torch.no_grad():
        ours = model.generate_images(io["z"], None, 0.5)
    for i in range(4):
        diff = np.abs(reference_png(ours[i]).astype(int) - reference_png(io["img_psi05_whole"][i]).astype(int))
        assert diff.max() <= 1 and (diff > 0).mean() < 0.25  # one level at most, on a few pixels


@needs_ref
def test_generate_conditional_by_class(tmp_path):
    model = converted("tiny_cond", class_names=[f"c{i}" for i in range(10)])
    vgzoo.save_pretrained(model, tmp_path / "cond")
    result = CliRunner().invoke(cli, ["generate", str(tmp_path / "cond"), "--seeds", "3", "--class", "c7",
                                      "--out", str(tmp_path / "out"), "--precision", "fp32"])
    assert result.exit_code == 0, result.output
    z = torch.from_numpy(np.random.RandomState(3).randn(1, model.z_dim))
    c = torch.nn.functional.one_hot(torch.tensor([7]), 10).float()
    with torch.no_grad():
        img = model.G_ema(z, c, truncation_psi=1, noise_mode="const")[0]
    written = np.asarray(Image.open(tmp_path / "out" / "seed0003.png").convert("RGB"))
    assert np.abs(written.astype(int) - reference_png(img).astype(int)).max() <= 1


@pytest.mark.parametrize("suffix", ["onnx", "pt2"])
def test_export_has_psi_built_in_and_checks(tmp_path, suffix):
    torch.manual_seed(0)
    model = vgzoo.create("stylegan2_tiny", truncation_psi=0.7).eval()
    with torch.no_grad():
        model.G_ema.mapping.w_avg.normal_()  # so that psi visibly matters
    vgzoo.save_pretrained(model, tmp_path / "model")
    out = tmp_path / f"g.{suffix}"
    result = CliRunner().invoke(cli, ["export", str(tmp_path / "model"), "--out", str(out), "--check"])
    assert result.exit_code == 0, result.output
    assert "check:" in result.output
    z = torch.from_numpy(np.random.RandomState(5).randn(3, 16)).float()
    with torch.no_grad():
        expected = model.G_ema(z, None, truncation_psi=0.7, noise_mode="const")
        untruncated = model.G_ema(z, None, truncation_psi=1, noise_mode="const")
    if suffix == "onnx":
        session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
        got = torch.from_numpy(session.run(None, {session.get_inputs()[0].name: z.numpy()})[0])
    else:
        got = torch.export.load(str(out)).module()(z)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)
    assert (got - untruncated).abs().max() > 1e-2


def test_export_conditional_takes_labels(tmp_path):
    kwargs = vgzoo.model_info("stylegan2_cifar").test_kwargs
    torch.manual_seed(0)
    model = vgzoo.create("stylegan2_cifar", **kwargs).eval()
    vgzoo.save_pretrained(model, tmp_path / "model")
    result = CliRunner().invoke(cli, ["export", str(tmp_path / "model"), "--out", str(tmp_path / "g.onnx"),
                                      "--check"])
    assert result.exit_code == 0, result.output
    session = onnxruntime.InferenceSession(str(tmp_path / "g.onnx"), providers=["CPUExecutionProvider"])
    z, labels = torch.randn(2, 16), torch.tensor([1, 8])
    got = session.run(None, {"z": z.numpy(), "labels": labels.numpy()})[0]
    with torch.no_grad():
        torch.testing.assert_close(torch.from_numpy(got), model(z, labels), rtol=1e-4, atol=1e-4)
