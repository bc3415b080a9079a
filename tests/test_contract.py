"""The model contract: config captured at construction, exact rebuilds, variants as data, protocols."""

from __future__ import annotations

import json

import pytest
import torch

import vgzoo
from vgzoo import _registry
from vgzoo.protocols import Classifier, ConditionalSampler, GANModel, Translator, ZooModel

BUILTIN = [n for n in vgzoo.list_models() if _registry.get_entry_point(n).distribution == "vgzoo"]


def _round_trip(model, tmp_path):
    vgzoo.save_pretrained(model, tmp_path / "saved")
    return vgzoo.create(f"local-dir:{tmp_path / 'saved'}")


def _assert_same(model, again):
    assert again.config == model.config
    a, b = model.state_dict(), again.state_dict()
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    model.eval(), again.eval()
    inputs = model.example_inputs(batch_size=2)
    with torch.no_grad():
        assert torch.equal(model(*inputs), again(*inputs))


@pytest.mark.parametrize("name", vgzoo.list_models())
def test_every_registered_model_rebuilds_exactly_from_its_config(name, tmp_path):
    spec = _registry.load_spec(name)
    torch.manual_seed(0)
    model = vgzoo.create(name, **spec.test_kwargs)
    assert isinstance(model, ZooModel)
    config = model.config
    assert json.loads(json.dumps(config)) == config  # plain JSON
    assert set(config) == set(spec.accepted_kwargs() or config)  # every constructor argument, defaults resolved
    _assert_same(model, _round_trip(model, tmp_path))


def test_vit_after_reset_classifier_comes_back_with_its_new_head(tmp_path):
    model = vgzoo.create("vit_ti16_scratch", img_size=32, depth=1)
    model.reset_classifier(10)
    assert model.config["num_classes"] == 10 and model.pretrained_cfg["num_classes"] == 10
    again = _round_trip(model, tmp_path)
    assert again.head.out_features == 10
    _assert_same(model, again)


def test_gan_loss_weights_are_config_and_survive_the_round_trip(tmp_path):
    p2p = vgzoo.create("pix2pix_unet128", ngf=4, ndf=4, lambda_l1=10.0, gan_mode="lsgan")
    again = _round_trip(p2p, tmp_path / "p")
    assert again.lambda_l1 == 10.0 and again.gan_mode == "lsgan"
    cyc = vgzoo.create("cyclegan_resnet6", ngf=4, ndf=4, n_blocks=1, img_size=32, lambda_A=3.0, lambda_identity=0.0)
    cyc.lambda_B = 7.0  # set after construction: the config follows
    again = _round_trip(cyc, tmp_path / "c")
    assert (again.lambda_A, again.lambda_B, again.lambda_identity) == (3.0, 7.0, 0.0)
    _assert_same(cyc, again)


def test_an_argument_the_constructor_adjusts_is_recorded_as_it_ends_up():
    with pytest.warns(UserWarning, match="identity"):
        cyc = vgzoo.create("cyclegan_resnet6", ngf=4, ndf=4, n_blocks=1, img_size=32, out_chans=1)
    assert cyc.lambda_identity == 0.0 and cyc.config["lambda_identity"] == 0.0


def test_config_rejects_values_json_cannot_hold():
    model = vgzoo.create("pix2pix_unet128", ngf=4, ndf=4)
    with pytest.raises(TypeError, match="lambda_l1"):
        model.lambda_l1 = object()


def test_variants_are_data_one_class_per_family():
    specs = {n: _registry.load_spec(n) for n in BUILTIN}
    by_family: dict[str, set] = {}
    for spec in specs.values():
        by_family.setdefault(spec.family, set()).add(spec.model_cls)
    assert all(len(classes) == 1 for classes in by_family.values()), by_family
    assert specs["vit_b16_scratch"].model_args == {"embed_dim": 768, "depth": 12, "num_heads": 12}
    assert specs["pix2pix_unet128"].model_args == {"num_downs": 7}


def test_typo_names_the_accepted_arguments():
    with pytest.raises(TypeError, match="lambda_l1") as info:
        vgzoo.create("pix2pix_unet", lamda_l1=3)
    assert "lamda_l1" in str(info.value)


def test_protocols_say_what_each_family_can_do():
    vit = vgzoo.create("vit_ti16_scratch", img_size=32, depth=1)
    cyc = vgzoo.create("cyclegan_resnet6", ngf=4, ndf=4, n_blocks=1, img_size=32)
    p2p = vgzoo.create("pix2pix_unet128", ngf=4, ndf=4)
    cgan = vgzoo.create("cgan_embed_digits", nz=8, ngf=8, ndf=8)
    assert isinstance(vit, Classifier) and not isinstance(vit, GANModel)
    assert isinstance(cyc, GANModel) and isinstance(cyc, Translator) and cyc.directions == ("AtoB", "BtoA")
    assert set(cyc.discriminators()) == {"D_A", "D_B"} and set(cyc.generators()) == {"G_AB", "G_BA"}
    assert cyc.inference_generator("BtoA") is cyc.G_BA
    assert isinstance(p2p, Translator) and p2p.directions == ("AtoB",)
    with pytest.raises(ValueError, match="AtoB"):
        p2p.inference_generator("BtoA")
    assert isinstance(cgan, ConditionalSampler) and not isinstance(cgan, Translator)


def test_create_refuses_what_is_not_a_name():
    with pytest.raises(vgzoo.UnknownModelError, match="vgzoo list"):
        vgzoo.create(None)
    with pytest.raises(vgzoo.UnknownModelError):
        vgzoo.create("")


def test_num_classes_of_the_wrong_type_is_a_clear_error():
    with pytest.raises((TypeError, ValueError), match="num_classes"):
        vgzoo.create("vit_ti16_scratch", img_size=32, depth=1, num_classes="ten")
    with pytest.raises((TypeError, ValueError), match="num_classes"):
        vgzoo.create("cgan_embed_digits", num_classes="ten")


def test_local_dir_expands_the_home_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    model = vgzoo.create("cgan_embed_digits", nz=8, ngf=8, ndf=8)
    vgzoo.save_pretrained(model, tmp_path / "saved")
    again = vgzoo.create("local-dir:~/saved")
    assert again.config == model.config


def test_unknown_tag_suggests_and_plain_name_has_default_tag():
    spec = _registry.load_spec("vit_b16_scratch")
    tag, cfg = spec.cfg_for(None)
    assert cfg is spec.default_cfg
    with pytest.raises(vgzoo.UnknownModelError, match="pix2pix_unet"):
        vgzoo.create("pix2pix_unet.no_such_tag")
