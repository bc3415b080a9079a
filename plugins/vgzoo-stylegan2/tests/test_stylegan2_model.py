"""The StyleGAN2-ADA model: conformance, the published configurations' keys and shapes, the reference's call."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from _sg2_fixtures import REF, needs_ref
from vgzoo_stylegan2 import networks as N
from vgzoo_stylegan2.model import CONFIGS, StyleGAN2, StyleGAN2Conditional

import vgzoo
import vgzoo.testing


def test_conformance_unconditional():
    vgzoo.testing.check_model("stylegan2_tiny")


def test_conformance_conditional():
    vgzoo.testing.check_model("stylegan2_cifar")


def test_listed_with_distribution():
    info = vgzoo.model_info("stylegan2")
    assert info.distribution == "vgzoo-stylegan2"
    assert info.entry_point == "vgzoo_stylegan2.model:stylegan2"
    assert set(vgzoo.list_models("stylegan2*")) >= {"stylegan2", "stylegan2_paper256", "stylegan2_paper512",
                                                    "stylegan2_paper1024", "stylegan2_cifar", "stylegan2_tiny"}


@needs_ref
@pytest.mark.parametrize("name", ["paper256", "paper512", "paper1024", "stylegan2_1024", "cifar10"])
def test_published_configs_build_with_exactly_the_reference_keys_and_shapes(name):
    published = json.loads((REF / "published_shapes.json").read_text())[name]
    g_args = published["G_init_kwargs"]
    d_args = {k: v for k, v in published["D_init_kwargs"].items() if k not in ("c_dim", "img_resolution",
                                                                             "img_channels")}
    cls = StyleGAN2Conditional if g_args["c_dim"] else StyleGAN2
    with torch.device("meta"):
        model = cls(**g_args, D_kwargs=d_args)
    state = {k: list(v.shape) for k, v in model.state_dict().items()}
    for net in ("G_ema", "D"):
        ours = {k.removeprefix(f"{net}."): v for k, v in state.items() if k.startswith(f"{net}.")}
        assert ours == published[net], f"{name} {net}: keys or shapes differ"
    assert {k.removeprefix("G."): v for k, v in state.items() if k.startswith("G.")} == published["G_ema"]
    assert sum(p.numel() for p in model.G.parameters()) == published["G_params"]
    assert sum(p.numel() for p in model.D.parameters()) == published["D_params"]


@needs_ref
@pytest.mark.parametrize("variant, published", [("paper256", "paper256"), ("paper512", "paper512"),
                                                ("paper1024", "paper1024"), ("stylegan2", "stylegan2_1024"),
                                                ("cifar", "cifar10")])
def test_registered_variants_are_the_published_configs(variant, published):
    ref = json.loads((REF / "published_shapes.json").read_text())[published]
    config = CONFIGS[variant]
    for key in ("z_dim", "w_dim", "img_resolution", "img_channels", "mapping_kwargs", "synthesis_kwargs"):
        assert config[key] == ref["G_init_kwargs"][key], key
    assert config.get("c_dim", 0) == ref["G_init_kwargs"]["c_dim"]
    for key, value in ref["D_init_kwargs"].items():
        if key not in ("c_dim", "img_resolution", "img_channels"):
            assert config["D_kwargs"][key] == value, key


def tiny(**kwargs):
    torch.manual_seed(0)
    return vgzoo.create("stylegan2_tiny", **kwargs).eval()


def test_reference_call_on_the_generator():
    model = tiny()
    G = model.G_ema
    z = torch.randn(2, G.z_dim)
    img = G(z, None, truncation_psi=0.7, truncation_cutoff=None, noise_mode="const")
    assert img.shape == (2, 3, 16, 16)
    ws = G.mapping(z, None, truncation_psi=0.7)
    assert ws.shape == (2, G.num_ws, G.w_dim)
    torch.testing.assert_close(G.synthesis(ws, noise_mode="const"), img)
    assert torch.equal(model(z, truncation_psi=0.7), img)
    logits = model.D(img, None)
    assert logits.shape == (2, 1)


def test_truncation_moves_w_toward_its_average_up_to_the_cutoff():
    G = tiny().G_ema
    with torch.no_grad():
        G.mapping.w_avg.copy_(torch.randn(G.w_dim))
    z = torch.randn(3, G.z_dim)
    ws = G.mapping(z, None)
    half = G.mapping(z, None, truncation_psi=0.5)
    torch.testing.assert_close(half, G.mapping.w_avg + 0.5 * (ws - G.mapping.w_avg))
    cut = G.mapping(z, None, truncation_psi=0.5, truncation_cutoff=2)
    torch.testing.assert_close(cut[:, :2], half[:, :2])
    torch.testing.assert_close(cut[:, 2:], ws[:, 2:])


def test_noise_modes():
    G = tiny().G_ema
    for module in G.modules():
        if isinstance(module, N.SynthesisLayer):
            module.noise_strength.data.fill_(0.5)
    ws = G.mapping(torch.randn(2, G.z_dim), None)
    const = G.synthesis(ws, noise_mode="const")
    assert torch.equal(const, G.synthesis(ws, noise_mode="const"))
    torch.manual_seed(1)
    random_a = G.synthesis(ws, noise_mode="random")
    torch.manual_seed(2)
    random_b = G.synthesis(ws, noise_mode="random")
    none = G.synthesis(ws, noise_mode="none")
    assert not torch.equal(random_a, random_b) and not torch.equal(const, none)
    with pytest.raises(ValueError, match="noise_mode='loud' is not one of"):
        G.synthesis(ws, noise_mode="loud")


def test_fused_and_unfused_modulation_agree():
    G = tiny().G_ema
    ws = G.mapping(torch.randn(3, G.z_dim), None)
    fused = G.synthesis(ws, noise_mode="const", fused_modconv=True)
    unfused = G.synthesis(ws, noise_mode="const", fused_modconv=False)
    torch.testing.assert_close(fused, unfused, rtol=1e-5, atol=1e-5)


def test_inference_fuses_the_modulation_in_fp32_only():
    """fp32 inference takes the reference's fused path (its pixels); under autocast the unfused one (the faster)."""
    G = tiny().G_ema
    with torch.no_grad():
        ws = G.mapping(torch.randn(3, G.z_dim), None)
        assert torch.equal(G.synthesis(ws, noise_mode="const"), G.synthesis(ws, noise_mode="const", fused_modconv=True))
        with torch.autocast("cpu", dtype=torch.bfloat16):
            default = G.synthesis(ws, noise_mode="const")
            assert torch.equal(default, G.synthesis(ws, noise_mode="const", fused_modconv=False))
            assert not torch.equal(default, G.synthesis(ws, noise_mode="const", fused_modconv=True))


