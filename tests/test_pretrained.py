"""Published weights by tag (``name.tag``): downloaded once from a loopback mirror, converted once, then offline.

The reference generators are served in their exact upstream format: a ``torch.save``d state dict with the
reference's key names and full default shapes (ngf = 64), made from shared/reference's key/shape lists with
random values. The ViT tag reads a timm-format safetensors from a pre-filled Hugging Face cache.
"""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from _http import http_server  # noqa: F401  (fixture)
from click.testing import CliRunner

import vgzoo
from vgzoo import _registry
from vgzoo.cli import cli
from vgzoo.errors import DownloadError, OfflineError, WeightsError
from vgzoo.models.translator import GeneratorTranslator

KEYS = Path(__file__).parents[2] / "shared" / "reference" / "cyclegan_pix2pix_reference_state_dicts.json"
needs_keys = pytest.mark.skipif(not KEYS.is_file(), reason=f"{KEYS} (shared/reference beside the clone) is absent")
H2Z = "/cyclegan/pretrained_models/horse2zebra.pth"
FACADES = "/pix2pix/models-pytorch/facades_label2photo.pth"


def reference_pth(network: str, seed: int = 0) -> tuple[bytes, dict[str, torch.Tensor]]:
    """A state dict of the reference's ``network`` at full size with random values, as ``torch.save`` writes it."""
    shapes = json.loads(KEYS.read_text())[network]
    g = torch.Generator().manual_seed(seed)
    sd = {}
    for key, shape in shapes.items():
        if key.endswith("num_batches_tracked"):
            sd[key] = torch.tensor(7)
        elif key.endswith("running_var"):
            sd[key] = torch.rand(shape, generator=g) + 0.5
        else:
            sd[key] = torch.randn(shape, generator=g) * 0.02
    buf = io.BytesIO()
    torch.save(sd, buf)
    return buf.getvalue(), sd


@pytest.fixture
def cache(tmp_path, monkeypatch, http_server):  # noqa: F811
    monkeypatch.setenv("VGZOO_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("VGZOO_MIRROR", http_server.url)
    monkeypatch.delenv("VGZOO_OFFLINE", raising=False)
    return tmp_path / "cache"


def _cached_files(root: Path) -> list[str]:
    """The files in the cache, the empty lock files under ``.locks/`` aside."""
    if not root.exists():
        return []
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")
                  if p.is_file() and ".locks" not in p.relative_to(root).parts)


@needs_keys
def test_cyclegan_tag_downloads_converts_once_then_loads_offline(cache, http_server, monkeypatch):  # noqa: F811
    data, sd = reference_pth("resnet_9blocks_instance_G")
    http_server.add(H2Z, data)
    model = vgzoo.create("cyclegan_resnet.horse2zebra", pretrained=True).eval()
    assert isinstance(model, GeneratorTranslator) and model.directions == ("AtoB",)
    assert torch.equal(model.generator.stem.conv.weight, sd["model.1.weight"])  # nothing random is left
    assert sum(p.numel() for p in model.parameters()) == 11_378_179
    cfg = model.pretrained_cfg
    assert cfg["tag"] == "horse2zebra" and cfg["direction"] == "AtoB" and cfg["value_range"] == (-1.0, 1.0)
    assert cfg["mean"] == (0.5, 0.5, 0.5) and cfg["dataset"] == "cyclegan:horse2zebra"
    assert "horse2zebra.pth" in cfg["weight_source"]
    x = model.example_inputs(1)[0]
    with torch.no_grad():
        first = model(x)
    # the tag is an alias: the generator alone is its own name, and the cache folder is named after it
    assert cfg["architecture"] == "cyclegan_resnet_generator"
    assert (cache / "models" / "cyclegan_resnet_generator.horse2zebra" / "model.safetensors").is_file()

    http_server.stop()
    monkeypatch.setenv("VGZOO_OFFLINE", "1")
    monkeypatch.setattr(torch, "load", lambda *a, **k: pytest.fail("the pickle was read again"))
    again = vgzoo.create("cyclegan_resnet.horse2zebra", pretrained=True).eval()
    with torch.no_grad():
        assert torch.equal(again(x), first)
    assert http_server.requests.count(H2Z) == 1

    # the CLI: naming the tag is enough (its weights are what the user asked for), offline from the cache
    from PIL import Image

    Image.new("RGB", (12, 10), (200, 30, 40)).save(cache.parent / "in.png")
    result = CliRunner().invoke(cli, ["translate", "cyclegan_resnet.horse2zebra", str(cache.parent / "in.png"),
                                      str(cache.parent / "out.png")])
    assert result.exit_code == 0, result.output
    assert "random weights" not in result.output
    assert Image.open(cache.parent / "out.png").size == (12, 10)


