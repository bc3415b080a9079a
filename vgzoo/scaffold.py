"""The plugin scaffold behind ``vgzoo plugins new NAME [--dir D]``.

:func:`new_plugin` writes a ready, installable plugin package whose distribution name is ``NAME``: a
``pyproject.toml`` declaring the ``vgzoo.models`` entry point (and vgzoo's lint rules), a model module
with one registered model (a small unconditional GAN of the ``generation`` task, after Goodfellow et
al. 2014, "Generative Adversarial Nets", written against :mod:`vgzoo.protocols`) that passes
:func:`vgzoo.testing.check_model`, a test that runs the conformance kit, a README and a ``.gitignore``.
``pip install -e D/NAME`` makes the model appear in ``vgzoo list`` and ``vgzoo plugins``.

The template is real files, shipped as package data in ``vgzoo/_plugin_template/`` (see
:data:`TEMPLATE_FILES`): its ``.py`` files are valid Python that ruff checks with the rest of vgzoo,
using placeholder identifiers (:data:`PLACEHOLDERS`) that the scaffold replaces with the plugin's
names; the ``.in`` files hold ``${field}`` placeholders (:class:`string.Template`). The folder is data,
not a package: nothing imports it, and pytest is told not to collect its test file.

Importing this module is cheap (no torch): the scaffold only reads and writes text files.
"""

from __future__ import annotations

import ast
import importlib.util
import keyword
import os
import re
import shutil
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from string import Template

from ._version import __version__
from .errors import VgzooError

__all__ = ["ScaffoldError", "ScaffoldExistsError", "PluginScaffold", "plugin_names", "new_plugin", "TEMPLATE_FILES"]

# The template folder inside the vgzoo package (package data) ...
TEMPLATE_DIR = "_plugin_template"
# ... and where each of its files goes in the plugin ({package} is the plugin's package name).
# ruff.toml in that folder only lints the template in vgzoo's tree and is not written.
TEMPLATE_FILES = {
    "pyproject.toml.in": "pyproject.toml",
    "README.md.in": "README.md",
    "gitignore": ".gitignore",
    "package_init.py": "{package}/__init__.py",
    "model.py": "{package}/model.py",
    "test_model.py": "tests/test_{package}.py",
}
# Placeholder identifiers of the template's Python files: the model name, its class, the package.
PLACEHOLDERS = ("template_gan", "TemplateGAN", "template_pkg")
_PLACEHOLDER = re.compile(r"\b(?:" + "|".join(PLACEHOLDERS) + r")\b")

# PEP 508 / packaging: letters, digits, '-', '_', '.', starting and ending with a letter or digit.
_DIST_NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?$")
_MODEL_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


class ScaffoldError(VgzooError, ValueError):
    """A plugin name, model name or target that ``vgzoo plugins new`` cannot use."""


class ScaffoldExistsError(ScaffoldError, FileExistsError):
    """The scaffold's target folder already exists (nothing is overwritten)."""


@dataclass
class PluginScaffold:
    """What :func:`new_plugin` wrote."""

    path: Path
    distribution: str
    package: str
    model: str
    files: list[Path] = field(default_factory=list)


def plugin_names(name: str, model: str | None = None) -> tuple[str, str, str]:
    """``(distribution, package, model)`` names for a plugin called ``name``, validated.

    The package is the distribution name lower-cased with ``-``/``.`` runs turned into ``_``
    (``vgzoo-my-gan`` -> ``vgzoo_my_gan``); the model defaults to the package without a leading
    ``vgzoo_`` (``my_gan``).

    Raises:
        ScaffoldError: ``name`` is not a valid distribution name, gives no usable Python package name,
            or the model name is not a lower-case identifier.
    """
    if not isinstance(name, str) or not _DIST_NAME.match(name):
        raise ScaffoldError(
            f"plugin name {name!r} is not a valid distribution name: expected letters, digits, '-', '_' or '.', "
            "starting and ending with a letter or digit (for example 'vgzoo-my-gan')."
        )
    package = re.sub(r"[-_.]+", "_", name).lower()
    if not package[0].isalpha():
        raise ScaffoldError(
            f"plugin name {name!r} gives the package name {package!r}, which is not a Python identifier; "
            "start the name with a letter (for example 'vgzoo-3d-gan' instead of '3d-gan')."
        )
    if keyword.iskeyword(package):
        raise ScaffoldError(f"plugin name {name!r} gives the package name {package!r}, a Python keyword; "
                            "choose another name.")
    if model is None:
        model = package.removeprefix("vgzoo_") or package
    if not _MODEL_NAME.match(model) or keyword.iskeyword(model):
        raise ScaffoldError(
            f"model name {model!r} is not usable: a model name is also the Python name its registration is bound "
            "to in the plugin's module, so it must be a lower-case identifier (letters, digits, '_', starting with a "
            "letter), for example 'mygan_small'. Pass another one with --model."
        )
    return name, package, model


