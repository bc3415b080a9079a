"""BigGAN-deep against the reference: the tiny published-format fixture, the published shapes, truncation and seeds.

The oracle is ``shared/reference/biggan`` (made with pytorch-pretrained-biggan; its README says how); the reference
package itself is not needed.
"""

from __future__ import annotations

import json
import math

import pytest
import torch
from _biggan_fixtures import REFERENCE
from vgzoo_biggan.convert import config_from_published, published_to_vgzoo, read, vgzoo_to_published
from vgzoo_biggan.layers import GeneratorBlock, SelfAttention, TruncationBatchNorm, stats_position
from vgzoo_biggan.model import BigGANDeep, class_index, imagenet_class_names

import vgzoo
from vgzoo.inference import guard_score

needs_reference = pytest.mark.skipif(not REFERENCE.is_dir(), reason=f"{REFERENCE} (beside the clone) is absent")


@pytest.fixture(scope="module")
def tiny():
    converted = read({"config": REFERENCE / "tiny" / "config.json",
                      "weights": REFERENCE / "tiny" / "pytorch_model.bin"})
    model = BigGANDeep(**converted.config)
    model.load_state_dict(converted.state_dict, strict=True)
    return model.eval()


@pytest.fixture(scope="module")
def tiny_io():
    from safetensors.torch import load_file

    return load_file(REFERENCE / "tiny.io.safetensors")


@needs_reference
@pytest.mark.parametrize("tag,truncation", [("10", 1.0), ("04", 0.4)])
def test_tiny_fixture_reproduces_the_reference_images(tiny, tiny_io, tag, truncation):
    assert float(tiny_io["truncations"][0 if tag == "10" else 1]) == pytest.approx(truncation)
    with torch.no_grad():
        image = tiny(tiny_io[f"z_{tag}"], tiny_io[f"class_vector_{tag}"], truncation)
    assert image.shape == tiny_io[f"image_{tag}"].shape == (4, 3, 64, 64)
    assert (image - tiny_io[f"image_{tag}"]).abs().max() < 1e-4
    # integer labels are the one-hot class vectors
    labels = tiny_io[f"class_vector_{tag}"].argmax(1)
    with torch.no_grad():
        assert torch.equal(tiny.generate_images(tiny_io[f"z_{tag}"], labels, truncation), image)


@needs_reference
def test_seeds_draw_the_references_truncated_noise(tiny, tiny_io):
    """The fixture's z are truncated_noise_sample(4, 16, t, seed=0): its first row is seed 0's latent."""
    for tag, t in (("10", 1.0), ("04", 0.4)):
        z = tiny.latents_for_seeds([0, 0], t)
        assert z.shape == (2, 16) and z.dtype == torch.float32
        assert torch.equal(z[0], tiny_io[f"z_{tag}"][0]) and torch.equal(z[1], z[0])
    assert not torch.equal(tiny.latents_for_seeds([1], 1.0)[0], tiny_io["z_10"][0])
    assert tiny.latents_for_seeds([3], 1.0).abs().max() <= 2.0
    with pytest.raises(ValueError, match=r"truncation must be in \(0, 1\]"):
        tiny.latents_for_seeds([0], 1.5)


@needs_reference
@pytest.mark.parametrize("name", ["biggan-deep-128", "biggan-deep-256", "biggan-deep-512"])
def test_published_configs_build_with_exactly_the_published_keys_and_shapes(name):
    published = json.loads((REFERENCE / "published_shapes.json").read_text())[name]
    config = config_from_published(published["config"])
    with torch.device("meta"):
        model = BigGANDeep(**config)
    ours = {k: list(v.shape) for k, v in vgzoo_to_published(model.state_dict(), config["attention_position"]).items()}
    assert ours == published["state_dict"]  # same keys, same shapes, nothing left over on either side
    assert sum(p.numel() for p in model.parameters()) == published["params"]
    # and the forward renaming is the inverse
    renamed = published_to_vgzoo({k: torch.empty(s, device="meta") for k, s in published["state_dict"].items()},
                                 config["attention_position"])
    assert {k: tuple(v.shape) for k, v in renamed.items()} == {k: tuple(v.shape) for k, v in
                                                                  model.state_dict().items()}


