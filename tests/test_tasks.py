"""The task registry: built-in records, and a task added by a plugin through the ``vgzoo.tasks`` entry-point group.

Plugin checks run in a subprocess whose ``PYTHONPATH`` holds throwaway ``*.dist-info`` folders (as tests/test_plugins.py
does for models), so the fakes never leak into this process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from vgzoo import tasks
from vgzoo.errors import VgzooError

TASK_MODULE = '''
import torch
import torch.nn.functional as F
from torch import nn

from vgzoo.losses import discriminator_adversarial_loss, generator_adversarial_loss
from vgzoo.protocols import GANModel, UnconditionalSampler
from vgzoo.tasks import Task
from vgzoo.train.recipes import GANRecipe

inpainting_fake = Task(
    name="inpainting_fake", summary="a fake plugin task", batch_keys=("image",),
    dataset="vgzoo.data.single:ImageFolderDataset", transform="vgzoo.augment:images_pipeline",
    recipe="fake_task_mod:InpaintingRecipe", protocols=("vgzoo.protocols:GANModel", "fake_task_mod:Inpainter"),
    output="sample")


class Inpainter:
    """The fake task's own capability class."""


class InpaintingRecipe(GANRecipe):
    task = "inpainting_fake"
    defaults = {"batch_size": 8, "lr": 1e-3, "epochs": 1}


class FakeInpainter(GANModel, UnconditionalSampler, Inpainter):
    def __init__(self, nz: int = 4):
        super().__init__()
        self.nz = nz
        self.G = nn.Sequential(nn.Linear(nz, 64), nn.Tanh())
        self.D = nn.Linear(64, 1)
        self.pretrained_cfg = {"input_size": (1, 8, 8), "mean": (0.5,), "std": (0.5,)}

    def forward(self, z):
        return self.G(z).view(-1, 1, 8, 8)

    def sample_z(self, batch_size, generator=None):
        return torch.randn(batch_size, self.nz, generator=generator)

    def sample(self, batch_size, generator=None):
        return self(self.sample_z(batch_size, generator))

    def example_inputs(self, batch_size=2):
        return (torch.zeros(batch_size, self.nz),)

    def example_batch(self, batch_size=2):
        return {"image": torch.zeros(batch_size, 1, 8, 8)}

    def generators(self):
        return {"G": self.G}

    def discriminators(self):
        return {"D": self.D}

    def generator_loss(self, batch):
        loss = generator_adversarial_loss(self.D(self(self.sample_z(batch["image"].shape[0])).flatten(1)), "vanilla")
        return loss, {"G_adv": float(loss.detach())}

    def discriminator_loss(self, batch):
        fake = self(self.sample_z(batch["image"].shape[0])).detach()
        loss = discriminator_adversarial_loss(self.D(batch["image"].flatten(1)), self.D(fake.flatten(1)), "vanilla")
        return loss, {"D_adv": float(loss.detach())}
'''

MODEL_MODULE = '''
import vgzoo
from fake_task_mod import FakeInpainter

fake_inpainter = vgzoo.register_model(
    "fake_inpainter", FakeInpainter, family="fake", task="inpainting_fake",
    cfgs={"input_size": (1, 8, 8), "mean": (0.5,), "std": (0.5,), "paper": "none"})
