"""timm interop: from_timm_vit, exact logits parity at 224 and 384 px, every load path, offline Hub, CLI."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
import torch

import vgzoo
from vgzoo._hub import save_state_dict
from vgzoo.convert import from_timm_vit
from vgzoo.errors import WeightsError

timm = pytest.importorskip("timm")

HUB_REPO = "timm/vit_base_patch16_224.augreg2_in21k_ft_in1k"


def images(b, size, seed=0):
    return torch.randn(b, 3, size, size, generator=torch.Generator().manual_seed(seed))


@pytest.fixture(scope="module")
def timm_base(tmp_path_factory):
    """timm's vit_base_patch16_224 with random weights, its checkpoint file and reference logits."""
    torch.manual_seed(0)
    model = timm.create_model("vit_base_patch16_224", pretrained=False).eval()
    with torch.no_grad():  # timm zero-inits nothing we rely on, but make the head non-trivial anyway
        model.head.weight.normal_(std=0.02)
        model.head.bias.normal_(std=0.02)
    path = tmp_path_factory.mktemp("timm") / "model.safetensors"
    save_state_dict(model.state_dict(), path)
    with torch.no_grad():
        logits = model(images(2, 224))
    return model, path, logits


def test_parity_224(timm_base):
    _, path, expected = timm_base
    model = vgzoo.create("vit_b16_scratch", checkpoint_path=path).eval()
    with torch.no_grad():
        got = model(images(2, 224))
    assert (got - expected).abs().max() < 1e-4
    assert model.pretrained_cfg["weight_source"] == str(path)


def test_parity_384_against_timm_resampled(timm_base):
    from timm.models.vision_transformer import checkpoint_filter_fn as timm_filter

    timm_224, path, _ = timm_base
    with torch.device("meta"):  # skip timm's random init: every tensor is loaded below
        timm_384 = timm.create_model("vit_base_patch16_384", pretrained=False).eval()
    timm_384.load_state_dict(timm_filter(timm_224.state_dict(), timm_384), assign=True)
    ours = vgzoo.create("vit_b16_scratch", img_size=384, checkpoint_path=path).eval()
    assert ours.pos_embed.shape == (1, 577, 768)
    x = images(1, 384, seed=3)
    with torch.no_grad():
        diff = (ours(x) - timm_384(x)).abs().max()
    assert diff < 1e-4


def test_pretrained_from_offline_hub_cache(timm_base, tmp_path):
    """create(..., pretrained=True) through a prepared Hugging Face cache, offline, in a fresh process."""
    _, path, expected = timm_base
    repo_dir = tmp_path / "hub" / ("models--" + HUB_REPO.replace("/", "--"))
    revision = "0123456789abcdef0123456789abcdef01234567"
    snapshot = repo_dir / "snapshots" / revision
    snapshot.mkdir(parents=True)
    (snapshot / "model.safetensors").symlink_to(path)
    (repo_dir / "refs").mkdir()
    (repo_dir / "refs" / "main").write_text(revision)
    out = tmp_path / "logits.safetensors"
    script = textwrap.dedent(
        f"""
        import torch, vgzoo
        from vgzoo._hub import save_state_dict
        model = vgzoo.create("vit_b16_scratch", pretrained=True).eval()
        x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))
        with torch.no_grad():
            logits = model(x)
        save_state_dict({{"logits": logits}}, {str(out)!r}, {{"source": model.pretrained_cfg["weight_source"]}})
        """
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(tmp_path / "hub"), "HF_HOME": str(tmp_path / "hf"),
           "VGZOO_CACHE": str(tmp_path / "vgzoo")}
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    from safetensors import safe_open

    with safe_open(str(out), "pt") as f:
        logits, source = f.get_tensor("logits"), f.metadata()["source"]
    assert (logits - expected).abs().max() < 1e-4
    assert source == f"vit_b16_scratch.augreg2_in21k_ft_in1k (hf-hub:{HUB_REPO})"


def test_offline_without_cache_says_what_to_do(tmp_path):
    script = "import vgzoo; vgzoo.create('vit_ti16_scratch', pretrained=True)"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(tmp_path / "empty"), "HF_HOME": str(tmp_path),
           "VGZOO_CACHE": str(tmp_path / "vgzoo")}
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "WeightsNotFoundError" in result.stderr and "HF_HUB_CACHE" in result.stderr


