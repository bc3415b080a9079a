"""The model contract in code: what every vgzoo model is, and what each capability promises.

Every model (built-in or plugin) subclasses :class:`ZooModel`. Its constructor arguments, defaults
resolved, are captured as ``model.config`` when it is built, so ``save_pretrained`` writes them and
``create("local-dir:...")`` rebuilds the same model (diffusers' ``register_to_config`` is the model
followed, done here by the base class so that no model keeps a hand-written dict). Assigning an
attribute named like a constructor argument after construction (``model.lambda_l1 = 10``,
``reset_classifier`` setting ``num_classes``) updates the config too, so what is saved is what runs.

GAN families subclass :class:`GANModel`; sampling, translation, restoration and classification are
capability classes a model also subclasses. The trainer, recipes, conformance kit, exporter and
benchmarks test them with ``isinstance`` and never probe for attributes.
"""

from __future__ import annotations

import copy
import functools
import inspect
import itertools
import json
from abc import ABC, ABCMeta, abstractmethod
from typing import Any

import torch
from torch import nn

__all__ = [
    "ZooModel",
    "GANModel",
    "LossLogs",
    "Translator",
    "ConditionalSampler",
    "UnconditionalSampler",
    "SeededSampler",
    "Restorer",
    "Classifier",
    "json_normalise",
]


def json_normalise(value: Any, what: str = "value") -> Any:
    """``value`` as JSON would give it back (tuples become lists); a clear TypeError if JSON cannot hold it."""
    try:
        return json.loads(json.dumps(value))
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"{what}={value!r} cannot be stored in config.json ({exc}). Model constructor arguments must be "
            "JSON values (numbers, strings, booleans, None, lists and dicts of them)."
        ) from exc


def _capture_config(init):
    """Wrap ``__init__`` so the outermost call records its bound arguments as the model's config."""
    signature = inspect.signature(init)

    @functools.wraps(init)
    def wrapper(self, *args, **kwargs):
        if "_config" in self.__dict__:  # a parent's __init__ called through super(): the outermost call records
            return init(self, *args, **kwargs)
        bound = signature.bind(self, *args, **kwargs)
        bound.apply_defaults()
        config: dict[str, Any] = {}
        for name, value in list(bound.arguments.items())[1:]:
            kind = signature.parameters[name].kind
            if kind is inspect.Parameter.VAR_KEYWORD:
                config.update(value)
            elif kind is inspect.Parameter.VAR_POSITIONAL:
                if value:
                    raise TypeError(f"{type(self).__name__}: pass constructor arguments by name, not *args.")
            else:
                config[name] = value
        # Set before __init__ runs, so an argument the constructor itself adjusts (an identity weight that
        # cannot apply) is recorded as it ends up.
        object.__setattr__(self, "_config", {k: json_normalise(v, k) for k, v in config.items()})
        object.__setattr__(self, "_config_frozen", False)
        try:
            init(self, *args, **kwargs)
        except BaseException:
            object.__delattr__(self, "_config")
            raise
        object.__setattr__(self, "_config_frozen", True)

    wrapper.__vgzoo_captures_config__ = True
    return wrapper


