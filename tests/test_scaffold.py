"""``vgzoo plugins new``: name validation, what the scaffold writes, and a scaffold that installs, conforms and
lints."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import vgzoo
from vgzoo.cli import cli
from vgzoo.scaffold import (
    PLACEHOLDERS,
    TEMPLATE_DIR,
    TEMPLATE_FILES,
    ScaffoldError,
    ScaffoldExistsError,
    new_plugin,
    plugin_names,
)

ROOT = Path(__file__).parents[1]
TEMPLATE = ROOT / "vgzoo" / TEMPLATE_DIR


def _ruff(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    if importlib.util.find_spec("ruff") is None:
        pytest.skip("ruff is not installed (pip install -e '.[dev]')")
    return subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120)


def test_names_are_derived_from_the_distribution_name():
    assert plugin_names("vgzoo-my-gan") == ("vgzoo-my-gan", "vgzoo_my_gan", "my_gan")
    assert plugin_names("Cool.GAN_plugin") == ("Cool.GAN_plugin", "cool_gan_plugin", "cool_gan_plugin")
    assert plugin_names("vgzoo-x", model="x_small") == ("vgzoo-x", "vgzoo_x", "x_small")


@pytest.mark.parametrize("name", ["", "-gan", "gan-", "my gan", "my/gan", "gän", "gan!"])
def test_invalid_distribution_names_are_explained(name, tmp_path):
    with pytest.raises(ScaffoldError, match="not a valid distribution name") as info:
        new_plugin(name, tmp_path)
    assert isinstance(info.value, ValueError) and isinstance(info.value, vgzoo.VgzooError)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("name", "model", "match"),
    [
        ("3d-gan", None, "start the name with a letter"),
        ("class", None, "keyword"),
        ("vgzoo-ok", "Bad-Name", "lower-case identifier"),
        ("vgzoo-ok", "for", "lower-case identifier"),
    ],
)
def test_unusable_package_or_model_names(name, model, match, tmp_path):
    with pytest.raises(ScaffoldError, match=match):
        new_plugin(name, tmp_path, model=model)
    assert list(tmp_path.iterdir()) == []


def test_existing_folder_is_never_overwritten(tmp_path):
    (tmp_path / "vgzoo-taken").mkdir()
    (tmp_path / "vgzoo-taken" / "keep.txt").write_text("mine")
    with pytest.raises(ScaffoldExistsError, match="already exists") as info:
        new_plugin("vgzoo-taken", tmp_path)
    assert isinstance(info.value, FileExistsError)
    assert [p.name for p in (tmp_path / "vgzoo-taken").iterdir()] == ["keep.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["vgzoo-taken"]  # no staging folder left behind


def test_model_name_of_an_installed_model_is_refused(tmp_path):
    with pytest.raises(ScaffoldError, match=r"already provided by .*vgzoo"):
        new_plugin("vgzoo-clash", tmp_path, model="vit_b16_scratch")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("model", "clash"), [("nn", "'nn'"), ("register_model", "'register_model'"),
                                              ("g_a_n", "'GANModel'")])
def test_model_or_class_name_that_would_shadow_a_template_name_is_refused(model, clash, tmp_path):
    with pytest.raises(ScaffoldError, match=f"{clash} .*would shadow"):
        new_plugin("vgzoo-shadow", tmp_path, model=model)
    assert list(tmp_path.iterdir()) == []


def test_package_that_would_shadow_an_importable_module_is_refused(tmp_path):
    with pytest.raises(ScaffoldError, match="already importable"):
        new_plugin("click", tmp_path)


def test_scaffold_writes_a_complete_package(tmp_path):
    made = new_plugin("vgzoo-demo-gan", tmp_path / "nested")
    assert made.path == tmp_path / "nested" / "vgzoo-demo-gan"
    assert (made.distribution, made.package, made.model) == ("vgzoo-demo-gan", "vgzoo_demo_gan", "demo_gan")
    rel = sorted(str(p.relative_to(made.path)) for p in made.path.rglob("*") if p.is_file())
    assert rel == sorted([".gitignore", "README.md", "pyproject.toml", "tests/test_vgzoo_demo_gan.py",
                          "vgzoo_demo_gan/__init__.py", "vgzoo_demo_gan/model.py"])
    pyproject = (made.path / "pyproject.toml").read_text()
    assert 'name = "vgzoo-demo-gan"' in pyproject
    assert '[project.entry-points."vgzoo.models"]\ndemo_gan = "vgzoo_demo_gan.model:demo_gan"' in pyproject
    model_src = (made.path / "vgzoo_demo_gan" / "model.py").read_text()
    assert "class DemoGanModel(GANModel, UnconditionalSampler):" in model_src
    assert 'demo_gan = register_model(\n    "demo_gan",\n    DemoGanModel,' in model_src
    assert 'task="generation"' in model_src and 'family="demo_gan"' in model_src
    assert "check_model(\"demo_gan\")" in (made.path / "tests" / "test_vgzoo_demo_gan.py").read_text()
    assert "model = vgzoo.create(\"demo_gan\")" in (made.path / "README.md").read_text()
    for path in made.files:
        text = path.read_text()
        assert "${" not in text, f"unsubstituted field in {path}"
        leftover = [p for p in PLACEHOLDERS if p in text]
        assert not leftover, f"placeholder(s) {leftover} left in {path}"
        if path.suffix == ".py":
            compile(text, str(path), "exec")


def test_template_is_real_files_shipped_as_package_data():
    """Every template file exists in vgzoo's tree and the pyproject ships it; the .py files are valid Python."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    shipped = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["vgzoo"]
    for source in TEMPLATE_FILES:
        path = TEMPLATE / source
        assert path.is_file(), path
        assert any(Path(f"{TEMPLATE_DIR}/{source}").match(glob) for glob in shipped), f"{source} is not package data"
        if source.endswith(".py"):
            compile(path.read_text(), str(path), "exec")
    assert not (TEMPLATE / "__init__.py").exists()  # data, not a package of vgzoo


