"""vit_*_scratch: sizes, attention paths, maps and rollout, input checks, timm-style API, load paths, drawing."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import vgzoo
from vgzoo.layers.attention import Attention, attention_math, attention_sdpa, set_fused_attention
from vgzoo.layers.drop import DropPath, drop_path
from vgzoo.layers.pos_embed import resample_abs_pos_embed
from vgzoo.models import vit as vit_module

TINY = {"img_size": 32, "patch_size": 8, "num_classes": 5, "depth": 2}  # ViT-Ti width: D=192, 3 heads, 4x4 grid


def tiny(**kw):
    torch.manual_seed(0)
    return vgzoo.create("vit_ti16_scratch", **{**TINY, **kw}).eval()


def images(b=2, c=3, h=32, w=32, seed=1):
    return torch.randn(b, c, h, w, generator=torch.Generator().manual_seed(seed))


# ---------------------------------------------------------------------------------------------- sizes
@pytest.mark.parametrize(
    "name, expected",
    [("vit_b16_scratch", 86_567_656), ("vit_s16_scratch", 22_050_664), ("vit_ti16_scratch", 5_717_416)],
)
def test_parameter_counts_match_the_table(name, expected):
    factory = getattr(vit_module, name)
    with torch.device("meta"):
        model = factory()
    assert sum(p.numel() for p in model.parameters()) == expected


def test_384_pixels_gives_577_tokens():
    with torch.device("meta"):
        model = vit_module.vit_b16_scratch(img_size=384)
    assert model.pos_embed.shape == (1, 577, 768)
    assert model.pretrained_cfg["input_size"] == (3, 384, 384)


def test_default_cfg_points_at_timm_weights():
    cfg = vgzoo.model_info("vit_b16_scratch").default_cfg
    assert cfg["hf_hub_id"] == "timm/vit_base_patch16_224.augreg2_in21k_ft_in1k"
    assert cfg["mean"] == cfg["std"] == (0.5, 0.5, 0.5) and cfg["input_size"] == (3, 224, 224)
    assert cfg["classifier"] == "head" and cfg["first_conv"] == "patch_embed.proj"


# ---------------------------------------------------------------------------------------------- attention
def test_attention_math_matches_sdpa_and_returns_normalised_weights():
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 3, 7, 16, generator=g) for _ in range(3))
    out, weights = attention_math(q, k, v)
    assert weights.shape == (2, 3, 7, 7)
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, 3, 7))
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v), atol=1e-5, rtol=1e-5)
    mask = torch.rand(7, 7, generator=g) > 0.3
    mask.fill_diagonal_(True)
    out_m, w_m = attention_math(q, k, v, attn_mask=mask)
    torch.testing.assert_close(out_m, attention_sdpa(q, k, v, attn_mask=mask), atol=1e-5, rtol=1e-5)
    assert torch.all(w_m[..., ~mask] == 0)


@pytest.mark.parametrize("d_qk, d_v", [(8, 32), (32, 8)])
def test_sdpa_of_two_head_widths_takes_the_fused_kernel_on_the_cpu_and_matches_the_math(d_qk, d_v):
    """SAGAN's attention (queries and keys a quarter of the values' width): the CPU's fused kernel takes one width,
    so attention_sdpa pads to it; with only that kernel allowed, the call must not need the unfused fallback."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    g = torch.Generator().manual_seed(0)
    q = torch.randn(2, 1, 64, d_qk, generator=g, dtype=torch.float64, requires_grad=True)
    k = torch.randn(2, 1, 16, d_qk, generator=g, dtype=torch.float64, requires_grad=True)
    v = torch.randn(2, 1, 16, d_v, generator=g, dtype=torch.float64, requires_grad=True)
    for scale in (None, 1.0):
        with sdpa_kernel([SDPBackend.FLASH_ATTENTION]):
            out = attention_sdpa(q, k, v, scale=scale)
        expected, _ = attention_math(q, k, v, scale=scale)
        assert out.shape == (2, 1, 64, d_v)
        torch.testing.assert_close(out, expected)
        grads = torch.autograd.grad(out.sum(), (q, k, v))
        torch.testing.assert_close(grads, torch.autograd.grad(expected.sum(), (q, k, v)))
    with sdpa_kernel([SDPBackend.FLASH_ATTENTION]), pytest.raises(RuntimeError):  # what the padding avoids
        F.scaled_dot_product_attention(q, k, v)