def test_an_inference_run_computes_each_layers_weight_values_once(monkeypatch):
    """Under autocast the unfused modulation casts each weight and sums its kernels' energy: once per run inside
    ``with runner:`` (vgzoo.layers.derived), the same pixels as every call computing them."""
    from vgzoo.inference import GuardedRunner, inference_mode

    model, computed = tiny(), []
    real = N.derived

    def counting(param, what, compute):
        return real(param, what, lambda: computed.append(what) or compute())

    monkeypatch.setattr(N, "derived", counting)
    z = model.latents_for_seeds([0, 1], 0.7)
    run = GuardedRunner(lambda z: model.generate_images(z, None, 0.7), inference_mode("cpu", "bf16"), "images")
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        alone = [model.generate_images(z, None, 0.7) for _ in range(3)]
    per_call = len(computed)
    assert per_call and "kernel energy" in computed and torch.bfloat16 in computed
    computed.clear()
    with torch.no_grad(), run:
        in_run = [run(z) for _ in range(3)]
    assert len(computed) == per_call // 3  # each layer's values once (the guard's fp32 pass takes the fused path)
    for a, b in zip(alone, in_run, strict=True):
        assert torch.equal(a, b)


def test_cpu_fp32_sampling_of_a_batch_gives_each_seeds_own_image_bitwise():
    """On a CPU, fp32 seeds are drawn one at a time (the per-sample weights' grouped convolution is slower there):
    a batch gives exactly the images of seeds drawn alone, as the reference's gen_images.py draws them."""
    model = tiny().eval()
    z = model.latents_for_seeds([3, 1, 4], 0.7)
    batched = model.generate_images(z, None, 0.7)
    alone = torch.cat([model.generate_images(z[i:i + 1], None, 0.7) for i in range(3)])
    assert torch.equal(batched, alone)
    with torch.no_grad():  # the same as G_ema's own fused fp32 batch, up to the grouped convolution's rounding
        torch.testing.assert_close(batched, model.G_ema(z, model.one_hot(None, 3), truncation_psi=0.7,
                                                        noise_mode="const"), rtol=1e-5, atol=1e-5)


def test_unfused_demodulation_needs_no_per_sample_weights():
    """The unfused path's demodulation coefficients come from styles^2 @ (weight^2 summed over the kernel), the
    same sums as the reference's per-sample weights give, without building them."""
    torch.manual_seed(0)
    x, weight, styles = torch.randn(5, 16, 8, 8), torch.randn(32, 16, 3, 3), torch.randn(5, 16)
    per_sample = weight[None] * styles[:, None, :, None, None]
    dcoefs = (per_sample.square().sum(dim=[2, 3, 4]) + 1e-8).rsqrt()
    expected = torch.nn.functional.conv2d(x * styles[:, :, None, None], weight, padding=1) * dcoefs[:, :, None, None]
    got = N.modulated_conv2d(x, weight, styles, padding=1, fused_modconv=False)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def test_w_avg_tracks_the_mapping_output_in_training_only():
    model = tiny()
    G = model.G
    z = torch.randn(4, G.z_dim)
    before = G.mapping.w_avg.clone()
    G.mapping(z, None)  # eval: no update
    assert torch.equal(G.mapping.w_avg, before)
    G.train()
    w = G.mapping(z, None, skip_w_avg_update=True)
    assert torch.equal(G.mapping.w_avg, before)
    w = G.mapping(z, None)[:, 0]
    torch.testing.assert_close(G.mapping.w_avg, w.detach().mean(0).lerp(before, 0.995))