def test_an_unknown_key_is_named():
    with pytest.raises(ValueError, match="generator.layers.0.bn_9.extra"):
        published_to_vgzoo({"generator.layers.0.bn_9.extra": torch.zeros(1)}, 8)


def test_truncation_interpolates_the_stored_statistics_as_the_reference_does():
    """Row i holds truncation i/50; between rows the reference weights row i by the fractional part."""
    bn = TruncationBatchNorm(3, None, n_stats=51, eps=1e-4).eval()
    bn.running_means.copy_(torch.arange(51.0)[:, None] * torch.tensor([1.0, 2.0, -1.0]))
    bn.running_vars.copy_(1.0 + torch.arange(51.0)[:, None] / 10 * torch.ones(3))
    bn.weight.data = torch.tensor([1.0, 0.5, 2.0])
    bn.bias.data = torch.tensor([0.0, 1.0, -1.0])
    x = torch.randn(2, 3, 4, 4, generator=torch.Generator().manual_seed(0))

    # t = 0.43: 0.43 / 0.02 = 21.5 -> rows 21 and 22, coef 0.5
    index, coef = stats_position(0.43, 51)
    assert index == 21 and coef == pytest.approx(0.5)
    mean = coef * 21 + (1 - coef) * 22  # by hand, channel 0
    var = 1 + (coef * 21 + (1 - coef) * 22) / 10
    expected0 = (x[:, 0] - mean) / math.sqrt(var + 1e-4) * 1.0 + 0.0
    assert torch.allclose(bn(x, 0.43)[:, 0], expected0, atol=1e-5)

    # t = 0.405: coef 0.25 weights row 20 by 0.25 and row 21 by 0.75 (the reference's order, not a lerp)
    index, coef = stats_position(0.405, 51)
    assert index == 20 and coef == pytest.approx(0.25)
    mean2 = 0.25 * 20 * -1 + 0.75 * 21 * -1
    var2 = 1 + (0.25 * 20 + 0.75 * 21) / 10
    expected2 = (x[:, 2] - mean2) / math.sqrt(var2 + 1e-4) * 2.0 - 1.0
    assert torch.allclose(bn(x, 0.405)[:, 2], expected2, atol=1e-5)

    # on a stored value (t = 1.0 and t = 0.4), the row itself
    assert stats_position(1.0, 51) == (50, 0.0) and stats_position(0.4, 51) == (20, 0.0)
    expected3 = (x[:, 1] - 2 * 50) / math.sqrt(1 + 5 + 1e-4) * 0.5 + 1.0
    assert torch.allclose(bn(x, 1.0)[:, 1], expected3, atol=1e-5)
    for bad in (0.0, -0.1, 1.01):
        with pytest.raises(ValueError, match="truncation must be in"):
            bn(x, bad)


def test_class_names_come_from_imagenet_and_unknown_names_suggest_close_ones():
    names = imagenet_class_names()
    assert len(names) == 1000 and names[207] == "golden retriever" and names[282] == "tiger cat"
    assert class_index("tiger cat") == 282 and class_index("Golden Retriever") == 207
    assert class_index("Tinca tinca") == 0  # any of a class's names
    assert class_index("207") == 207 and class_index(5) == 5
    with pytest.raises(ValueError, match=r"closest: 'tiger cat' \(282\)"):
        class_index("tigr cat")