def test_attention_module_paths_agree():
    torch.manual_seed(0)
    attn = Attention(48, num_heads=4).eval()
    x = torch.randn(2, 9, 48)
    fused = attn(x)
    out, weights = attn(x, return_attention=True)
    torch.testing.assert_close(out, fused, atol=1e-5, rtol=1e-5)
    assert weights.shape == (2, 4, 9, 9)
    with pytest.raises(ValueError, match="not divisible"):
        Attention(50, num_heads=4)


def test_model_math_path_equals_sdpa_path():
    model, x = tiny(), images()
    with torch.no_grad():
        fused = model(x)
        set_fused_attention(model, False)
        assert not any(b.attn.fused_attn for b in model.blocks)
        math = model(x)
    torch.testing.assert_close(math, fused, atol=1e-5, rtol=1e-5)


def test_attention_maps_shapes_and_rows():
    model, x = tiny(), images()
    with torch.no_grad():
        maps = model.get_attention_maps(x)
    assert len(maps) == 2
    for m in maps:
        assert m.shape == (2, 3, 17, 17)  # (B, h, S+1, S+1), S = 4x4
        torch.testing.assert_close(m.sum(-1), torch.ones(2, 3, 17))


def test_attention_rollout_is_the_product_of_residual_adjusted_maps():
    model, x = tiny(), images()
    with torch.no_grad():
        maps = model.get_attention_maps(x)
    eye = torch.eye(17)
    r = eye.expand(2, 17, 17)
    for m in maps:
        a = 0.5 * m.mean(1) + 0.5 * eye
        r = (a / a.sum(-1, keepdim=True)) @ r
    expected = r[:, 0, 1:].reshape(2, 4, 4)
    expected = expected / expected.flatten(1).amax(1)[:, None, None]
    rollout = model.attention_rollout(x)
    assert rollout.shape == (2, 4, 4)
    torch.testing.assert_close(rollout, expected)
    assert rollout.min() >= 0 and torch.allclose(rollout.flatten(1).amax(1), torch.ones(2))
    with pytest.raises(ValueError, match="head_fusion"):
        model.attention_rollout(x, head_fusion="median")


def test_rollout_follows_the_attended_patch():
    """A one-block model whose class token attends only to patch 5 gives a rollout peaked at patch 5."""
    model = tiny(depth=1)
    attn = model.blocks[0].attn
    d = model.embed_dim
    with torch.no_grad():
        attn.qkv.weight.zero_()
        attn.qkv.bias.zero_()
        attn.qkv.bias[0] = -1.0  # head 0: every query is -e_0; heads 1 and 2 attend uniformly
        attn.qkv.weight[d : 2 * d].copy_(torch.eye(d) * 10.0)  # keys = 10 * LayerNorm(token)
        model.pos_embed.zero_()
        model.cls_token.zero_()
        model.patch_embed.proj.weight.zero_()
        model.patch_embed.proj.bias.zero_()
        model.pos_embed[0, 1 + 5] = 1.0
        model.pos_embed[0, 1 + 5, 0] = -1.0  # only patch 5 is non-zero, so only its key is: LN(token)[0] << 0
        rollout = model.attention_rollout(images())
    assert int(rollout[0].flatten().argmax()) == 5
    assert float(rollout[0].flatten()[5]) == pytest.approx(1.0)
    assert float(rollout[0].flatten().sort().values[-2]) < 0.5


