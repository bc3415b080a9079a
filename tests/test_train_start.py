"""Where a run starts: `NAME.TAG` from the tag's published weights, a bare NAME from a random initialisation; a model
may name its own training task (``pretrained_cfg["train_task"]``)."""

from __future__ import annotations

import json

import _tiny
import pytest
import torch

import vgzoo
from vgzoo import _registry
from vgzoo._hub import save_state_dict


@pytest.fixture
def tagged(tmp_path):
    """tiny_core_net with a tag `mine` whose published weights are a file of known values."""
    torch.manual_seed(5)
    published = _tiny.TinyNet(width=2, num_classes=10)  # the digits
    path = tmp_path / "mine.safetensors"
    save_state_dict(published.state_dict(), path)
    register_cfg = {"input_size": (3, 8, 8), "mean": (0.5,) * 3, "std": (0.5,) * 3, "num_classes": 10,
                    "paper": "none: a test fixture", "classifier": "head", "first_conv": "stem"}
    cfgs = {"": _registry.make_cfg(**register_cfg), "mine": _registry.make_cfg(**register_cfg, file=str(path))}
    vgzoo.register_model(_tiny.NAME, _tiny.TinyNet, family="tiny", task="classification", cfgs=cfgs,
                         model_args={"width": 2, "num_classes": 10})
    yield published
    _registry._specs.pop(_tiny.NAME, None)


def _first_weights(name, out):
    from vgzoo.train import fit

    seen = {}

    class Spy(vgzoo.train.callbacks.Callback):
        def on_start(self, run, st):
            seen.update({k: v.clone() for k, v in st.model.state_dict().items()})

    fit(name, "builtin:digits", out, steps=1, batch_size=8, device="cpu", progress=False, log=lambda m: None,
        callbacks=[Spy()])
    return seen


def test_a_named_tag_starts_from_its_published_weights(tagged, tmp_path):
    start = _first_weights(f"{_tiny.NAME}.mine", tmp_path / "tagged")
    assert all(torch.equal(start[k], v) for k, v in tagged.state_dict().items())
    fresh = _first_weights(_tiny.NAME, tmp_path / "fresh")  # the default tag has no weights: a random start
    assert not torch.equal(fresh["head.weight"], tagged.state_dict()["head.weight"])


def test_a_model_names_its_own_training_task(tiny_model_name, tmp_path, monkeypatch):
    from vgzoo.tasks import BUILTIN_TASKS, Task, register_task
    from vgzoo.train import fit, recipes

    class Marked(recipes.ClassificationRecipe):
        task = "tiny_training"

    monkeypatch.setattr(recipes, "TinyTrainingRecipe", Marked, raising=False)
    record = BUILTIN_TASKS["classification"]
    register_task(Task("tiny_training", "a test task", record.batch_keys, record.dataset, record.transform,
                       "vgzoo.train.recipes:TinyTrainingRecipe", record.protocols, record.output, stats="imagenet"))
    model = vgzoo.create(tiny_model_name, num_classes=10)
    model.pretrained_cfg["train_task"] = "tiny_training"
    result = fit(model, "builtin:digits", tmp_path / "run", steps=1, batch_size=8, device="cpu", progress=False,
                 log=lambda m: None)
    config = json.loads((result.run_dir / "config.json").read_text())
    assert config["task"] == "tiny_training" and config["recipe"] == "Marked"
