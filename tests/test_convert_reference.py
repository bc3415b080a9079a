"""Reference (pytorch-CycleGAN-and-pix2pix) checkpoints: key layout, outputs within 1e-5, variants, composites, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import load_file

import vgzoo
from vgzoo.cli import cli
from vgzoo.convert import reference_discriminator, reference_generator
from vgzoo.convert.reference import (
    discriminator_key_map,
    generator_key_map,
    infer_generator_config,
    read_reference_state_dict,
)
from vgzoo.converters import reference_composite
from vgzoo.errors import WeightsError
from vgzoo.layers.patchgan import PatchDiscriminator
from vgzoo.layers.resnet_generator import ResnetGenerator
from vgzoo.layers.unet import UnetGenerator
from vgzoo.models.translator import GeneratorTranslator

REF = Path(__file__).resolve().parents[2] / "shared" / "reference"
needs_ref = pytest.mark.skipif(not REF.is_dir(), reason=f"reference checkpoints not found at {REF}")
CASES = [
    ("resnet_9blocks_ngf8_instance_G", reference_generator),
    ("unet_256_ngf4_batch_G", reference_generator),
    ("basic_D_ndf8_6ch_batch", reference_discriminator),
]


def ref_keys(model, pairs) -> dict[str, tuple]:
    """The reference's key names and shapes for a vgzoo module, through the structural map."""
    own = model.state_dict()
    out = {}
    for vg, ref in pairs:
        for k, v in own.items():
            if k.startswith(vg + ".") and "." not in k[len(vg) + 1:]:
                out[ref + k[len(vg):]] = tuple(v.shape)
    return out


def to_reference(model, pairs) -> dict[str, torch.Tensor]:
    own = model.state_dict()
    return {ref + k[len(vg):]: own[k] for vg, ref in pairs for k in own if k.startswith(vg + ".")
            and "." not in k[len(vg) + 1:]}


@needs_ref
@pytest.mark.parametrize("name, convert", CASES)
def test_reference_checkpoints_reproduce_the_reference_outputs(name, convert):
    model = convert(REF / f"{name}.pth")
    io = load_file(str(REF / f"{name}.io.safetensors"))
    assert not model.training
    with torch.no_grad():
        out = model(io["input"])
    assert out.shape == io["output"].shape
    assert (out - io["output"]).abs().max().item() < 1e-5


@needs_ref
def test_inferred_configs():
    assert reference_generator(REF / "resnet_9blocks_ngf8_instance_G.pth").reference_config == {
        "netG": "resnet_9blocks", "ngf": 8, "in_chans": 3, "out_chans": 3, "norm": "instance", "dropout": False}
    assert reference_generator(REF / "unet_256_ngf4_batch_G.pth").reference_config["netG"] == "unet_256"
    assert reference_discriminator(REF / "basic_D_ndf8_6ch_batch.pth").reference_config == {
        "n_layers": 3, "ndf": 8, "in_chans": 6, "norm": "batch"}


@needs_ref
def test_key_layout_equals_the_reference_json_at_default_sizes():
    spec = json.loads((REF / "cyclegan_pix2pix_reference_state_dicts.json").read_text())
    with torch.device("meta"):
        nets = {
            "resnet_9blocks_instance_G": ResnetGenerator(3, 3, 64, 9, "instance"),
            "resnet_6blocks_instance_G": ResnetGenerator(3, 3, 64, 6, "instance"),
            "unet_256_batch_G": UnetGenerator(3, 3, 8, 64, "batch", dropout=True),
            "unet_128_batch_G": UnetGenerator(3, 3, 7, 64, "batch", dropout=True),
            "basic_D_6ch_batch": PatchDiscriminator(6, 64, 3, "batch"),
            "basic_D_3ch_instance": PatchDiscriminator(3, 64, 3, "instance"),
        }
    for name, net in nets.items():
        pairs = discriminator_key_map(net) if isinstance(net, PatchDiscriminator) else generator_key_map(net)
        assert ref_keys(net, pairs) == {k: tuple(v) for k, v in spec[name].items()}, name