def test_tiny_converts_exactly():
    torch.manual_seed(0)
    ref = timm.create_model("vit_tiny_patch16_224", pretrained=False, num_classes=10, img_size=32).eval()
    model = vgzoo.create("vit_ti16_scratch", num_classes=10, img_size=32).eval()
    model.load_state_dict(from_timm_vit(ref.state_dict()))
    x = images(2, 32)
    with torch.no_grad():
        torch.testing.assert_close(model(x), ref(x), atol=1e-5, rtol=0)


def test_wrapper_prefixes_and_no_embed_class_layout():
    torch.manual_seed(0)
    ref = timm.create_model("vit_tiny_patch16_224", pretrained=False, num_classes=4, img_size=64,
                            no_embed_class=True).eval()
    sd = {f"module._orig_mod.{k}": v for k, v in ref.state_dict().items()}
    assert sd["module._orig_mod.pos_embed"].shape == (1, 16, 192)  # no class-token slot
    mapped = from_timm_vit(sd)
    assert mapped["pos_embed"].shape == (1, 17, 192) and torch.all(mapped["pos_embed"][:, 0] == 0)
    model = vgzoo.create("vit_ti16_scratch", img_size=64, num_classes=4).eval()
    model.load_state_dict(mapped)
    x = images(2, 64)
    with torch.no_grad():
        torch.testing.assert_close(model(x), ref(x), atol=1e-5, rtol=0)


def test_unsupported_timm_features_are_named():
    sd = timm.create_model("vit_tiny_patch16_224", pretrained=False, num_classes=0, reg_tokens=4,
                           init_values=1e-5, depth=1).state_dict()
    with pytest.raises(WeightsError, match=r"layer scale.*register tokens|register tokens"):
        from_timm_vit(sd)
    with pytest.raises(WeightsError, match="Not a timm/vgzoo ViT"):
        from_timm_vit({"conv.weight": torch.zeros(1)})


def test_headless_checkpoint_and_depth_mismatch(tmp_path):
    from vgzoo.convert.timm_vit import infer_timm_vit_config

    headless = timm.create_model("vit_tiny_patch16_224", pretrained=False, num_classes=0, img_size=32)
    save_state_dict(headless.state_dict(), tmp_path / "h.safetensors")
    with pytest.warns(UserWarning, match="no classifier"):
        model = vgzoo.create("vit_ti16_scratch", img_size=32, num_classes=3, checkpoint_path=tmp_path / "h.safetensors")
    torch.testing.assert_close(model.blocks[0].attn.qkv.weight, headless.blocks[0].attn.qkv.weight)
    shallow = timm.create_model("vit_tiny_patch16_224", pretrained=False, depth=2, img_size=32).state_dict()
    with pytest.raises(WeightsError, match="2 blocks has no vgzoo counterpart"):
        infer_timm_vit_config(shallow)


def test_cli_convert_timm_vit(tmp_path):
    from click.testing import CliRunner

    from vgzoo.cli import cli

    torch.manual_seed(0)
    ref = timm.create_model("vit_tiny_patch16_224", pretrained=False, num_classes=6, img_size=48).eval()
    save_state_dict(ref.state_dict(), tmp_path / "tiny.safetensors")
    result = CliRunner().invoke(cli, ["convert", "timm-vit", str(tmp_path / "tiny.safetensors"), str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert "vit_ti16_scratch" in result.output
    model = vgzoo.create(f"local-dir:{tmp_path / 'out'}").eval()
    assert {k: model.config[k] for k in ("img_size", "patch_size", "in_chans", "num_classes")} == {
        "img_size": 48, "patch_size": 16, "in_chans": 3, "num_classes": 6}
    assert "'img_size': 48" in result.output and "'num_classes': 6" in result.output
    x = images(2, 48)
    with torch.no_grad():
        torch.testing.assert_close(model(x), ref(x), atol=1e-5, rtol=0)
    bad = CliRunner().invoke(cli, ["convert", "timm-vit", str(tmp_path / "out" / "config.json"), str(tmp_path / "x")])
    assert bad.exit_code == 1 and "safetensors" in bad.output
