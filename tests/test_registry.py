"""The registry: listing, unknown names, kwargs checking, model_info, run-time registration."""

from __future__ import annotations

import pytest

import vgzoo
from vgzoo import _registry

BUILTINS = [
    "cgan_embed",
    "cgan_embed_digits",
    "cyclegan_resnet",
    "cyclegan_resnet6",
    "pix2pix_unet",
    "pix2pix_unet128",
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
    assert vgzoo.list_models(["cyclegan*", "pix2pix_unet"]) == ["cyclegan_resnet", "cyclegan_resnet6", "pix2pix_unet"]
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
