"""A tiny classifier registered at run time, for the core tests (no entry point, no model module).

Importing this module registers ``tiny_core_net``; :func:`unregister` removes it again so the
registry seen by other tests (tests/test_models.py runs over every name) stays clean.
"""

from __future__ import annotations

import torch
from torch import nn

from vgzoo import _registry, register_model
from vgzoo.protocols import Classifier, ZooModel

NAME = "tiny_core_net"


class TinyNet(ZooModel, Classifier):
    """A tiny classifier for the core tests."""

    def __init__(self, in_chans: int = 3, num_classes: int = 5, width: int = 4) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.stem = nn.Conv2d(in_chans, width, 3, padding=1)
        self.head = nn.Linear(width, num_classes)
        self.pretrained_cfg = {"input_size": (in_chans, 8, 8), "num_classes": num_classes}

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.stem(x).relu().mean((2, 3))

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        return x if pre_logits else self.head(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def reset_classifier(self, num_classes: int) -> None:
        self.head = nn.Linear(self.head.in_features, num_classes)
        self.num_classes = num_classes

    def example_inputs(self, batch_size: int = 2) -> tuple[torch.Tensor]:
        return (torch.randn(batch_size, self.stem.in_channels, 8, 8),)


def register(default_cfg_extra: dict | None = None) -> None:
    cfg = {
        "input_size": (3, 8, 8),
        "mean": (0.5, 0.5, 0.5),
        "std": (0.5, 0.5, 0.5),
        "num_classes": 5,
        "paper": "none: a test fixture",
        "classifier": "head",
        "first_conv": "stem",
        **(default_cfg_extra or {}),
    }

    register_model(NAME, TinyNet, family="tiny", task="classification", cfgs=cfg, test_kwargs={"width": 2})


def unregister() -> None:
    _registry._specs.pop(NAME, None)