# ---------------------------------------------------------------------------------------------- input checks
def test_bad_size_and_channels_raise_value_errors_naming_them():
    model = tiny()
    with pytest.raises(ValueError, match=r"33x32.*img_size 32x32"):
        model(torch.randn(1, 3, 33, 32))
    with pytest.raises(ValueError, match=r"1 channels.*in_chans=3"):
        model(torch.randn(1, 1, 32, 32))
    with pytest.raises(ValueError, match="not a multiple of patch_size"):
        vgzoo.create("vit_ti16_scratch", img_size=30, patch_size=8, depth=1)


def test_dynamic_img_size_accepts_multiples_of_the_patch():
    static, dynamic = tiny(), tiny(dynamic_img_size=True)
    dynamic.load_state_dict(static.state_dict())
    x = images()
    with torch.no_grad():
        torch.testing.assert_close(dynamic(x), static(x))
        out = dynamic(images(h=48, w=64))
        assert out.shape == (2, 5)
        assert dynamic.attention_rollout(images(h=48, w=64)).shape == (2, 6, 8)
    with pytest.raises(ValueError, match=r"50x64.*multiple of the patch size 8x8"):
        dynamic(images(h=50, w=64))


def test_in_chans_one():
    model = tiny(in_chans=1)
    assert model.pretrained_cfg["mean"] == (0.5,) and model.pretrained_cfg["input_size"] == (1, 32, 32)
    assert model(*model.example_inputs()).shape == (2, 5)


# ---------------------------------------------------------------------------------------------- timm-style API
def test_features_head_classifier_api():
    model, x = tiny(), images()
    with torch.no_grad():
        feats = model.forward_features(x)
        assert feats.shape == (2, 17, 192) and model.num_features == 192
        pre = model.forward_head(feats, pre_logits=True)
        assert pre.shape == (2, 192)
        torch.testing.assert_close(model.forward_head(feats), model.get_classifier()(pre))
        model.reset_classifier(7)
        assert model(x).shape == (2, 7) and model.pretrained_cfg["num_classes"] == 7
        model.reset_classifier(0)
        torch.testing.assert_close(model(x), pre)
    names = dict(model.named_parameters())
    assert model.no_weight_decay() == {"pos_embed", "cls_token"} and model.no_weight_decay() <= names.keys()


def test_grad_checkpointing_gives_the_same_gradients():
    x = images()
    grads = []
    for enabled in (False, True):
        model = tiny().train()
        model.set_grad_checkpointing(enabled)
        model(x).square().mean().backward()
        grads.append({n: p.grad.clone() for n, p in model.named_parameters()})
    for name, g in grads[0].items():
        torch.testing.assert_close(grads[1][name], g, msg=name)


def test_forward_intermediates():
    model, x = tiny(depth=3), images()
    with torch.no_grad():
        final, inter = model.forward_intermediates(x, indices=2)
        torch.testing.assert_close(final, model.forward_features(x))
        assert len(inter) == 2 and all(t.shape == (2, 192, 4, 4) for t in inter)
        (last,) = model.forward_intermediates(x, indices=[-1], norm=True, intermediates_only=True)
        torch.testing.assert_close(last, final[:, 1:].reshape(2, 4, 4, 192).permute(0, 3, 1, 2))
        ((tokens, prefix),) = model.forward_intermediates(
            x, indices=[0], output_fmt="NLC", intermediates_only=True, return_prefix_tokens=True
        )
        assert tokens.shape == (2, 16, 192) and prefix.shape == (2, 1, 192)
    with pytest.raises(ValueError, match="out of range"):
        model.forward_intermediates(x, indices=[3])


# ---------------------------------------------------------------------------------------------- stochastic depth
def test_drop_path_drops_whole_samples_and_rescales():
    torch.manual_seed(0)
    x = torch.ones(64, 5, 3)
    assert torch.equal(drop_path(x, 0.5, training=False), x)
    y = drop_path(x, 0.5, training=True)
    per_sample = y.flatten(1)
    assert set(per_sample.unique().tolist()) <= {0.0, 2.0}
    assert torch.all(per_sample.amin(1) == per_sample.amax(1))  # a sample is kept or dropped whole
    assert 0 < int((per_sample[:, 0] == 0).sum()) < 64
    model = tiny(depth=3, drop_path_rate=0.2)
    rates = [b.drop_path1.drop_prob if isinstance(b.drop_path1, DropPath) else 0.0 for b in model.blocks]
    assert rates == pytest.approx([0.0, 0.1, 0.2])
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        DropPath(1.0)


