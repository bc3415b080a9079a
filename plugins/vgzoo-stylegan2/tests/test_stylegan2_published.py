"""The published snapshots by tag through vgzoo's download layer, and ``vgzoo convert stylegan2-reference``.

A loopback mirror serves a full-size snapshot in the reference's pickle format (the ``cifar10`` configuration of
``published_shapes.json``, random values, written by ``_sg2_snapshot_writer``: 63.5 M parameters, the smallest
published configuration), which downloads, converts once, caches and reloads offline bitwise.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest
import torch
import yaml
from _http import http_server  # noqa: F401  (fixture)
from _sg2_fixtures import REF, needs_ref
from _sg2_snapshot_writer import network, persistence_module, write_snapshot
from click.testing import CliRunner
from vgzoo_stylegan2 import snapshot
from vgzoo_stylegan2.model import CIFAR10_CLASSES, StyleGAN2, StyleGAN2Conditional
from vgzoo_stylegan2.networks import Discriminator, Generator

import vgzoo
from vgzoo.cli import cli

CIFAR10 = "/stylegan2-ada-pytorch/pretrained/cifar10.pkl"


@needs_ref
@pytest.mark.slow
def test_cifar10_tag_downloads_converts_caches_and_reloads_offline(tmp_path, monkeypatch, http_server):  # noqa: F811
    published = json.loads((REF / "published_shapes.json").read_text())["cifar10"]
    data = write_snapshot(published, seed=1)
    http_server.add(CIFAR10, data)
    monkeypatch.setenv("VGZOO_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("VGZOO_MIRROR", http_server.url)
    monkeypatch.delenv("VGZOO_OFFLINE", raising=False)

    model = vgzoo.create("stylegan2.cifar10", pretrained=True)
    assert type(model) is StyleGAN2Conditional
    assert model.class_names == CIFAR10_CLASSES and model.config["D_kwargs"]["architecture"] == "orig"
    assert model.pretrained_cfg["license"] == "NVIDIA Source Code License-NC"
    (tmp_path / "written.pkl").write_bytes(data)
    written = snapshot.load_snapshot(tmp_path / "written.pkl")
    for net in ("G", "D", "G_ema"):  # every tensor is the file's, under the reference's key
        tensors = written[net].tensors()
        ours = {k.removeprefix(f"{net}."): v for k, v in model.state_dict().items() if k.startswith(f"{net}.")}
        assert ours.keys() == tensors.keys() == published["G_ema" if net != "D" else "D"].keys()
        assert all(torch.equal(ours[k], tensors[k]) for k in tensors), net
    assert not torch.equal(model.G.synthesis.b4.const, model.G_ema.synthesis.b4.const)  # not mixed up
    z = model.latents_for_seeds([0, 1])
    first = model.generate_images(z, torch.tensor([3, 5]), 0.7)
    assert http_server.requests.count(CIFAR10) == 1

    http_server.stop()
    monkeypatch.setenv("VGZOO_OFFLINE", "1")
    monkeypatch.setattr(snapshot, "load_snapshot", lambda *a, **k: pytest.fail("the snapshot was read again"))
    again = vgzoo.create("stylegan2.cifar10", pretrained=True)
    assert again.config == model.config
    state, state_again = model.state_dict(), again.state_dict()
    assert state.keys() == state_again.keys() and all(torch.equal(state[k], state_again[k]) for k in state)
    assert torch.equal(again.generate_images(z, torch.tensor([3, 5]), 0.7), first)


@needs_ref
@pytest.mark.parametrize("name, cls", [("tiny_uncond", StyleGAN2), ("tiny_cond", StyleGAN2Conditional)])
def test_convert_a_training_snapshot(tmp_path, name, cls):
    out = tmp_path / "converted"
    result = CliRunner().invoke(cli, ["convert", "stylegan2-reference", str(REF / f"{name}.pkl"), str(out)])
    assert result.exit_code == 0, result.output
    model = vgzoo.create(f"local-dir:{out}")
    assert type(model) is cls
    config, state_dict = snapshot.convert_snapshot(REF / f"{name}.pkl")
    assert {k: v for k, v in model.config.items() if k in config} == config
    assert all(torch.equal(model.state_dict()[k], v) for k, v in state_dict.items())
    assert sorted(model.state_dict()) == sorted(state_dict)
    # a second run does not overwrite what is there
    again = CliRunner().invoke(cli, ["convert", "stylegan2-reference", str(REF / f"{name}.pkl"), str(out)])
    assert again.exit_code != 0 and "--overwrite" in again.output


@needs_ref
def test_convert_refuses_the_malicious_snapshot(tmp_path):
    marker = Path("/tmp/vgzoo-untrusted-code-ran")
    marker.unlink(missing_ok=True)
    result = CliRunner().invoke(cli, ["convert", "stylegan2-reference", str(REF / "malicious.pkl"),
                                      str(tmp_path / "out")])
    assert result.exit_code != 0
    assert "refusing 'torch.nn.modules.linear.Linear'" in result.output
    assert not marker.exists() and not (tmp_path / "out").exists()


def test_a_snapshot_whose_shapes_do_not_fit_is_refused_by_the_core(tmp_path):
    """A file claiming one architecture with tensors of another: the core's meta-device check names the keys."""
    g = torch.Generator().manual_seed(0)
    kwargs = {"z_dim": 8, "c_dim": 0, "w_dim": 8, "img_resolution": 8, "img_channels": 3,
              "mapping_kwargs": {"num_layers": 1}, "synthesis_kwargs": {"channel_base": 64, "channel_max": 8}}
    with torch.device("meta"):
        g_shapes = {k: list(v.shape) for k, v in Generator(**kwargs).state_dict().items()}
        d_args = {"c_dim": 0, "img_resolution": 8, "img_channels": 3, "channel_base": 64, "channel_max": 8}
        d_shapes = {k: list(v.shape) for k, v in Discriminator(**d_args).state_dict().items()}
    g_shapes["synthesis.b4.const"] = [9, 4, 4]
    path = tmp_path / "bad.pkl"
    with persistence_module():
        path.write_bytes(pickle.dumps({"G": network("Generator", kwargs, g_shapes, g),
                                       "G_ema": network("Generator", kwargs, g_shapes, g),
                                       "D": network("Discriminator", d_args, d_shapes, g)}))
    result = CliRunner().invoke(cli, ["convert", "stylegan2-reference", str(path), str(tmp_path / "out")])
    assert result.exit_code != 0
    assert "synthesis.b4.const" in result.output