def test_template_is_ruff_clean_in_the_tree():
    result = _ruff(str(TEMPLATE), cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


def test_generated_plugin_is_ruff_clean(tmp_path):
    """A fresh plugin passes ruff under the lint rules its own pyproject.toml carries (vgzoo's)."""
    made = new_plugin("vgzoo-linted-gan", tmp_path, model="linted_gan_with_a_rather_long_name")
    assert "[tool.ruff.lint]" in (made.path / "pyproject.toml").read_text()
    result = _ruff(".", cwd=made.path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "All checks passed" in result.stdout
    # The check is real: an unused import in the generated model is reported.
    model = made.path / "vgzoo_linted_gan" / "model.py"
    model.write_text(model.read_text().replace("import torch\n", "import torch\nimport os\n", 1))
    assert _ruff(".", cwd=made.path).returncode == 1


def test_pytest_does_not_collect_the_template_inside_vgzoo():
    for args, cwd in (([str(TEMPLATE)], ROOT), (["vgzoo"], ROOT), ([], ROOT / "vgzoo")):
        proc = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *args],
                              cwd=cwd, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 5, proc.stdout + proc.stderr  # 5: no tests collected


def test_cli_plugins_new(tmp_path):
    runner = CliRunner()
    result = runner.invoke(cli, ["plugins", "new", "vgzoo-cli-gan", "--dir", str(tmp_path), "--model", "cligan_small"])
    assert result.exit_code == 0, result.output
    assert "cligan_small" in result.output and "pip install -e" in result.output
    assert (tmp_path / "vgzoo-cli-gan" / "vgzoo_cli_gan" / "model.py").is_file()
    again = runner.invoke(cli, ["plugins", "new", "vgzoo-cli-gan", "--dir", str(tmp_path)])
    assert again.exit_code == 1
    assert "already exists" in again.output
    bad = runner.invoke(cli, ["plugins", "new", "not valid", "--dir", str(tmp_path)])
    assert bad.exit_code == 1 and "not a valid distribution name" in bad.output


def test_scaffold_installs_lists_and_passes_its_own_conformance_test(tmp_path):
    """Build a scaffold, pip-install it into a throwaway target, and run the test it ships (in a subprocess)."""
    from test_plugins import pip_install_target

    made = new_plugin("vgzoo-scaffolded", tmp_path)
    site = tmp_path / "site"
    pip_install_target(made.path, site)
    parts = [str(site)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(parts), "HF_HUB_OFFLINE": "1"}
    listed = subprocess.run([sys.executable, "-m", "vgzoo", "list", "scaffolded*"], cwd=site, env=env,
                            capture_output=True, text=True, timeout=300)
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.split() == ["scaffolded"]
    # The scaffold's own tests: listed under its distribution, check_model passes, samples are images.
    tests = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(made.path / "tests")],
                           cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert "3 passed" in tests.stdout
    # It was the installed copy that was tested: from the same cwd and path, the package resolves into the target.
    find = "import importlib.util as u; print(u.find_spec('vgzoo_scaffolded').origin)"
    where = subprocess.run([sys.executable, "-c", find], cwd=tmp_path, env=env, capture_output=True, text=True,
                           timeout=60)
    assert Path(where.stdout.strip()).parent.parent == site