def test_the_registered_published_tags():
    info = vgzoo.model_info("biggan_deep.256")
    assert info.tag == "256" and info.distribution == "vgzoo-biggan"
    text = json.dumps(info.default_cfg, default=str)
    assert "biggan-deep-256-pytorch_model.bin" in text and "biggan-deep-256-config.json" in text
    assert "Apache-2.0" in text
    hub = json.dumps(vgzoo.model_info("biggan_deep.256_hub").default_cfg, default=str)
    assert "huggingface/biggan-deep-256" in hub and "pytorch_model.bin" in hub and "Apache-2.0" in hub
    assert {f"biggan_deep.{side}{hub}" for side in (128, 256, 512) for hub in ("", "_hub")} <= set(
        vgzoo.list_pretrained("biggan_deep*"))


@needs_reference
def test_vgzoo_convert_writes_a_generator_folder_that_reproduces_the_fixture(tmp_path, tiny_io):
    from click.testing import CliRunner

    from vgzoo.cli import cli

    pair = [str(REFERENCE / "tiny" / "config.json"), str(REFERENCE / "tiny" / "pytorch_model.bin")]
    res = CliRunner().invoke(cli, ["convert", "biggan-deep", *pair, str(tmp_path / "out")])
    assert res.exit_code == 0, res.output
    model = vgzoo.create(f"local-dir:{tmp_path / 'out'}").eval()
    assert type(model) is BigGANDeep and not hasattr(model, "discriminator")  # the generator alone, as published
    cfg = model.pretrained_cfg
    assert (cfg["architecture"], cfg["tag"], cfg["input_size"], cfg["num_classes"]) == ("biggan_deep_generator",
                                                                                          None, (3, 64, 64), 20)
    with torch.no_grad():
        image = model(tiny_io["z_04"], tiny_io["class_vector_04"], 0.4)
    assert (image - tiny_io["image_04"]).abs().max() < 1e-4
    # the folder 0.2 wrote recorded the tag biggan_deep.generator: now an alias, it still loads as the generator
    config = json.loads((tmp_path / "out" / "config.json").read_text())
    (tmp_path / "out" / "config.json").write_text(json.dumps({**config, "architecture": "biggan_deep",
                                                              "tag": "generator"}))
    old = vgzoo.create(f"local-dir:{tmp_path / 'out'}").eval()
    assert type(old) is BigGANDeep and old.pretrained_cfg["architecture"] == "biggan_deep_generator"
    with torch.no_grad():
        assert torch.equal(old(tiny_io["z_04"], tiny_io["class_vector_04"], 0.4), image)
    again = CliRunner().invoke(cli, ["convert", "biggan-deep", *pair, str(tmp_path / "out")])
    assert again.exit_code != 0 and "--overwrite" in again.output  # nothing overwritten unasked
    swapped = CliRunner().invoke(cli, ["convert", "biggan-deep", pair[1], pair[0], str(tmp_path / "other")])
    assert swapped.exit_code != 0 and "config.json" in swapped.output and not (tmp_path / "other").exists()


@needs_reference
def test_inference_under_autocast_keeps_the_activations_in_bf16(tiny, tiny_io):
    """At inference the batch norms and the attention gate apply their fp32 factors in the activations' dtype, so
    bf16 autocast does not promote the residual stream to fp32 (twice the bytes for every memory-bound op)."""
    seen = []
    hooks = [m.register_forward_hook(lambda m, args, out: seen.append((type(m).__name__, out.dtype)))
             for m in tiny.modules() if isinstance(m, (GeneratorBlock, SelfAttention, TruncationBatchNorm))]
    try:
        with torch.no_grad(), torch.autocast("cpu", torch.bfloat16):
            image = tiny(tiny_io["z_04"], tiny_io["class_vector_04"], 0.4)
    finally:
        for h in hooks:
            h.remove()
    assert {name for name, _ in seen} == {"GeneratorBlock", "SelfAttention", "TruncationBatchNorm"}
    assert {dtype for _, dtype in seen} == {torch.bfloat16}, seen
    ok, measured = guard_score("images", tiny_io["image_04"], image.float())
    assert ok, measured  # what --precision auto's guard would accept