@needs_ref
def test_explicit_arguments_and_mismatches():
    path = REF / "resnet_9blocks_ngf8_instance_G.pth"
    model = reference_generator(path, netG="resnet_9blocks", ngf=8, norm="instance", in_chans=3, out_chans=3)
    assert isinstance(model, ResnetGenerator)
    with pytest.raises(WeightsError, match="vgzoo keys with no reference weight") as info:
        reference_generator(path, norm="batch")
    assert isinstance(info.value, ValueError)
    with pytest.raises(WeightsError, match="shape mismatches"):
        reference_generator(path, ngf=16)
    with pytest.raises(ValueError, match="netG"):
        reference_generator(path, netG="resnet9")
    with pytest.raises(WeightsError, match="not a reference PatchGAN"):
        reference_discriminator(path)


@needs_ref
def test_old_instance_norm_running_stats_and_module_prefix_are_handled():
    sd = read_reference_state_dict(REF / "resnet_9blocks_ngf8_instance_G.pth")
    io = load_file(str(REF / "resnet_9blocks_ngf8_instance_G.io.safetensors"))
    old = {f"module.{k}": v for k, v in sd.items()}
    for norm_key in ("model.2", "model.5", "model.10.conv_block.2", "model.10.conv_block.6"):
        c = sd[f"{norm_key.rsplit('.', 1)[0]}.{int(norm_key.rsplit('.', 1)[1]) - 1}.weight"].shape[0]
        old[f"module.{norm_key}.running_mean"] = torch.zeros(c)
        old[f"module.{norm_key}.running_var"] = torch.ones(c)
    model = reference_generator(old)
    with torch.no_grad():
        assert (model(io["input"]) - io["output"]).abs().max().item() < 1e-5


def test_resnet_dropout_variant_shifts_the_block_indices():
    torch.manual_seed(0)
    plain = ResnetGenerator(3, 3, 4, 2, "batch").eval()
    with torch.no_grad():
        for m in plain.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 1.5)
    sd = to_reference(plain, generator_key_map(plain))
    assert "model.10.conv_block.5.weight" in sd
    shifted = {}
    for k, v in sd.items():  # what the reference saves when its ResnetBlock holds Dropout at index 4
        parts = k.split(".")
        if "conv_block" in parts and int(parts[3]) >= 4:
            parts[3] = str(int(parts[3]) + 1)
        shifted[".".join(parts)] = v
    assert "model.10.conv_block.6.weight" in shifted and shifted["model.10.conv_block.6.weight"].ndim == 4
    model = reference_generator(shifted)
    assert model.reference_config["dropout"] is True
    assert isinstance(model.blocks[0].dropout, torch.nn.Dropout)
    x = torch.rand(1, 3, 16, 16) * 2 - 1
    with torch.no_grad():
        assert torch.equal(model(x), plain(x))
    with pytest.raises(WeightsError):
        reference_generator(shifted, dropout=False)


def test_pickles_are_read_weights_only(tmp_path):
    path = tmp_path / "evil.pth"
    torch.save({"model.1.weight": torch.zeros(1), "x": Path("/")}, path)  # an arbitrary object
    with pytest.raises(WeightsError, match="weights_only=True"):
        reference_generator(path)


def _write_cycle_gan_dir(folder: Path) -> dict:
    folder.mkdir()
    torch.manual_seed(0)
    nets = {"G_A": ResnetGenerator(3, 3, 8, 9, "instance"), "G_B": ResnetGenerator(3, 3, 8, 9, "instance"),
            "D_A": PatchDiscriminator(3, 8, 3, "instance"), "D_B": PatchDiscriminator(3, 8, 3, "instance")}
    for name, net in nets.items():
        pairs = discriminator_key_map(net) if name.startswith("D") else generator_key_map(net)
        torch.save(to_reference(net, pairs), folder / f"latest_net_{name}.pth")
    return nets


