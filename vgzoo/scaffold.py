"""The plugin scaffold behind ``vgzoo plugins new NAME [--dir D]``.

:func:`new_plugin` writes a ready, installable plugin package whose distribution name is ``NAME``: a
``pyproject.toml`` declaring the ``vgzoo.models`` entry point, a model module with one registered
factory (a small unconditional GAN of the ``generation`` task, after Goodfellow et al. 2014,
"Generative Adversarial Nets") that passes :func:`vgzoo.testing.check_model`, a test that runs the
conformance kit, a README and a ``.gitignore``. ``pip install -e D/NAME`` makes the model appear in
``vgzoo list`` and ``vgzoo plugins``.

Importing this module is cheap (no torch): the scaffold only writes text files.
"""

from __future__ import annotations

import importlib.util
import keyword
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from string import Template

from ._version import __version__
from .errors import VgzooError

__all__ = ["ScaffoldError", "ScaffoldExistsError", "PluginScaffold", "plugin_names", "new_plugin"]

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
        raise ScaffoldError(f"plugin name {name!r} gives the package name {package!r}, a Python keyword; choose another name.")
    if model is None:
        model = package.removeprefix("vgzoo_") or package
    if not _MODEL_NAME.match(model) or keyword.iskeyword(model):
        raise ScaffoldError(
            f"model name {model!r} is not usable: a model name is also its factory's Python name, so it must be "
            "a lower-case identifier (letters, digits, '_', starting with a letter), for example 'mygan_small'. "
            "Pass another one with --model."
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
        ScaffoldError: an invalid name, a package name that would shadow an importable module, or a
            model name an installed distribution already provides.
        ScaffoldExistsError: ``directory/name`` already exists (nothing is overwritten).
    """
    from ._registry import entry_points

    dist, package, model_name = plugin_names(name, model)
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
        "family": model_name,
        "class_name": "".join(part.capitalize() for part in model_name.split("_") if part) + "Model",
        "vgzoo_version": __version__,
    }
    files = {
        "pyproject.toml": _PYPROJECT,
        "README.md": _README,
        ".gitignore": _GITIGNORE,
        f"{package}/__init__.py": _INIT,
        f"{package}/model.py": _MODEL,
        f"tests/test_{package}.py": _TEST,
    }
    # Write into a hidden sibling folder and rename it into place, so a failure leaves nothing half-written.
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.parent / f".{dist}.{os.urandom(6).hex()}"
    staging.mkdir()  # not mkdtemp, whose folders are 0700: the package folder follows the umask like any other
    try:
        for rel, template in files.items():
            path = staging / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(Template(template).substitute(values), encoding="utf-8")
        os.rename(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return PluginScaffold(
        path=target, distribution=dist, package=package, model=model_name, files=[target / rel for rel in files]
    )


_PYPROJECT = """\
[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "${dist}"
version = "0.1.0"
description = "A vgzoo plugin providing the ${model} model."
readme = "README.md"
requires-python = ">=3.10"
dependencies = ["vgzoo>=${vgzoo_version}", "torch>=2.4"]

[project.optional-dependencies]
test = ["pytest>=8"]

# How vgzoo finds the model: group vgzoo.models, name = model name = factory function name.
# Add one line per model you register.
[project.entry-points."vgzoo.models"]
${model} = "${package}.model:${model}"

[tool.setuptools.packages.find]
include = ["${package}*"]

[tool.pytest.ini_options]
testpaths = ["tests"]
"""

_INIT = '''\
"""${dist}: a vgzoo plugin. vgzoo finds its models through the vgzoo.models entry points in pyproject.toml."""

__version__ = "0.1.0"
'''

_MODEL = '''\
"""${model}: a small unconditional GAN (Goodfellow et al. 2014, "Generative Adversarial Nets", arXiv:1406.2661).

Scaffolded by `vgzoo plugins new`. Replace the networks with your own and name your paper here: vgzoo's
convention is that every model module says which paper it implements.

The model protocol (what vgzoo's trainer, CLI and conformance kit rely on):
- a factory decorated with @register_model whose function name equals its entry-point name;
- keyword-only factory arguments with defaults (create() names them on a typo);
- model.pretrained_cfg with input_size (C, H, W), mean, std (what the built model knows of itself);
- example_inputs(batch_size) for forward; for GANs also example_batch, generator_parameters,
  discriminator_parameters, generator_loss(batch) and discriminator_loss(batch) -> (loss, logs floats).
"""

from __future__ import annotations

import torch
from torch import nn

from vgzoo import register_model
from vgzoo.losses import GAN_MODES, discriminator_adversarial_loss, generator_adversarial_loss


class ${class_name}(nn.Module):
    """An MLP generator (z -> image in [-1, 1]) and an MLP discriminator (image -> one logit)."""

    def __init__(self, img_size: int, in_chans: int, nz: int, width: int, gan_mode: str) -> None:
        super().__init__()
        if gan_mode not in GAN_MODES:
            raise ValueError(f"${model}: gan_mode={gan_mode!r} is not one of {GAN_MODES}; pick one of those.")
        self.img_size, self.in_chans, self.nz, self.gan_mode = img_size, in_chans, nz, gan_mode
        pixels = in_chans * img_size * img_size
        self.generator = nn.Sequential(
            nn.Linear(nz, width),
            nn.ReLU(),
            nn.Linear(width, pixels),
            nn.Tanh(),
            nn.Unflatten(1, (in_chans, img_size, img_size)),
        )
        self.discriminator = nn.Sequential(
            nn.Flatten(), nn.Linear(pixels, width), nn.LeakyReLU(0.2), nn.Linear(width, 1)
        )
        self.pretrained_cfg = {
            "input_size": (in_chans, img_size, img_size),
            "mean": (0.5,) * in_chans,
            "std": (0.5,) * in_chans,
            "nz": nz,
        }

    def sample_noise(self, batch_size: int) -> torch.Tensor:
        device = next(self.parameters()).device
        return torch.randn(batch_size, self.nz, device=device)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Images in [-1, 1] of shape (B, C, H, W) for latent codes z of shape (B, nz)."""
        return self.generator(z)

    def example_inputs(self, batch_size: int = 2) -> tuple[torch.Tensor]:
        return (self.sample_noise(batch_size),)

    def example_batch(self, batch_size: int = 2) -> dict[str, torch.Tensor]:
        device = next(self.parameters()).device
        shape = (batch_size, self.in_chans, self.img_size, self.img_size)
        return {"image": torch.rand(shape, device=device) * 2 - 1}  # the generation task's batch form

    def generator_parameters(self) -> list[nn.Parameter]:
        return list(self.generator.parameters())

    def discriminator_parameters(self) -> list[nn.Parameter]:
        return list(self.discriminator.parameters())

    def generator_loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        fake = self.generator(self.sample_noise(batch["image"].shape[0]))
        loss = generator_adversarial_loss(self.discriminator(fake), self.gan_mode)
        return loss, {"g_adv": float(loss.detach())}

    def discriminator_loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        real = batch["image"]
        with torch.no_grad():
            fake = self.generator(self.sample_noise(real.shape[0]))
        loss = discriminator_adversarial_loss(self.discriminator(real), self.discriminator(fake), self.gan_mode)
        return loss, {"d_adv": float(loss.detach())}


@register_model(
    family="${family}",
    task="generation",  # one of vgzoo's tasks; the trainer picks its recipe by task
    default_cfg={
        "input_size": (1, 16, 16),
        "mean": (0.5,),
        "std": (0.5,),
        "paper": "Goodfellow et al. 2014, Generative Adversarial Nets (arXiv:1406.2661)",
    },
    test_kwargs={"img_size": 8, "width": 16},  # a tiny configuration for the conformance kit
)
def ${model}(
    *, img_size: int = 16, in_chans: int = 1, nz: int = 32, width: int = 128, gan_mode: str = "vanilla"
) -> ${class_name}:
    """A small MLP GAN for 16x16 images (scaffolded; replace with your model)."""
    return ${class_name}(img_size=img_size, in_chans=in_chans, nz=nz, width=width, gan_mode=gan_mode)
'''

_TEST = '''\
"""${dist}: the model is installed, listed under this distribution and passes vgzoo's conformance kit."""

import re

import vgzoo
import vgzoo.testing


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_listed_under_this_distribution():
    assert "${model}" in vgzoo.list_models()
    info = vgzoo.model_info("${model}")
    assert _canonical(info.distribution) == _canonical("${dist}")
    assert info.task == "generation"


def test_conformance():
    vgzoo.testing.check_model("${model}")


def test_samples_are_images():
    model = vgzoo.create("${model}", img_size=8).eval()
    (z,) = model.example_inputs(batch_size=3)
    images = model(z)
    assert images.shape == (3, 1, 8, 8)
    assert images.min() >= -1 and images.max() <= 1
'''

_README = """\
# ${dist}

A vgzoo plugin providing the model `${model}` (task `generation`), scaffolded by
`vgzoo plugins new ${dist}`.

## Install and check

```bash
pip install -e .              # registers ${model} through the vgzoo.models entry point
vgzoo list '${model}'         # listed, without importing the model
vgzoo plugins                 # ${model}  ${dist}  ok
python -m pytest tests -q     # vgzoo.testing.check_model("${model}") and more
```

## Use

```python
import vgzoo

model = vgzoo.create("${model}")
images = model(*model.example_inputs(batch_size=4))   # (4, 1, 16, 16) in [-1, 1]
```

Train it with `vgzoo train ${model} ...`: the trainer picks the `generation` recipe from the task
declared in `@register_model`.

## Make it yours

- Replace the networks in `${package}/model.py`; keep the protocol methods (see the module docstring).
- Name the paper you implement in the module docstring and in `default_cfg["paper"]`.
- Add more models: one `@register_model` factory each, and one line each under
  `[project.entry-points."vgzoo.models"]` in `pyproject.toml` (entry-point name = factory name).
- Keep `test_kwargs` tiny so `check_model` stays fast.
"""

_GITIGNORE = """\
__pycache__/
*.egg-info/
build/
dist/
"""