# ---------------------------------------------------------------------------------------------- load paths
def test_checkpoint_path_resamples_pos_embed(tmp_path):
    model = tiny()
    vgzoo._hub.save_state_dict(model.state_dict(), tmp_path / "w.safetensors")
    bigger = vgzoo.create("vit_ti16_scratch", checkpoint_path=tmp_path / "w.safetensors", **{**TINY, "img_size": 48})
    expected = resample_abs_pos_embed(model.pos_embed.detach(), (6, 6), (4, 4))
    torch.testing.assert_close(bigger.pos_embed.detach(), expected)
    torch.testing.assert_close(bigger.pos_embed[:, 0], model.pos_embed[:, 0])  # class token kept
    assert bigger(images(h=48, w=48)).shape == (2, 5)


def test_local_dir_with_another_img_size(tmp_path):
    model = tiny()
    vgzoo.save_pretrained(model, tmp_path / "m")
    again = vgzoo.create(f"local-dir:{tmp_path / 'm'}").eval()
    with torch.no_grad():
        torch.testing.assert_close(again(images()), model(images()))
    bigger = vgzoo.create(f"local-dir:{tmp_path / 'm'}", img_size=64)
    assert bigger.pos_embed.shape == (1, 65, 192)


def test_wrong_class_count_reinitialises_head_with_warning(tmp_path):
    vgzoo._hub.save_state_dict(tiny().state_dict(), tmp_path / "w.safetensors")
    with pytest.warns(UserWarning, match="num_classes"):
        model = vgzoo.create("vit_ti16_scratch", checkpoint_path=tmp_path / "w.safetensors",
                             **{**TINY, "num_classes": 3})
    assert model.head.weight.shape == (3, 192)


# ---------------------------------------------------------------------------------------------- drawing
def test_attention_map_png_and_cli(tmp_path):
    from click.testing import CliRunner
    from PIL import Image

    from vgzoo.cli import cli
    from vgzoo.viz import save_attention_map

    img = Image.fromarray((torch.rand(40, 60, 3) * 255).to(torch.uint8).numpy())
    img.save(tmp_path / "img.png")
    model = tiny()
    info = save_attention_map(model, tmp_path / "img.png", tmp_path / "a.png")
    assert info["grid"] == (4, 4) and 0 <= info["top_class"] < 5
    drawn = Image.open(tmp_path / "a.png")
    assert drawn.format == "PNG" and drawn.width > 2 * 60  # the image beside its overlay, with a colour bar

    vgzoo.save_pretrained(model, tmp_path / "m")
    result = CliRunner().invoke(
        cli, ["attention-map", str(tmp_path / "m"), str(tmp_path / "img.png"), "--out", str(tmp_path / "b.png")]
    )
    assert result.exit_code == 0, result.output
    assert "rollout grid 4x4" in result.output and (tmp_path / "b.png").is_file()
    assert "random weights" not in result.output


def test_attention_map_by_name_says_the_weights_are_random(tmp_path):
    from click.testing import CliRunner
    from PIL import Image

    from vgzoo.cli import cli

    Image.fromarray((torch.rand(20, 20, 3) * 255).to(torch.uint8).numpy()).save(tmp_path / "img.png")
    result = CliRunner().invoke(
        cli, ["attention-map", "vit_ti16_scratch", str(tmp_path / "img.png"), "--out", str(tmp_path / "c.png")]
    )
    assert result.exit_code == 0, result.output
    assert "warning: vit_ti16_scratch: the model has random weights" in result.output