class ZooModel(nn.Module, metaclass=ABCMeta):
    """Base class of every vgzoo model.

    Subclasses define ``__init__`` with keyword arguments that JSON can hold and set
    ``self.pretrained_cfg`` (a dict of what the built model knows of its inputs: ``input_size``,
    ``mean``, ``std`` and, where they apply, ``num_classes``, ``out_chans``, ...). They implement
    :meth:`example_inputs`.

    A network that takes images of many sizes says which (``vgzoo translate`` pads to them, ``vgzoo export``
    makes height and width dynamic from them): ``size_multiple`` (sides must be multiples of it) and
    ``min_size`` (the smallest side). Translators declare them on what :meth:`Translator.inference_generator`
    returns (the layers' U-Net and ResNet generators do).
    """

    size_multiple: int | None = None
    min_size: int = 1

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        init = cls.__dict__.get("__init__")
        if init is not None and not getattr(init, "__vgzoo_captures_config__", False):
            cls.__init__ = _capture_config(init)

    @property
    def config(self) -> dict[str, Any]:
        """Every constructor argument, defaults resolved: ``type(model)(**model.config)`` rebuilds it."""
        return copy.deepcopy(self.__dict__.get("_config", {}))

    def __setattr__(self, name: str, value: Any) -> None:
        super().__setattr__(name, value)
        config = self.__dict__.get("_config")
        if config is None or name not in config or isinstance(value, (nn.Module, torch.Tensor)):
            return
        if self.__dict__.get("_config_frozen"):
            config[name] = json_normalise(value, name)
            return
        try:  # inside __init__ an attribute may share an argument's name and hold a derived object
            config[name] = json.loads(json.dumps(value))
        except (TypeError, ValueError):
            pass

    @abstractmethod
    def example_inputs(self, batch_size: int = 2) -> tuple[torch.Tensor, ...]:
        """Small inputs for ``forward``, on the model's device."""

    def _device(self) -> torch.device:
        p = next(self.parameters(), None)
        return p.device if p is not None else torch.device("cpu")


LossLogs = dict[str, "torch.Tensor | float"]
"""A loss's log values: detached 0-dim tensors (or numbers). The trainer reads the tensors back to the host
together, every few steps, so a GPU step does not wait for each value; ``float(t)`` would stop it per value."""


class GANModel(ZooModel):
    """A GAN: named generators and discriminators, and the two losses the trainer alternates.

    The model owns its loss weights and image pools; pools (any :class:`vgzoo.losses.ImagePool`
    submodule) are training state that :meth:`training_state` hands to the trainer's checkpoints.
    """

    @abstractmethod
    def generators(self) -> dict[str, nn.Module]:
        """The generator networks by name (e.g. ``{"G_AB": ..., "G_BA": ...}``)."""

    @abstractmethod
    def discriminators(self) -> dict[str, nn.Module]:
        """The discriminator networks by name (e.g. ``{"D_A": ..., "D_B": ...}``)."""

    @abstractmethod
    def generator_loss(self, batch: dict[str, Any]) -> tuple[torch.Tensor, LossLogs]:
        """The generator's loss on ``batch`` and one log value per term (keys ``G_*``; see :data:`LossLogs`)."""

    @abstractmethod
    def discriminator_loss(self, batch: dict[str, Any]) -> tuple[torch.Tensor, LossLogs]:
        """The discriminators' loss on ``batch`` and one log value per term (keys ``D_*``)."""

    @abstractmethod
    def example_batch(self, batch_size: int = 2) -> dict[str, torch.Tensor]:
        """A small training batch of the task's form."""

    def generator_parameters(self) -> list[nn.Parameter]:
        return list(itertools.chain.from_iterable(m.parameters() for m in self.generators().values()))

    def discriminator_parameters(self) -> list[nn.Parameter]:
        return list(itertools.chain.from_iterable(m.parameters() for m in self.discriminators().values()))

    def _pools(self) -> dict[str, nn.Module]:
        from .losses import ImagePool

        return {name: m for name, m in self.named_modules() if isinstance(m, ImagePool)}

    def training_state(self) -> dict[str, torch.Tensor]:
        """The image pools' contents (checkpointed by the trainer, not part of the weights)."""
        return {f"{name}.{k}": v for name, pool in self._pools().items() for k, v in pool.state_tensors().items()}

    def load_training_state(self, tensors: dict[str, torch.Tensor]) -> None:
        """Restore what :meth:`training_state` returned."""
        for name, pool in self._pools().items():
            prefix = f"{name}."
            pool.load_state_tensors({k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)},
                                    self._device())


class Translator(ABC):
    """Image-to-image translation: ``forward(x)`` maps images in [-1, 1] of one domain to the other.

    ``directions`` names what :meth:`inference_generator` can give: the network that does the
    translation on its own (what export and generator-only checkpoints hold).
    """

    directions: tuple[str, ...] = ("AtoB",)

    @abstractmethod
    def inference_generator(self, direction: str = "AtoB") -> nn.Module:
        """The generator that translates in ``direction`` (one of :attr:`directions`)."""

    def check_direction(self, direction: str) -> str:
        if direction not in self.directions:
            raise ValueError(
                f"{type(self).__name__} translates {' and '.join(self.directions)}; got direction={direction!r}."
            )
        return direction