@needs_ref
def test_a_tag_records_its_licence_in_info_and_the_card(tmp_path, monkeypatch, http_server):  # noqa: F811
    """The tag's file decides the architecture (here the tiny conditional fixture served as cifar10.pkl)."""
    http_server.add(CIFAR10, (REF / "tiny_cond.pkl").read_bytes())
    monkeypatch.setenv("VGZOO_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("VGZOO_MIRROR", http_server.url)
    info = CliRunner().invoke(cli, ["info", "stylegan2.cifar10"])
    assert info.exit_code == 0 and "NVIDIA Source Code License-NC" in info.output
    assert "conditional_generation" in info.output and "non-commercial" in info.output.lower()
    model = vgzoo.create("stylegan2.cifar10", pretrained=True)
    assert type(model) is StyleGAN2Conditional and model.config["img_resolution"] == 16
    assert model.pretrained_cfg["task"] == "conditional_generation"
    vgzoo.save_pretrained(model, tmp_path / "saved")
    card = (tmp_path / "saved" / "README.md").read_text()
    assert "| licence | NVIDIA Source Code License-NC. Non-commercial use only" in card
    meta = yaml.safe_load(card.split("---\n")[1])  # the Hub's metadata: its id list lacks this licence
    assert meta["license"] == "other" and meta["license_name"] == "nvidia-source-code-license-nc"
    assert meta["license_link"] == "https://nvlabs.github.io/stylegan2-ada-pytorch/license.html"
    # the card names the tag where it lives (stylegan2.cifar10 is an alias of it)
    assert "class-conditional image generator" in card and 'vgzoo.create("stylegan2_cifar.cifar10", ' in card
    assert "stylegan2.cifar10 is an alias of stylegan2_cifar.cifar10" in info.output