@needs_keys
def test_folders_converted_by_0_2_are_converted_again_or_loaded_as_the_generator(cache, http_server, tmp_path):  # noqa: F811
    """0.2 wrote the tag's folder with config.json naming ``cyclegan_resnet`` (its tag built another class)."""
    data, sd = reference_pth("resnet_9blocks_instance_G")
    http_server.add(H2Z, data)
    model = vgzoo.create("cyclegan_resnet.horse2zebra", pretrained=True).eval()
    folder = cache / "models" / "cyclegan_resnet_generator.horse2zebra"
    config = json.loads((folder / "config.json").read_text())
    old = {**config, "architecture": "cyclegan_resnet", "vgzoo_version": "0.2.0"}
    old["pretrained_cfg"] = {**config["pretrained_cfg"], "architecture": "cyclegan_resnet", "family": "cyclegan"}

    # a 0.2 folder the user kept (or copied out of the cache) loads as the generator, with its weights
    kept = tmp_path / "kept"
    kept.mkdir()
    (kept / "model.safetensors").write_bytes((folder / "model.safetensors").read_bytes())
    (kept / "config.json").write_text(json.dumps(old))
    again = vgzoo.create(f"local-dir:{kept}")
    assert isinstance(again, GeneratorTranslator)
    assert again.pretrained_cfg["architecture"] == "cyclegan_resnet_generator"
    assert all(torch.equal(v, again.state_dict()[k]) for k, v in model.state_dict().items())

    # a cached folder whose config names another architecture is never loaded as the tag: it is converted again
    (folder / "config.json").write_text(json.dumps(old))
    with pytest.warns(UserWarning, match="holds a 'cyclegan_resnet' model, not 'cyclegan_resnet_generator'"):
        fresh = vgzoo.create("cyclegan_resnet.horse2zebra", pretrained=True)
    assert isinstance(fresh, GeneratorTranslator)
    assert torch.equal(fresh.generator.stem.conv.weight, sd["model.1.weight"])
    assert json.loads((folder / "config.json").read_text())["architecture"] == "cyclegan_resnet_generator"
    assert http_server.requests.count(H2Z) == 1  # converted again from the downloaded file


@needs_keys
def test_pix2pix_tag_is_the_full_unet_256_with_its_direction(cache, http_server):  # noqa: F811
    data, sd = reference_pth("unet_256_batch_G", seed=1)
    http_server.add(FACADES, data)
    model = vgzoo.create("pix2pix_unet.facades_label2photo", pretrained=True).eval()
    assert sum(p.numel() for p in model.parameters()) == 54_413_955
    assert model.pretrained_cfg["direction"] == "BtoA" and model.pretrained_cfg["dataset"] == "pix2pix:facades"
    assert torch.equal(model.generator.state_dict()["block.down_conv.weight"], sd["model.model.0.weight"])
    x = model.example_inputs(1)[0]
    with torch.no_grad():
        out = model(x)
    assert out.shape == x.shape and out.abs().max() <= 1
    # a translate run through the CLI reads the converted folder, offline
    again = vgzoo.create("pix2pix_unet.facades_label2photo", pretrained=True, **{}).eval()
    with torch.no_grad():
        assert torch.equal(again(x), out)
    assert http_server.requests.count(FACADES) == 1