def test_cycle_gan_composite_maps_the_reference_names(tmp_path):
    nets = _write_cycle_gan_dir(tmp_path / "horse2zebra")
    model = reference_composite(tmp_path / "horse2zebra", model="cycle_gan")
    assert model.pretrained_cfg["architecture"] == "cyclegan_resnet"
    for vg, ref in (("G_AB", "G_A"), ("G_BA", "G_B"), ("D_B", "D_A"), ("D_A", "D_B")):
        own, theirs = getattr(model, vg).state_dict(), nets[ref].state_dict()
        assert all(torch.equal(own[k], theirs[k]) for k in own), (vg, ref)
    # the CLI writes a save_pretrained folder that create() and translate read back
    out = tmp_path / "converted"
    result = CliRunner().invoke(cli, ["convert", "pix2pix-reference", "--dir", str(tmp_path / "horse2zebra"),
                                      "--model", "cycle_gan", str(out)])
    assert result.exit_code == 0, result.output
    loaded = vgzoo.create(f"local-dir:{out}").eval()
    x = torch.rand(1, 3, 16, 16) * 2 - 1
    with torch.no_grad():
        assert torch.equal(loaded(x, direction="BtoA"), model(x, direction="BtoA"))


@needs_ref
def test_pix2pix_composite_from_real_reference_files(tmp_path):
    folder = tmp_path / "facades"
    folder.mkdir()
    (folder / "latest_net_G.pth").write_bytes((REF / "unet_256_ngf4_batch_G.pth").read_bytes())
    with pytest.warns(UserWarning, match="latest_net_D.pth not found"):
        reference_composite(folder, model="pix2pix")
    (folder / "latest_net_D.pth").write_bytes((REF / "basic_D_ndf8_6ch_batch.pth").read_bytes())
    model = reference_composite(folder, model="pix2pix")
    assert model.pretrained_cfg["architecture"] == "pix2pix_unet"
    for name, part in (("unet_256_ngf4_batch_G", model), ("basic_D_ndf8_6ch_batch", model.discriminator)):
        io = load_file(str(REF / f"{name}.io.safetensors"))
        with torch.no_grad():
            assert (part(io["input"]) - io["output"]).abs().max().item() < 1e-5
    with pytest.raises(FileNotFoundError, match="latest_net_G_A.pth"):
        reference_composite(folder, model="cycle_gan")


@needs_ref
@pytest.mark.parametrize("case, name", [("unet_256_ngf4_batch_G", "pix2pix_unet_generator"),
                                        ("resnet_9blocks_ngf8_instance_G", "cyclegan_resnet_generator")])
def test_cli_converts_one_generator_into_a_model_folder(tmp_path, case, name):
    """One reference generator becomes a save_pretrained folder of the generator-only translator of its kind."""
    out = tmp_path / "g"
    runner = CliRunner()
    result = runner.invoke(cli, ["convert", "pix2pix-reference", str(REF / f"{case}.pth"), str(out)])
    assert result.exit_code == 0, result.output
    assert {"config.json", "model.safetensors", "README.md"} <= {p.name for p in out.iterdir()}
    assert json.loads((out / "config.json").read_text())["architecture"] == name
    model = vgzoo.create(f"local-dir:{out}").eval()
    assert isinstance(model, GeneratorTranslator) and model.pretrained_cfg["architecture"] == name
    io = load_file(str(REF / f"{case}.io.safetensors"))
    with torch.no_grad():
        assert (model(io["input"]) - io["output"]).abs().max().item() < 1e-5
    # translate reads it through the core, like any model folder
    from vgzoo.translate import load_translator

    assert load_translator(out) is not None and isinstance(load_translator(out), torch.nn.Module)
    bad = runner.invoke(cli, ["convert", "pix2pix-reference", str(REF / f"{case}.pth")])
    assert bad.exit_code == 2 and "DST_DIR" in bad.output
    again = runner.invoke(cli, ["convert", "pix2pix-reference", str(REF / f"{case}.pth"), str(out)])
    assert again.exit_code == 1 and "--overwrite" in again.output  # nothing replaced unasked
    other_norm = "instance" if "batch" in case else "batch"
    wrong = runner.invoke(cli, ["convert", "pix2pix-reference", str(REF / f"{case}.pth"), str(out), "--overwrite",
                                "--norm", other_norm])
    assert wrong.exit_code == 1 and "does not fit" in wrong.output
    assert vgzoo.create(f"local-dir:{out}").pretrained_cfg["architecture"] == name  # the failed run kept the folder


