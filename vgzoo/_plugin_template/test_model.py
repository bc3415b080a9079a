"""template_gan is installed, listed under this distribution, passes vgzoo's conformance kit and samples images."""

import re

import torch
import vgzoo
import vgzoo.testing
from vgzoo.protocols import GANModel, UnconditionalSampler


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_listed_under_this_distribution():
    assert "template_gan" in vgzoo.list_models()
    info = vgzoo.model_info("template_gan")
    assert _canonical(info.distribution) == _canonical("template_pkg")
    assert info.task == "generation"


def test_conformance():
    vgzoo.testing.check_model("template_gan")


def test_samples_are_reproducible_images():
    model = vgzoo.create("template_gan", img_size=8).eval()
    assert isinstance(model, GANModel) and isinstance(model, UnconditionalSampler)
    images = model.sample(3, generator=torch.Generator().manual_seed(0))
    assert images.shape == (3, 1, 8, 8)
    assert images.min() >= -1 and images.max() <= 1
    assert torch.equal(images, model.sample(3, generator=torch.Generator().manual_seed(0)))
    assert model.config["img_size"] == 8  # what save_pretrained writes and create("local-dir:...") rebuilds from