'''


def _fake_dist(root: Path, dist: str, groups: dict[str, dict[str, str]], modules: dict[str, str]) -> None:
    info = root / f"{dist.replace('-', '_')}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    lines = [line for group, eps in groups.items() for line in (f"[{group}]", *(f"{k} = {v}" for k, v in eps.items()))]
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n")
    for module, source in modules.items():
        (root / f"{module}.py").write_text(source)


@pytest.fixture(scope="module")
def fakes(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("fake_tasks")
    _fake_dist(root, "vgzoo-fake-task", {"vgzoo.tasks": {"inpainting_fake": "fake_task_mod:inpainting_fake"},
                                         "vgzoo.models": {"fake_inpainter": "fake_model_mod:fake_inpainter"}},
               {"fake_task_mod": TASK_MODULE, "fake_model_mod": MODEL_MODULE})
    _fake_dist(root, "vgzoo-broken-task", {"vgzoo.tasks": {"broken_fake": "broken_task_mod:task"}},
               {"broken_task_mod": 'raise RuntimeError("boom from a broken task plugin")\n'})
    _fake_dist(root, "vgzoo-exiting-task", {"vgzoo.tasks": {"exiting_fake": "exiting_task_mod:task"}},
               {"exiting_task_mod": "import sys\nsys.exit(3)\n"})
    _fake_dist(root, "vgzoo-thief-task", {"vgzoo.tasks": {"classification": "thief_task_mod:task"}},
               {"thief_task_mod": "raise AssertionError('a built-in name is never loaded from a plugin')\n"})
    return root


def _python(code: str, root: Path) -> dict:
    parts = [str(root)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(parts), "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=root, env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_builtin_tasks_name_their_parts():
    assert tasks.list_tasks()[:6] == list(tasks.TASK_NAMES)
    from vgzoo.augment import paired_pipeline
    from vgzoo.data import AlignedDataset, ImagesOnly, create_dataset
    from vgzoo.protocols import GANModel, Translator
    from vgzoo.train.recipes import Pix2PixRecipe, recipe_for

    p2p = tasks.get_task("paired_translation")
    assert p2p.dataset_class() is AlignedDataset and p2p.transform_factory() is paired_pipeline
    assert p2p.recipe_class() is Pix2PixRecipe is recipe_for("paired_translation")
    assert p2p.protocol_classes() == (GANModel, Translator) and p2p.builtin_view is None
    assert tasks.get_task("unaligned_translation").name == "unpaired_translation"  # an alias
    assert tasks.get_task("restoration").builtin_view == "images"
    assert isinstance(create_dataset("builtin:digits", "restoration"), ImagesOnly)
    with pytest.raises(tasks.UnknownTaskError, match="known tasks: classification") as info:
        tasks.get_task("segmentation")
    assert isinstance(info.value, VgzooError) and isinstance(info.value, ValueError)
    with pytest.raises(TypeError, match="generator_loss"):
        tasks.get_task("generation").check_model(object())


def test_a_plugin_task_is_listed_lazily_and_trains_a_plugin_model(fakes, tmp_path):
    out = _python(f"""
        import json, sys
        from vgzoo import tasks
        names = tasks.list_tasks()
        lazy = "fake_task_mod" not in sys.modules
        task = tasks.get_task("inpainting_fake")
        import vgzoo
        from vgzoo.data import create_dataset
        from vgzoo.train import fit
        from vgzoo.train.recipes import recipe_for
        ds = create_dataset("builtin:digits", "inpainting_fake")
        model = vgzoo.create("fake_inpainter")
        res = fit(model, ds, {str(tmp_path / 'run')!r}, steps=2, progress=False, log=lambda m: None,
                  options={{"threads": 1}})
        cfg = json.load(open({str(tmp_path / 'run' / 'config.json')!r}))
        task.check_model(model)
        print(json.dumps({{"names": names, "lazy": lazy, "item": sorted(ds[0]), "recipe": recipe_for(
            "inpainting_fake").__name__, "steps": res.step, "cfg_recipe": cfg["recipe"], "task": cfg["task"],
            "rows": sum(1 for _ in open({str(tmp_path / 'run' / 'metrics.jsonl')!r}))}}))
    """, fakes)
    assert "inpainting_fake" in out["names"] and out["lazy"]
    assert out["item"] == ["image"] and out["recipe"] == "InpaintingRecipe"
    assert out["steps"] == 2 and out["cfg_recipe"] == "InpaintingRecipe" and out["task"] == "inpainting_fake"
    assert out["rows"] >= 2


def test_broken_exiting_and_name_stealing_task_plugins_are_reported(fakes):
    out = _python("""
        import json
        from vgzoo import tasks
        from vgzoo.errors import PluginError
        report = {r["name"]: r for r in tasks.plugin_tasks()}
        try:
            tasks.get_task("broken_fake")
            raised = ""
        except PluginError as exc:
            raised = str(exc)
        print(json.dumps({"report": report, "raised": raised, "builtin": tasks.get_task("classification").distribution,
                          "is_task": tasks.is_task("exiting_fake")}))
    """, fakes)
    report = out["report"]
    assert report["inpainting_fake"]["status"] == "ok"
    assert report["broken_fake"]["status"] == "error"
    assert "boom from a broken task plugin" in report["broken_fake"]["error"]
    assert report["exiting_fake"]["status"] == "error" and "SystemExit" in report["exiting_fake"]["error"]
    assert report["classification"]["status"] == "error" and "built-in" in report["classification"]["error"]
    assert "vgzoo-broken-task" in out["raised"] and out["builtin"] == "vgzoo" and out["is_task"] is False


def test_vgzoo_plugins_reports_task_plugins(fakes):
    parts = [str(fakes)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(parts), "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-m", "vgzoo", "plugins", "--json"], cwd=fakes, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    rows = {r["name"]: r for r in json.loads(proc.stdout)}
    assert rows["inpainting_fake (task)"]["status"] == "ok" and rows["fake_inpainter"]["status"] == "ok"
    assert rows["broken_fake (task)"]["status"] == "error" and "boom" in rows["broken_fake (task)"]["error"]


def test_a_recipe_may_change_engine_defaults_but_only_of_engine_options():
    from vgzoo.train.recipes import GANRecipe

    class EmaByDefault(GANRecipe):
        engine_defaults = {"ema": True, "ema_decay": 0.9999}

    assert EmaByDefault.engine_defaults["ema"] is True and GANRecipe.engine_defaults == {}
    with pytest.raises(TypeError, match=r"engine_defaults names \['d_steps'\], which are not engine options"):
        type("Misplaced", (GANRecipe,), {"engine_defaults": {"d_steps": 2}})
