"""The generated docs (CLI reference, model table) match the code."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[1]


def test_generated_docs_are_current():
    proc = subprocess.run(
        [sys.executable, str(ROOT / "docs" / "generate.py"), "--check"], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr + "\nRun `python docs/generate.py` and commit the result."


def test_cli_reference_covers_every_command():
    sys.path.insert(0, str(ROOT / "docs"))
    try:
        import generate
    finally:
        sys.path.pop(0)
    text = generate.cli_reference()
    for command in ("vgzoo list", "vgzoo info", "vgzoo plugins", "vgzoo convert"):
        assert f"## `{command}`" in text


def test_plugins_page_documents_every_protocol_class_and_method():
    """docs/plugins.md carries each class of vgzoo.protocols with its methods, and the registration API."""
    import inspect

    from vgzoo import _registry, protocols

    text = (ROOT / "docs" / "plugins.md").read_text()
    for name in protocols.__all__:
        cls = getattr(protocols, name)
        if not isinstance(cls, type):
            continue
        assert f"### `{name}" in text, name
        for attr, value in cls.__dict__.items():
            if inspect.isfunction(value) and not attr.startswith("_"):
                assert f"`{attr}(" in text, f"{name}.{attr}"
    for field in _registry.PretrainedCfg.__dataclass_fields__:
        assert f"| `{field}` |" in text, field
    for param in inspect.signature(_registry.register_model).parameters:
        assert f"    {param}:" in text, param
    assert "`variant(name" in text  # ModelFamily.variant


def test_console_outputs_are_regenerated_from_real_runs():
    """A `<!-- generated:console -->` block gets the real output, so a stale one fails --check."""
    sys.path.insert(0, str(ROOT / "docs"))
    try:
        import generate
    finally:
        sys.path.pop(0)
    stale = "$ vgzoo info vit_b16_scrach\nerror: an old message\n$ echo $?\n0\n"
    fresh = generate.run_console(stale)
    assert fresh.startswith("$ vgzoo info vit_b16_scrach\nerror: Unknown model 'vit_b16_scrach'.")
    assert fresh.endswith("$ echo $?\n1\n")
    page = ROOT / "docs" / "quickstart.md"
    assert "<!-- generated:console -->" in page.read_text()


def test_ci_runs_the_readme_test_command_as_the_readme_states_it():
    """.ci/run takes its install and pytest commands from README.md (through .ci/readme_test_command.py), in a fresh
    virtual environment, and fails loudly when pytest collects nothing."""
    import importlib.util

    import pytest

    spec = importlib.util.spec_from_file_location("readme_test_command", ROOT / ".ci" / "readme_test_command.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    command = module.test_command(readme)
    install, _, run_tests = command.partition(" && ")
    assert install.startswith('pip install -e ".[dev]"') and run_tests.startswith("python -m pytest")
    for plugin in sorted(p.name for p in (ROOT / "plugins").iterdir() if (p / "pyproject.toml").is_file()):
        assert f"-e plugins/{plugin}" in install, f"README's test command does not install plugins/{plugin}"
    printed = subprocess.run([sys.executable, str(ROOT / ".ci" / "readme_test_command.py")], capture_output=True,
                             text=True, timeout=60)
    assert printed.returncode == 0 and printed.stdout.strip() == command
    with pytest.raises(ValueError, match="found 2"):
        module.test_command(readme + f"\n```bash\n{command}\n```\n")
    with pytest.raises(ValueError, match="found 0"):
        module.test_command("no command here")
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "python3 .ci/readme_test_command.py" in ci and "pip install -e" not in ci  # nothing hard-coded
    assert "python3 -m venv --clear" in ci and "system-site-packages" not in ci
    assert '"$status" -eq 5' in ci