def test_fp16_blocks_run_in_float32_off_cuda():
    model = tiny(synthesis_kwargs={"channel_base": 256, "channel_max": 16, "num_fp16_res": 2})
    assert model.G_ema.synthesis.b16.use_fp16 and model.G_ema.synthesis.b8.use_fp16
    assert N._block_dtype(True, False, torch.device("cpu")) == torch.float32
    assert N._block_dtype(True, False, torch.device("cuda")) == torch.float16
    assert N._block_dtype(True, True, torch.device("cuda")) == torch.float32
    img = model(torch.randn(2, 16))
    assert img.dtype == torch.float32


def test_upfirdn2d_is_the_reference_definition():
    """Zero insertion, padding, true convolution with the filter, decimation, written out by hand."""
    x = torch.randn(1, 2, 5, 5)
    f = torch.rand(4, 3)
    up, down, (px0, px1, py0, py1) = 2, 1, (2, 1, 3, 0)
    ours = N.upfirdn2d(x, f, up=up, down=down, padding=[px0, px1, py0, py1], gain=2.0)
    stuffed = torch.zeros(1, 2, 5 * up, 5 * up)
    stuffed[:, :, ::up, ::up] = x
    padded = torch.nn.functional.pad(stuffed, [px0, px1, py0, py1])
    fh, fw = f.shape
    out = torch.zeros(1, 2, padded.shape[2] - fh + 1, padded.shape[3] - fw + 1)
    for i in range(out.shape[2]):
        for j in range(out.shape[3]):
            window = padded[:, :, i:i + fh, j:j + fw]
            out[:, :, i, j] = (window * f.flip([0, 1]) * 2.0).sum(dim=(2, 3))
    torch.testing.assert_close(ours, out[:, :, ::down, ::down], rtol=1e-5, atol=1e-5)


def test_minibatch_std_needs_a_divisible_batch():
    D = tiny().D  # group size 2
    with pytest.raises(ValueError, match="divisible by 2"):
        D(torch.zeros(3, 3, 16, 16), None)


def test_labels_and_conditioning_are_checked():
    with pytest.raises(ValueError, match="class-conditional model; build it as stylegan2_cifar"):
        vgzoo.create("stylegan2_tiny", c_dim=3)
    with pytest.raises(ValueError, match="needs c_dim > 0"):
        vgzoo.create("stylegan2_cifar", c_dim=0)
    cond = vgzoo.create("stylegan2_cifar", **{**vgzoo.model_info("stylegan2_cifar").test_kwargs}).eval()
    z = cond.sample_z(2)
    with pytest.raises(ValueError, match=r"class labels must lie in \[0, 10\)"):
        cond(z, torch.tensor([0, 10]))
    one_hot = torch.nn.functional.one_hot(torch.tensor([3, 4]), 10).float()
    torch.testing.assert_close(cond(z, torch.tensor([3, 4])), cond.G_ema(z, one_hot, noise_mode="const"))


def test_seeds_are_the_reference_seeds():
    model = tiny()
    z = model.latents_for_seeds([0, 7])
    expected = np.concatenate([np.random.RandomState(s).randn(1, 16) for s in (0, 7)])
    torch.testing.assert_close(z, torch.from_numpy(expected).float())
    images = model.generate_images(z, None, 0.7)
    torch.testing.assert_close(images, model.G_ema(z, None, truncation_psi=0.7, noise_mode="const"))
    assert model.truncation_name == "psi" and model.default_truncation == 1.0 and model.class_names is None


def test_g_ema_stays_in_eval_mode():
    model = tiny().train()
    assert model.G.training and model.D.training and not model.G_ema.training
    assert not any(p.requires_grad for p in model.G_ema.parameters())


def test_generate_seeds_draws_two_256px_seeds_a_call_on_a_cpu():
    """StyleGAN2's CPU budget (cpu_batch_pixels): two 256 px seeds a call, one 512 px, eight 32 px."""
    from types import SimpleNamespace

    from vgzoo.generate import seed_batch_size

    for side, expected in ((256, 2), (512, 1), (1024, 1), (32, 8)):
        model = SimpleNamespace(pretrained_cfg={"input_size": (3, side, side)},
                                cpu_batch_pixels=StyleGAN2.cpu_batch_pixels)
        assert seed_batch_size(model, torch.device("cpu")) == expected
    assert vgzoo.create("stylegan2_tiny").cpu_batch_pixels == StyleGAN2.cpu_batch_pixels
