"""The registry: listing, unknown names, kwargs checking, model_info, run-time registration."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

import vgzoo
from vgzoo import _registry

BUILTINS = [
    "cgan_embed",
    "cgan_embed_digits",
    "cyclegan_resnet",
    "cyclegan_resnet6",
    "cyclegan_resnet_generator",
    "pix2pix_unet",
    "pix2pix_unet128",
    "pix2pix_unet_generator",
    "vit_b16_scratch",
    "vit_s16_scratch",
    "vit_ti16_scratch",
]


def test_builtins_are_listed_from_entry_points():
    names = vgzoo.list_models()
    assert names == sorted(names)
    assert set(BUILTINS) <= set(names)
    assert all(_registry.entry_points()[n][0].distribution == "vgzoo" for n in BUILTINS)


def test_list_models_patterns():
    assert vgzoo.list_models("vit_*") == ["vit_b16_scratch", "vit_s16_scratch", "vit_ti16_scratch"]
    assert vgzoo.list_models(["cyclegan*", "pix2pix_unet"]) == ["cyclegan_resnet", "cyclegan_resnet6",
                                                               "cyclegan_resnet_generator", "pix2pix_unet"]
    assert vgzoo.list_models("no_such_*") == []


def test_list_models_by_family_imports_and_filters():
    assert vgzoo.list_models(family="vit") == ["vit_b16_scratch", "vit_s16_scratch", "vit_ti16_scratch"]
    assert vgzoo.list_models("cyclegan*", family="pix2pix") == []


def test_unknown_name_suggests_close_names():
    with pytest.raises(vgzoo.UnknownModelError) as info:
        vgzoo.create("vit_b16_scrach")
    assert isinstance(info.value, KeyError) and isinstance(info.value, vgzoo.VgzooError)
    message = str(info.value)
    assert "vit_b16_scratch" in message and "vgzoo list" in message


def test_unknown_kwarg_names_model_and_accepted_arguments(tiny_model_name):
    with pytest.raises(TypeError) as info:
        vgzoo.create(tiny_model_name, num_clases=3)
    message = str(info.value)
    assert tiny_model_name in message and "num_clases" in message
    assert "num_classes" in message and "in_chans" in message


def test_runtime_registered_model_is_listed_built_and_described(tiny_model_name):
    assert tiny_model_name in vgzoo.list_models("tiny_*")
    model = vgzoo.create(tiny_model_name, num_classes=7)
    cfg = model.pretrained_cfg
    assert cfg["architecture"] == tiny_model_name and cfg["family"] == "tiny" and cfg["task"] == "classification"
    assert cfg["num_classes"] == 7  # what the built model reports beats the registered default
    assert model.config == {"in_chans": 3, "num_classes": 7, "width": 4}
    info = vgzoo.model_info(tiny_model_name)
    assert info.family == "tiny" and info.description == "A tiny classifier for the core tests."
    assert info.default_kwargs == {"in_chans": 3, "num_classes": 5, "width": 4}


def test_model_info_of_builtin_names_distribution():
    info = vgzoo.model_info("vit_ti16_scratch")
    assert info.distribution == "vgzoo" and info.entry_point == "vgzoo.models.vit:vit_ti16_scratch"
    assert info.task == "classification" and info.default_cfg["num_classes"] == 1000


def test_register_model_validates_its_arguments():
    from _tiny import TinyNet
    from torch import nn

    with pytest.raises(ValueError, match="task"):
        vgzoo.register_model("x", TinyNet, family="x", task="painting", cfgs={})
    with pytest.raises(ValueError, match="input_size"):
        vgzoo.register_model("x", TinyNet, family="x", task="generation",
                             cfgs={"mean": (0.5,), "std": (0.5,), "paper": ""})
    with pytest.raises(TypeError, match="ZooModel"):
        vgzoo.register_model("x", nn.Linear, family="x", task="generation", cfgs={})
    with pytest.raises(ValueError, match="widht"):
        vgzoo.register_model("x", TinyNet, family="x", task="classification", model_args={"widht": 3},
                             cfgs={"input_size": (3, 8, 8), "mean": (0.5,) * 3, "std": (0.5,) * 3, "paper": ""})


def test_an_alias_tag_resolves_to_another_names_tag_before_anything_is_built(tmp_path):
    """A plugin moves a tag to a name of its own (another class) and keeps the old name.tag as an alias."""
    from _tiny import TinyNet

    from vgzoo.cli import cli
    from vgzoo.errors import PluginError

    cfg = {"input_size": (3, 8, 8), "mean": (0.5,) * 3, "std": (0.5,) * 3, "paper": "none", "num_classes": 5}
    wide = {"": vgzoo.PretrainedCfg(**cfg), "wide": vgzoo.PretrainedCfg(**cfg, model_args={"width": 6})}
    try:
        vgzoo.register_model("tiny_alias_target", TinyNet, family="tiny", task="classification", cfgs=wide)
        vgzoo.register_model("tiny_alias_old", TinyNet, family="tiny", task="classification", cfgs=cfg,
                             model_args={"width": 2}, aliases={"wide": "tiny_alias_target.wide"})
        assert _registry.resolve_name("tiny_alias_old.wide") == "tiny_alias_target.wide"
        assert _registry.resolve_name("tiny_alias_old") == "tiny_alias_old"
        model = vgzoo.create("tiny_alias_old.wide")
        assert model.pretrained_cfg["architecture"] == "tiny_alias_target" and model.pretrained_cfg["tag"] == "wide"
        assert model.config["width"] == 6  # the target's arguments, not the old name's width=2
        info = vgzoo.model_info("tiny_alias_old.wide")
        assert (info.name, info.tag, info.alias_of) == ("tiny_alias_target", "wide", "tiny_alias_old.wide")
        assert vgzoo.model_info("tiny_alias_old").aliases == {"tiny_alias_old.wide": "tiny_alias_target.wide"}
        assert _registry.list_aliases("tiny_alias_*") == {"tiny_alias_old.wide": "tiny_alias_target.wide"}
        assert _registry.load_spec("tiny_alias_old").published_tags() == []  # its target publishes no weights
        assert "tiny_alias_old.wide" not in vgzoo.list_pretrained("tiny_alias_*")
        shown = CliRunner().invoke(cli, ["info", "tiny_alias_old.wide"])
        assert shown.exit_code == 0 and "tiny_alias_old.wide is an alias of tiny_alias_target.wide" in shown.output
        # a folder saved under the old name.tag (before the move) loads as the target
        vgzoo.save_pretrained(model, tmp_path / "m")
        config = json.loads((tmp_path / "m" / "config.json").read_text())
        (tmp_path / "m" / "config.json").write_text(json.dumps({**config, "architecture": "tiny_alias_old"}))
        assert vgzoo.create(f"local-dir:{tmp_path / 'm'}").pretrained_cfg["architecture"] == "tiny_alias_target"
        # a typo suggests the alias; asking the spec for an alias tag directly names its target
        with pytest.raises(vgzoo.UnknownModelError, match="tiny_alias_old.wide"):
            vgzoo.create("tiny_alias_old.wdie")
        with pytest.raises(vgzoo.UnknownModelError, match="alias of tiny_alias_target.wide"):
            _registry.load_spec("tiny_alias_old").cfg_for("wide")
        # aliases that run in a circle are a plugin's mistake, named as such
        vgzoo.register_model("tiny_alias_target", TinyNet, family="tiny", task="classification", cfgs=cfg,
                             aliases={"wide": "tiny_alias_old.wide"})
        with pytest.raises(PluginError, match="circle"):
            vgzoo.create("tiny_alias_old.wide")
    finally:
        for name in ("tiny_alias_target", "tiny_alias_old"):
            _registry._specs.pop(name, None)


def test_register_model_refuses_malformed_aliases():
    from _tiny import TinyNet

    cfg = {"input_size": (3, 8, 8), "mean": (0.5,) * 3, "std": (0.5,) * 3, "paper": "none"}
    with pytest.raises(ValueError, match="also one of its configs"):
        vgzoo.register_model("tiny_x", TinyNet, family="tiny", task="classification",
                             cfgs={"": vgzoo.PretrainedCfg(**cfg), "a": vgzoo.PretrainedCfg(**cfg)},
                             aliases={"a": "other.a"})
    with pytest.raises(ValueError, match="another registered model"):
        vgzoo.register_model("tiny_x", TinyNet, family="tiny", task="classification", cfgs=cfg,
                             aliases={"a": "tiny_x.b"})
    assert "tiny_x" not in _registry._specs