def _write_0_2_generator_folder(folder: Path, case: str) -> dict:
    """A folder as vgzoo 0.2's `vgzoo convert pix2pix-reference SRC.pth DST` wrote it (generator.json + weights)."""
    from safetensors.torch import save_file

    generator = reference_generator(REF / f"{case}.pth")
    cfg = generator.reference_config
    kind, depth = ("unet", 8) if cfg["netG"] == "unet_256" else ("resnet", 9)
    kwargs = {"in_chans": cfg["in_chans"], "out_chans": cfg["out_chans"], "ngf": cfg["ngf"],
              ("num_downs" if kind == "unet" else "n_blocks"): depth, "norm": cfg["norm"], "dropout": cfg["dropout"]}
    folder.mkdir()
    save_file(generator.state_dict(), str(folder / "generator.safetensors"), {"kind": kind})
    (folder / "generator.json").write_text(json.dumps({"kind": kind, "kwargs": kwargs, "source": "x.pth"}))
    return {k: v.clone() for k, v in generator.state_dict().items()}


@needs_ref
@pytest.mark.parametrize("case, name", [("unet_256_ngf4_batch_G", "pix2pix_unet_generator"),
                                        ("resnet_9blocks_ngf8_instance_G", "cyclegan_resnet_generator")])
def test_a_0_2_generator_folder_is_named_and_migrated(tmp_path, case, name):
    """The 0.2 generator.json format is no longer read: every command says how to rewrite it, and it is rewritten."""
    old = tmp_path / "old"
    state = _write_0_2_generator_folder(old, case)
    with pytest.raises(WeightsError, match="vgzoo convert generator-json") as info:
        vgzoo.create(f"local-dir:{old}")
    assert "written by vgzoo 0.2" in str(info.value)
    runner = CliRunner()
    from PIL import Image

    Image.new("RGB", (8, 8)).save(tmp_path / "in.png")
    translated = runner.invoke(cli, ["translate", str(old), str(tmp_path / "in.png"), str(tmp_path / "o.png")])
    assert translated.exit_code == 1 and "vgzoo convert generator-json" in translated.output

    new = tmp_path / "new"
    result = runner.invoke(cli, ["convert", "generator-json", str(old / "generator.json"),
                                 str(old / "generator.safetensors"), str(new)])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in old.iterdir()) == ["generator.json", "generator.safetensors"]  # left as it was
    model = vgzoo.create(f"local-dir:{new}").eval()
    assert isinstance(model, GeneratorTranslator) and model.pretrained_cfg["architecture"] == name
    assert all(torch.equal(model.generator.state_dict()[k], v) for k, v in state.items())
    io = load_file(str(REF / f"{case}.io.safetensors"))
    with torch.no_grad():
        assert (model(io["input"]) - io["output"]).abs().max().item() < 1e-5
    (tmp_path / "bad.json").write_text(json.dumps({"kind": "transformer", "kwargs": {}}))
    bad = runner.invoke(cli, ["convert", "generator-json", str(tmp_path / "bad.json"),
                              str(old / "generator.safetensors"), str(tmp_path / "bad")])
    assert bad.exit_code == 1 and "not a generator.json written by vgzoo 0.2" in bad.output
    assert not (tmp_path / "bad").exists()


def test_infer_rejects_unknown_layouts():
    with pytest.raises(WeightsError, match="not a reference ResNet or U-Net generator"):
        infer_generator_config({"conv.weight": torch.zeros(1, 1, 3, 3)})
