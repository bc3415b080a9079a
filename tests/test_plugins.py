"""The plugin path end to end: broken, clashing and misnamed plugins, lazy listing, and a real installed package.

Every check runs in a subprocess whose ``PYTHONPATH`` holds throwaway ``*.dist-info`` folders (or a
``pip install --target`` folder), so the fakes never leak into this test process's registry.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

GOOD_MODULE = '''
import torch
from torch import nn

import vgzoo


from vgzoo.protocols import ZooModel


class FakeGood(ZooModel):
    """A fake plugin model that works."""

    def __init__(self, num_classes: int = 3):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(4, num_classes))

    def forward(self, x):
        return self.net(x)

    def example_inputs(self, batch_size=2):
        return (torch.zeros(batch_size, 1, 2, 2),)


fake_good = vgzoo.register_model(
    "fake_good", FakeGood, family="fake", task="classification",
    cfgs={"input_size": (1, 2, 2), "mean": (0.0,), "std": (1.0,), "paper": "none", "num_classes": 3})
'''

BROKEN_MODULE = 'raise RuntimeError("boom from a broken plugin")\n'

ALIAS_MODULE = '''
import vgzoo
from vgzoo.protocols import ZooModel


class Never(ZooModel):
    def __init__(self):
        raise AssertionError("never built")

    def example_inputs(self, batch_size=2):
        return ()


fake_real = vgzoo.register_model("fake_real", Never, family="fake", task="classification",
                                 cfgs={"input_size": (1, 2, 2), "mean": (0.0,), "std": (1.0,), "paper": "none"})


def fake_undecorated():
    raise AssertionError("never built: not registered")
'''

TWIN_MODULE = '''
import vgzoo
from vgzoo.protocols import ZooModel


class Never(ZooModel):
    def __init__(self):
        raise AssertionError("a doubly claimed name is never built")

    def example_inputs(self, batch_size=2):
        return ()


fake_twin = vgzoo.register_model("fake_twin", Never, family="fake", task="classification",
                                 cfgs={"input_size": (1, 2, 2), "mean": (0.0,), "std": (1.0,), "paper": "none"})
'''


def _fake_dist(root: Path, dist: str, entry_points: dict[str, str], modules: dict[str, str]) -> None:
    """Write an installed-looking distribution: ``DIST-0.1.dist-info/{METADATA,entry_points.txt}`` + modules."""
    info = root / f"{dist.replace('-', '_')}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    lines = ["[vgzoo.models]", *(f"{name} = {value}" for name, value in entry_points.items())]
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n")
    for module, source in modules.items():
        (root / f"{module}.py").write_text(source)


def _env(*paths: Path) -> dict[str, str]:
    parts = [str(p) for p in paths] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(parts), "HF_HUB_OFFLINE": "1"}
    env.pop("VGZOO_DEBUG", None)
    return env


def _python(code: str, *paths: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=paths[0], env=_env(*paths),
                          capture_output=True, text=True, timeout=300)


def _vgzoo(args: list[str], *paths: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vgzoo", *args], cwd=paths[0], env=_env(*paths),
                          capture_output=True, text=True, timeout=300)


def _ok(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 0, f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    return proc.stdout


@pytest.fixture(scope="module")
def fakes(tmp_path_factory) -> Path:
    """One folder of fake distributions: a good one, a broken one, two claiming one name, misnamed ones."""
    root = tmp_path_factory.mktemp("fake_plugins")
    _fake_dist(root, "vgzoo-fake-good", {"fake_good": "fake_good_mod:fake_good"}, {"fake_good_mod": GOOD_MODULE})
    _fake_dist(root, "vgzoo-fake-broken", {"fake_broken": "fake_broken_mod:fake_broken"},
               {"fake_broken_mod": BROKEN_MODULE})
    _fake_dist(root, "vgzoo-fake-twin-a", {"fake_twin": "fake_twin_a:fake_twin"}, {"fake_twin_a": TWIN_MODULE})
    _fake_dist(root, "vgzoo-fake-twin-b", {"fake_twin": "fake_twin_b:fake_twin"}, {"fake_twin_b": TWIN_MODULE})
    _fake_dist(root, "vgzoo-fake-alias",
               {"fake_alias": "fake_alias_mod:fake_real", "fake_undecorated": "fake_alias_mod:fake_undecorated"},
               {"fake_alias_mod": ALIAS_MODULE})
    return root


@pytest.fixture(scope="module")
def plugins_report(fakes) -> list[dict]:
    """``vgzoo plugins --json`` with the fakes installed (run once: it imports every model module)."""
    return json.loads(_ok(_vgzoo(["plugins", "--json"], fakes)))


def _rows(report: list[dict], name: str) -> list[dict]:
    return [r for r in report if r["name"] == name]


# (1) a plugin whose module raises on import -------------------------------------------------------------------

def test_broken_plugin_is_listed_and_reported_by_name_without_breaking_the_zoo(fakes):
    out = _ok(_python("""
        import json
        import vgzoo
        names = vgzoo.list_models()
        errors = []
        for _ in range(2):  # the failure is remembered, and reported the same way again
            try:
                vgzoo.create("fake_broken")
            except vgzoo.PluginError as exc:
                errors.append({"msg": str(exc), "cause": repr(exc.__cause__),
                               "is_import_error": isinstance(exc, ImportError)})
        good = vgzoo.create("fake_good")
        print(json.dumps({"names": names, "errors": errors, "good": good.pretrained_cfg["architecture"]}))
    """, fakes))
    result = json.loads(out)
    assert {"fake_broken", "fake_good"} <= set(result["names"])
    assert len(result["errors"]) == 2
    for err in result["errors"]:
        assert "vgzoo-fake-broken" in err["msg"]  # the distribution
        assert "fake_broken_mod:fake_broken" in err["msg"]  # the entry point
        assert "boom from a broken plugin" in err["msg"] and "RuntimeError" in err["msg"]  # the original exception
        assert "boom from a broken plugin" in err["cause"]
        assert err["is_import_error"]
    assert result["good"] == "fake_good"


def test_broken_plugin_in_cli_list_and_plugins(fakes, plugins_report):
    listed = _ok(_vgzoo(["list", "fake_*"], fakes)).split()
    assert listed == sorted(["fake_alias", "fake_broken", "fake_good", "fake_twin", "fake_undecorated"])
    (row,) = _rows(plugins_report, "fake_broken")
    assert row["status"] == "error" and row["distribution"] == "vgzoo-fake-broken"
    assert "boom from a broken plugin" in row["error"]
    (good,) = _rows(plugins_report, "fake_good")
    assert good["status"] == "ok" and good["distribution"] == "vgzoo-fake-good"


def test_create_of_broken_plugin_on_the_cli_is_one_line(fakes):
    proc = _vgzoo(["info", "fake_broken"], fakes)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert proc.stderr.startswith("error: ") and "vgzoo-fake-broken" in proc.stderr


# (2) two distributions claiming one name ----------------------------------------------------------------------

def test_two_distributions_claiming_one_name(fakes, plugins_report):
    rows = _rows(plugins_report, "fake_twin")
    assert sorted(r["distribution"] for r in rows) == ["vgzoo-fake-twin-a", "vgzoo-fake-twin-b"]
    assert all(r["status"] == "error" for r in rows)
    out = _ok(_python("""
        import vgzoo
        assert vgzoo.list_models("fake_twin") == ["fake_twin"]
        try:
            vgzoo.create("fake_twin")
        except vgzoo.PluginError as exc:
            print(exc)
        else:
            raise SystemExit("create of a doubly claimed name did not raise")
        vgzoo.create("fake_good")  # the rest of the zoo still works
    """, fakes))
    assert "vgzoo-fake-twin-a" in out and "vgzoo-fake-twin-b" in out
    assert "fake_twin_a:fake_twin" in out and "fake_twin_b:fake_twin" in out


# (3) an entry point whose name is not the factory's registered name --------------------------------------------

def test_entry_point_name_must_equal_registered_factory_name(fakes, plugins_report):
    out = _ok(_python("""
        import vgzoo
        for name in ("fake_alias", "fake_undecorated"):
            try:
                vgzoo.create(name)
            except vgzoo.PluginError as exc:
                print(name, "|", exc)
            else:
                raise SystemExit(f"create({name!r}) did not raise")
    """, fakes))
    alias, undecorated = out.strip().splitlines()
    assert alias.startswith("fake_alias |") and "'fake_real'" in alias and "vgzoo-fake-alias" in alias
    assert "register_model" in alias
    assert undecorated.startswith("fake_undecorated |") and "not registered" in undecorated
    assert {r["status"] for r in _rows(plugins_report, "fake_alias")} == {"error"}


# (4) listing is lazy ---------------------------------------------------------------------------------------------

def test_listing_imports_neither_torch_nor_numpy_nor_model_modules(fakes):
    out = json.loads(_ok(_python("""
        import json, sys
        import vgzoo
        from vgzoo._registry import entry_points, loaded_modules
        from vgzoo.cli import cli
        names = vgzoo.list_models()
        vgzoo.list_models("fake_*")
        cli.main(["list"], standalone_mode=False)
        heavy = sorted(m for m in ("torch", "numpy", "timm", "kornia") if m in sys.modules)
        modules = sorted({r.module for recs in entry_points().values() for r in recs})
        print(json.dumps({"heavy": heavy, "loaded": loaded_modules(), "modules": modules, "n": len(names)}))
    """, fakes)).splitlines()[-1])
    assert out["heavy"] == []
    assert out["loaded"] == []
    assert "fake_broken_mod" in out["modules"]  # the check covers the fakes, not an empty registry
    assert out["n"] >= 5


# (5) a real plugin package installed with pip ---------------------------------------------------------------------

REAL_PYPROJECT = """
[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "vgzoo-tiny-real-plugin"
version = "0.3.0"
dependencies = ["vgzoo"]

[project.entry-points."vgzoo.models"]
tinyreal_net = "tinyreal.models:tinyreal_net"

[tool.setuptools]
packages = ["tinyreal"]
"""

REAL_MODULE = '''
"""A tiny classifier shipped by a real (pip-installed) plugin package."""
import torch
from torch import nn

import vgzoo
from vgzoo.protocols import Classifier, ZooModel


class TinyNet(ZooModel, Classifier):
    """A tiny real plugin model."""

    def __init__(self, num_classes: int = 5):
        super().__init__()
        self.num_classes = num_classes
        self.fc = nn.Linear(12, num_classes)
        self.pretrained_cfg = {"num_classes": num_classes}

    def forward_features(self, x):
        return x.flatten(1)

    def forward_head(self, x, pre_logits=False):
        return x if pre_logits else self.fc(x)

    def forward(self, x):
        return self.forward_head(self.forward_features(x))

    def reset_classifier(self, num_classes):
        self.fc = nn.Linear(12, num_classes)
        self.num_classes = num_classes

    def example_inputs(self, batch_size=2):
        return (torch.randn(batch_size, 3, 2, 2),)


tinyreal_net = vgzoo.register_model(
    "tinyreal_net", TinyNet, family="tinyreal", task="classification",
    cfgs={"input_size": (3, 2, 2), "mean": (0.5,) * 3, "std": (0.5,) * 3, "paper": "none"},
    test_kwargs={"num_classes": 2})
'''


def pip_install_target(source: Path, target: Path) -> None:
    """``pip install --no-deps --no-build-isolation --no-index --target TARGET SOURCE`` (offline, seconds)."""
    pytest.importorskip("setuptools")
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--no-index",
         "--disable-pip-version-check", "--target", str(target), str(source)],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, f"pip install failed:\n{proc.stdout}\n{proc.stderr}"


def test_real_plugin_package_installed_with_pip_is_listed_and_built(tmp_path):
    src = tmp_path / "src"
    (src / "tinyreal").mkdir(parents=True)
    (src / "pyproject.toml").write_text(REAL_PYPROJECT)
    (src / "tinyreal" / "__init__.py").write_text("")
    (src / "tinyreal" / "models.py").write_text(REAL_MODULE)
    site = tmp_path / "site"
    pip_install_target(src, site)
    assert list(site.glob("vgzoo_tiny_real_plugin-0.3.0.dist-info"))

    result = json.loads(_ok(_python("""
        import json, sys
        import vgzoo, vgzoo.testing
        listed = vgzoo.list_models("tinyreal_*")
        lazy = "tinyreal.models" not in sys.modules
        info = vgzoo.model_info("tinyreal_net")
        model = vgzoo.create("tinyreal_net", num_classes=4)
        vgzoo.testing.check_model("tinyreal_net")
        print(json.dumps({"listed": listed, "lazy": lazy, "dist": info.distribution, "ep": info.entry_point,
                          "cfg": model.pretrained_cfg, "out": list(model(*model.example_inputs()).shape)}))
    """, site)).splitlines()[-1])
    assert result["listed"] == ["tinyreal_net"] and result["lazy"]
    assert result["dist"] == "vgzoo-tiny-real-plugin"
    assert result["ep"] == "tinyreal.models:tinyreal_net"
    assert result["cfg"]["architecture"] == "tinyreal_net" and result["cfg"]["num_classes"] == 4
    assert result["out"] == [2, 4]
    assert "tinyreal_net" in _ok(_vgzoo(["list"], site)).split()