def test_vit_tag_reads_a_timm_file_from_the_hub_cache_and_matches_timm(tmp_path):
    """A pre-filled Hugging Face cache stands in for the Hub (HF_HUB_OFFLINE=1 throughout)."""
    timm = pytest.importorskip("timm")
    from safetensors.torch import save_file

    torch.manual_seed(0)
    ref = timm.create_model("vit_tiny_patch16_384", pretrained=False).eval()
    repo = tmp_path / "hub" / "models--timm--vit_tiny_patch16_384.augreg_in21k_ft_in1k"
    commit = "0" * 40
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    (repo / "snapshots" / commit).mkdir(parents=True)
    save_file({k: v.contiguous() for k, v in ref.state_dict().items()},
              repo / "snapshots" / commit / "model.safetensors")
    x = torch.rand(1, 3, 384, 384) * 2 - 1
    torch.save(x, tmp_path / "x.pt")
    with torch.no_grad():
        torch.save(ref(x), tmp_path / "ref.pt")
    script = f"""
import torch, vgzoo
m = vgzoo.create("vit_ti16_scratch.augreg_in21k_ft_in1k_384", pretrained=True).eval()
x = torch.load({str(tmp_path / 'x.pt')!r})
with torch.no_grad():
    torch.testing.assert_close(m(x), torch.load({str(tmp_path / 'ref.pt')!r}), atol=2e-5, rtol=0)
print(m.pretrained_cfg["input_size"], m.config["num_classes"], m.pretrained_cfg["weight_source"])
"""
    env = {**os.environ, "HF_HUB_CACHE": str(tmp_path / "hub"), "HF_HUB_OFFLINE": "1",
           "VGZOO_CACHE": str(tmp_path / "c")}
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "(3, 384, 384) 1000" in proc.stdout
    assert "hf-hub:timm/vit_tiny_patch16_384.augreg_in21k_ft_in1k" in proc.stdout
    # converted once: offline and with the Hub cache gone, it still loads
    env["VGZOO_OFFLINE"] = "1"
    env["HF_HUB_CACHE"] = str(tmp_path / "empty-hub")
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr


def test_vit_tag_table_matches_the_installed_timm():
    timm = pytest.importorskip("timm")
    from timm.models import get_pretrained_cfg

    from vgzoo.models.vit import _TIMM_TAGS, timm_name

    names = {n.removeprefix("vit_"): n for n in ("vit_b16_scratch", "vit_s16_scratch", "vit_ti16_scratch")}
    listed = 0
    for vg_name in names.values():
        spec = _registry.load_spec(vg_name)
        for tag, cfg in spec.cfgs.items():
            ref = get_pretrained_cfg(cfg.hf_hub_id.removeprefix("timm/"))
            assert ref is not None, cfg.hf_hub_id
            assert cfg.num_classes == ref.num_classes and cfg.input_size == tuple(ref.input_size), tag
            assert cfg.mean == tuple(ref.mean) and cfg.std == tuple(ref.std) and cfg.license == ref.license, tag
            assert cfg.crop_pct == ref.crop_pct, tag
            listed += 1
    plain = re.compile(r"^vit_(base|small|tiny)_patch16_(224|384)\.")
    wanted = [n for n in timm.list_pretrained("vit_*_patch16_*") if plain.match(n)]
    assert listed == len(wanted) == sum(len(v) for v in _TIMM_TAGS.values())
    assert timm_name("vit_base_patch16", 384, "augreg_in1k") in wanted