def new_plugin(name: str, directory: str | os.PathLike = ".", *, model: str | None = None) -> PluginScaffold:
    """Write a ready plugin package ``directory/name`` whose distribution name is ``name``.

    Args:
        name: the distribution name (what ``pip install`` and ``vgzoo plugins`` show), e.g. ``vgzoo-my-gan``.
        directory: the folder to create the package in (created if missing).
        model: the registered model name (default: derived from ``name``, see :func:`plugin_names`).

    Returns:
        What was written: the package folder, the three names and the files.

    Raises:
        ScaffoldError: an invalid name, a package name that would shadow an importable module, a
            model name an installed distribution already provides, or a model (or class) name that
            would shadow a name the template's modules use.
        ScaffoldExistsError: ``directory/name`` already exists (nothing is overwritten).
    """
    from ._registry import entry_points

    dist, package, model_name = plugin_names(name, model)
    class_name = "".join(part.capitalize() for part in model_name.split("_") if part) + "Model"
    taken = template_names()
    for what, value in (("model name", model_name), ("model class name", class_name)):
        if value in taken:
            raise ScaffoldError(
                f"{what} {value!r} (from model name {model_name!r}) would shadow a name the plugin's modules already "
                f"use ({', '.join(sorted(taken))}); pass another model name with --model."
            )
    target = Path(directory) / dist
    if target.exists() or target.is_symlink():
        raise ScaffoldExistsError(
            f"{str(target)!r} already exists; vgzoo plugins new never overwrites. "
            "Choose another NAME or --dir, or remove the folder."
        )
    claimed = entry_points(refresh=True).get(model_name)
    if claimed:
        owners = ", ".join(sorted({r.distribution for r in claimed}))
        raise ScaffoldError(
            f"model name {model_name!r} is already provided by the installed distribution(s) {owners}; two "
            "distributions claiming one name make it unusable. Pass another model name with --model."
        )
    if importlib.util.find_spec(package) is not None:
        raise ScaffoldError(
            f"package name {package!r} (from plugin name {name!r}) is already importable here, so the plugin "
            "would shadow it or be shadowed; choose another NAME (for example 'vgzoo-" + dist + "')."
        )

    values = {
        "dist": dist,
        "package": package,
        "model": model_name,
        "class_name": class_name,
        "vgzoo_version": __version__,
    }
    identifiers = (model_name, class_name, package)  # in the order of PLACEHOLDERS
    rendered = {
        dest.format(package=package): _render(source, values, dict(zip(PLACEHOLDERS, identifiers, strict=True)))
        for source, dest in TEMPLATE_FILES.items()
    }
    # Write into a hidden sibling folder and rename it into place, so a failure leaves nothing half-written.
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.parent / f".{dist}.{os.urandom(6).hex()}"
    staging.mkdir()  # not mkdtemp, whose folders are 0700: the package folder follows the umask like any other
    try:
        for rel, text in rendered.items():
            path = staging / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        os.rename(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return PluginScaffold(
        path=target, distribution=dist, package=package, model=model_name, files=[target / rel for rel in rendered]
    )


def _template_text(source: str) -> str:
    return (files("vgzoo") / TEMPLATE_DIR / source).read_text(encoding="utf-8")


def _render(source: str, values: dict[str, str], identifiers: dict[str, str]) -> str:
    """One template file filled in: ``${name}`` fields in ``.in`` files, placeholder identifiers in ``.py`` files."""
    text = _template_text(source)
    if source.endswith(".in"):
        return Template(text).substitute(values)
    if source.endswith(".py"):
        return _PLACEHOLDER.sub(lambda m: identifiers[m.group(0)], text)
    return text


def template_names() -> set[str]:
    """Names the template's model module binds at module level, where the model and its class are bound too."""
    names: set[str] = set()
    for node in ast.parse(_template_text("model.py")).body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).partition(".")[0] for a in node.names)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name))
    return names - set(PLACEHOLDERS)
