"""vgzoo export: every built-in family and both plugins' models (tiny configs) to ONNX and .pt2, run with
onnxruntime / the loaded program and compared with PyTorch at two sizes; translate on an .onnx; errors."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import vgzoo
from vgzoo._factory import model_info
from vgzoo.cli import cli
from vgzoo.errors import InputSizeError, VgzooError
from vgzoo.export import (
    ExportError,
    MissingExportDependency,
    OnnxModel,
    check_export,
    export_model,
    export_target,
    load_onnx_translator,
    read_metadata,
    trace_model,
)

# (model, extra kwargs over its test_kwargs, expected size multiple: None = fixed size)
CASES = [
    ("cyclegan_resnet6", {}, 4),
    ("pix2pix_unet128", {}, 128),
    ("vit_ti16_scratch", {"dynamic_img_size": True}, 16),
    ("cgan_embed_digits", {}, None),
    ("gan_vanilla", {}, None),
    ("restoration_unet", {}, 8),
]


def tiny(name: str, **kwargs):
    torch.manual_seed(0)
    return vgzoo.create(name, **{**model_info(name).test_kwargs, **kwargs}).eval()


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """Model name -> (model, folder holding model.onnx and model.pt2), filled by the round-trip test."""
    return {"dir": tmp_path_factory.mktemp("exported")}


def exported_file(exported, name: str, fmt: str = "onnx"):
    if name not in exported:  # the round-trip test did not run first (e.g. -k selects one test): export now
        model = tiny(name, **next(c[1] for c in CASES if c[0] == name))
        (exported["dir"] / name).mkdir(exist_ok=True)
        export_model(model, exported["dir"] / name / f"model.{fmt}", overwrite=True)
        exported[name] = model
    return exported[name], exported["dir"] / name / f"model.{fmt}"


@pytest.mark.parametrize(("name", "kwargs", "multiple"), CASES, ids=[c[0] for c in CASES])
def test_export_both_formats_match_pytorch(exported, name, kwargs, multiple):
    model = tiny(name, **kwargs)
    traced = trace_model(model)
    folder = exported["dir"] / name
    folder.mkdir()
    exported[name] = model
    for fmt in ("onnx", "pt2"):
        out = folder / f"model.{fmt}"
        meta = traced.save(out, fmt)
        stored = read_metadata(out)
        assert stored == meta
        assert stored["model"] == name and stored["config"] == model.config and stored["format"] == fmt
        assert stored["vgzoo_version"] == vgzoo.__version__ and stored["mean"] and stored["std"]
        assert stored["size_rule"].get("multiple") == multiple
        result = check_export(out, model)
        shapes = [r["inputs"][0] for r in result["runs"]]
        assert len(shapes) == 2 and shapes[0] != shapes[1]
        if multiple:  # batch 2 at two sizes, the second one block taller
            assert shapes[0][0] == shapes[1][0] == 2 and shapes[1][2] == shapes[0][2] + multiple
        assert result["max_abs_diff"] <= 1e-4


def test_onnx_file_refuses_a_size_it_cannot_take(exported):
    model, path = exported_file(exported, "cyclegan_resnet6")
    runner = OnnxModel(path)
    x = torch.rand(1, 3, 16, 12) * 2 - 1
    assert torch.allclose(runner(x), model.G_AB(x), atol=1e-4)
    for h, w in ((14, 12), (4, 4)):  # not a multiple of 4; below the smallest size (two blocks)
        with pytest.raises(InputSizeError, match=r"multiples of 4, at least 8x8"):
            runner(torch.zeros(1, 3, h, w))
    with pytest.raises(ExportError, match=r"holds the AtoB generator.*--direction BtoA"):
        load_onnx_translator(path, "BtoA")


def test_translate_accepts_an_exported_onnx_and_matches_pytorch(tmp_path):
    from PIL import Image

    from vgzoo.translate import translate

    vgzoo.save_pretrained(tiny("cyclegan_resnet6"), tmp_path / "model")
    result = CliRunner().invoke(cli, ["export", str(tmp_path / "model"), "--format", "onnx", "--out",
                                      str(tmp_path / "g.onnx"), "--direction", "BtoA", "--check"])
    assert result.exit_code == 0, result.output
    assert "check: onnxruntime CPU vs PyTorch" in result.output and "max abs difference" in result.output
    assert read_metadata(tmp_path / "g.onnx")["direction"] == "BtoA"
    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(0)
    for i, (h, w) in enumerate(((24, 32), (19, 30), (5, 6))):  # padded to a multiple (and 8x8) and cropped back
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(photos / f"{i}.png")
    translate(tmp_path / "model", photos, tmp_path / "torch", direction="BtoA", progress=False, precision="fp32")
    result = CliRunner().invoke(cli, ["translate", str(tmp_path / "g.onnx"), str(photos), str(tmp_path / "onnx")])
    assert result.exit_code == 0, result.output
    for i in range(3):
        a = np.asarray(Image.open(tmp_path / "torch" / f"{i}.png"), dtype=int)
        b = np.asarray(Image.open(tmp_path / "onnx" / f"{i}.png"), dtype=int)
        assert a.shape == b.shape and np.abs(a - b).max() <= 1
    assert load_onnx_translator(tmp_path / "g.onnx", "BtoA").meta["direction"] == "BtoA"


def test_translate_refuses_a_non_translation_onnx(exported, tmp_path):
    from PIL import Image

    from vgzoo.translate import translate

    _, path = exported_file(exported, "gan_vanilla")
    Image.new("RGB", (16, 16)).save(tmp_path / "x.png")
    with pytest.raises(ExportError, match="needs an exported translation generator"):
        translate(path, tmp_path / "x.png", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_pix2pix_eval_export_is_deterministic_and_test_dropout_samples(tmp_path):
    model = tiny("pix2pix_unet128")
    with torch.no_grad():  # random weights are small: make dropout's effect on the output plain to see
        for p in model.generator.parameters():
            p.mul_(10)
    meta = export_model(model, tmp_path / "drop.onnx", test_dropout=True, check=True)
    assert meta["test_dropout"] and meta["check"]["max_abs_diff"] is None  # sampled: only shapes are compared
    runner = OnnxModel(tmp_path / "drop.onnx")
    x = torch.rand(1, 3, 128, 128) * 2 - 1
    assert (runner(x) - runner(x)).abs().max() > 1e-3
    assert not model.generator.training  # the model's own modes are restored
    with pytest.raises(ExportError, match="no dropout layer"):
        export_model(tiny("cyclegan_resnet6"), tmp_path / "c.onnx", test_dropout=True)


def test_training_only_parts_are_refused_with_what_can_be_exported(tmp_path):
    cyclegan = tiny("cyclegan_resnet6")
    with pytest.raises(ExportError, match=r"D_A is a discriminator.*--direction AtoB, --direction BtoA"):
        export_target(cyclegan, part="D_A")
    with pytest.raises(ExportError, match=r"bare PatchDiscriminator\. A discriminator is used only in training"):
        export_target(cyclegan.D_B)
    assert export_target(cyclegan, part="G_BA").module is cyclegan.G_BA
    with pytest.raises(ExportError, match="has no part 'G_XY'.*G_AB"):
        export_target(cyclegan, part="G_XY")
    with pytest.raises(ExportError, match="--direction is for translation models"):
        export_target(tiny("cgan_embed_digits"), direction="BtoA")
    result = CliRunner().invoke(cli, ["export", "cyclegan_resnet6", "--part", "D_B", "--out", str(tmp_path / "d.onnx")])
    assert result.exit_code == 1 and "discriminator" in result.output and not (tmp_path / "d.onnx").exists()


def test_export_never_overwrites_and_names_the_format(tmp_path):
    out = tmp_path / "m.onnx"
    out.write_bytes(b"mine")
    with pytest.raises(ExportError, match="exists; pass overwrite=True"):
        export_model(tiny("gan_vanilla"), out)
    assert out.read_bytes() == b"mine"
    with pytest.raises(ExportError, match="expected one of onnx, pt2"):
        export_model(tiny("gan_vanilla"), tmp_path / "m.tflite")


def test_missing_extra_is_named(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx now raises ImportError
    with pytest.raises(MissingExportDependency, match=r"vgzoo\[export\]") as info:
        export_model(tiny("gan_vanilla"), tmp_path / "m.onnx")
    assert isinstance(info.value, (VgzooError, ImportError))


def test_check_fails_when_the_file_and_pytorch_disagree(exported):
    import copy

    model, path = exported_file(exported, "gan_vanilla")
    other = copy.deepcopy(model)
    with torch.no_grad():
        other.generator.to_image[0].bias.add_(1e-3)  # a change just above the 1e-4 tolerance
    with pytest.raises(ExportError, match=r"differs from PyTorch by .* tolerance is 0.0001"):
        check_export(path, other)