# ---------------------------------------------------------------------------------------------- failures
@needs_keys
def test_a_file_whose_keys_do_not_match_is_refused_and_removed(cache, http_server):  # noqa: F811
    data, _ = reference_pth("unet_256_batch_G")  # a pix2pix generator served for a CycleGAN tag
    http_server.add(H2Z, data)
    with pytest.raises(WeightsError, match="does not fit") as info:
        vgzoo.create("cyclegan_resnet.horse2zebra", pretrained=True)
    assert "removed from the cache" in str(info.value)
    assert [f for f in _cached_files(cache) if not f.endswith(".lock")] == []  # no poisoned download, no folder


def test_404_and_truncated_downloads_leave_nothing(cache, http_server):  # noqa: F811
    with pytest.raises(DownloadError, match="404"):
        vgzoo.create("cyclegan_resnet.zebra2horse", pretrained=True)
    http_server.truncate("/cyclegan/pretrained_models/zebra2horse.pth", b"x" * 10_000, keep=100)
    with pytest.raises(DownloadError):
        vgzoo.create("cyclegan_resnet.zebra2horse", pretrained=True)
    assert [f for f in _cached_files(cache) if not f.endswith(".lock")] == []


def test_offline_without_the_file_names_the_url_and_where_to_put_it(cache, monkeypatch):
    monkeypatch.setenv("VGZOO_OFFLINE", "1")
    with pytest.raises(OfflineError) as info:
        vgzoo.create("pix2pix_unet.edges2shoes", pretrained=True)
    message = str(info.value)
    assert "pix2pix/models-pytorch/edges2shoes.pth" in message
    assert str(cache / "downloads" / "pix2pix" / "models-pytorch" / "edges2shoes.pth") in message


def test_unknown_tags_and_tags_on_models_without_any():
    with pytest.raises(vgzoo.UnknownModelError, match="cyclegan_resnet.horse2zebra"):
        vgzoo.create("cyclegan_resnet.hrse2zebra")
    with pytest.raises(vgzoo.UnknownModelError, match="has no tags"):
        vgzoo.create("cgan_embed.digits")
    with pytest.raises(vgzoo.WeightsNotFoundError, match="cyclegan_resnet.horse2zebra"):
        vgzoo.create("cyclegan_resnet", pretrained=True)  # the composite has none; the error lists the tags


def test_cli_lists_pretrained_tags_and_describes_one():
    runner = CliRunner()
    listed = runner.invoke(cli, ["list", "--pretrained"])
    assert listed.exit_code == 0, listed.output
    names = listed.output.split()
    assert {"cyclegan_resnet.horse2zebra", "pix2pix_unet.day2night", "vit_b16_scratch.augreg2_in21k_ft_in1k",
            "cgan_embed_digits"} <= set(names)
    assert len([n for n in names if n.startswith("cyclegan_resnet.")]) == 18
    assert len([n for n in names if n.startswith("pix2pix_unet.")]) == 5
    assert "cyclegan_resnet" not in names  # the composite has no weights
    # the composite's tags are aliases of the generator-only name, and say so
    assert "cyclegan_resnet.horse2zebra -> cyclegan_resnet_generator.horse2zebra" in listed.output
    assert len([n for n in listed.output.splitlines() if n.startswith("cyclegan_resnet_generator.")]) == 18
    alias = runner.invoke(cli, ["info", "cyclegan_resnet.horse2zebra"])
    assert alias.exit_code == 0, alias.output
    assert "cyclegan_resnet.horse2zebra is an alias of cyclegan_resnet_generator.horse2zebra" in alias.output
    assert re.search(r"^family\s+translator$", alias.output, re.M) and "horse2zebra.pth" in alias.output
    info = runner.invoke(cli, ["info", "pix2pix_unet.facades_label2photo"])
    assert info.exit_code == 0, info.output
    for text in ("http://efrosgans.eecs.berkeley.edu/pix2pix/models-pytorch/facades_label2photo.pth", "BtoA",
                 "pix2pix:facades", "bsd-2-clause", "Isola", "value_range", "54,413,955"):
        assert text in info.output, text