class ConditionalSampler(ABC):
    """Draws images of chosen classes: ``sample(labels)``; ``forward(z, labels)`` is the generator."""

    num_classes: int

    @abstractmethod
    def sample_z(self, batch_size: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``batch_size`` latents on the model's device (reproducible with a ``torch.Generator``)."""

    @abstractmethod
    def sample(self, labels, generator: torch.Generator | None = None) -> torch.Tensor:
        """Images in [-1, 1] of the given classes, one per label."""


class UnconditionalSampler(ABC):
    """Draws images: ``sample(batch_size)``; ``forward(z)`` is the generator."""

    @abstractmethod
    def sample_z(self, batch_size: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``batch_size`` latents on the model's device."""

    @abstractmethod
    def sample(self, batch_size: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``batch_size`` images in [-1, 1]."""


class SeededSampler(ABC):
    """Draws images from integer seeds, the way the family's reference code does (``vgzoo generate --seeds``).

    A seed names one latent: :meth:`latents_for_seeds` must give the latents the reference implementation draws
    for the same seeds (its random generator and its truncation, e.g. StyleGAN's ``RandomState(seed).randn`` or
    BigGAN's truncated normal), so that seed 7 here is seed 7 in the paper's code. :meth:`generate_images` maps
    latents (and class indices, for a class-conditional generator) to images in [-1, 1].

    Attributes:
        default_truncation: the truncation used when none is asked for (1.0: none).
        truncation_name: the reference's word for it, ``"psi"`` or ``"truncation"`` (shown in messages).
        class_names: a name per class index (``--class NAME``), or None.
        num_classes: how many classes the generator takes; None for an unconditional generator (then
            ``len(class_names)`` counts them when names are given).
        cpu_batch_pixels: output pixels per forward pass of ``vgzoo generate --seeds`` on a CPU when the user
            names no batch size; None: :data:`vgzoo.generate.CPU_BATCH_PIXELS`. A family whose activations are
            light per output pixel batches more seeds per call.
    """

    default_truncation: float = 1.0
    truncation_name: str = "truncation"
    class_names: tuple[str, ...] | None = None
    num_classes: int | None = None
    cpu_batch_pixels: int | None = None

    @abstractmethod
    def latents_for_seeds(self, seeds: list[int], truncation: float) -> torch.Tensor:
        """One latent per seed (N, ...) on the model's device, drawn as the reference draws it for that seed."""

    @abstractmethod
    def generate_images(self, z: torch.Tensor, labels: torch.Tensor | None, truncation: float) -> torch.Tensor:
        """Images (N, C, H, W) in [-1, 1] from latents ``z``; ``labels`` (N,) int64 class indices, or None when
        the generator is unconditional."""

    def class_count(self) -> int:
        """The number of classes ``generate_images`` takes; 0 for an unconditional generator."""
        if self.num_classes is not None:
            return int(self.num_classes)
        return len(self.class_names) if self.class_names else 0


class Restorer(ABC):
    """Restores degraded images: ``forward(degraded)``; training degrades clean images itself."""

    @abstractmethod
    def degrade(self, clean: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """A degraded version of ``clean`` (images in [-1, 1]) in the form ``forward`` takes."""

    @abstractmethod
    def restore(self, clean: torch.Tensor, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """Degrade ``clean`` and restore it: at least ``{"degraded", "restored"}``, for pictures and metrics."""


class Classifier(ABC):
    """An image classifier: ``forward(x)`` gives logits; the head can be replaced."""

    num_classes: int

    @abstractmethod
    def reset_classifier(self, num_classes: int) -> None:
        """A fresh head for ``num_classes`` (0 removes it); ``model.config['num_classes']`` follows."""

    @abstractmethod
    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Features before the head."""

    @abstractmethod
    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Logits from :meth:`forward_features`'s output (pooled features with ``pre_logits``)."""
