"""Write a network snapshot in the reference's pickle format, from key/shape lists, without the reference's code.

A StyleGAN2-ADA snapshot is a pickle of ``{"G", "D", "G_ema", "augment_pipe", "training_set_kwargs"}`` whose
networks reduce to ``torch_utils.persistence._reconstruct_persistent_obj(meta)`` with
``meta = {"type": "class", "version", "module_src", "class_name", "state"}``; ``state`` is the module's
``__dict__`` (``_init_args``, ``_init_kwargs``, ``_parameters``, ``_buffers``, ``_modules``, ...) and tensors pickle
the way torch pickles them in memory (``_rebuild_parameter`` / ``_rebuild_tensor_v2`` over
``torch.storage._load_from_bytes``). This writer produces that byte layout from ``published_shapes.json``'s key
lists with random values; the embedded ``module_src`` is an inert comment.
"""

from __future__ import annotations

import contextlib
import pickle
import sys
import types
from collections import OrderedDict
from typing import Any

import torch

BUFFERS = ("resample_filter", "noise_const", "w_avg")
_CLASS_OF_CHILD = {"mapping": "MappingNetwork", "synthesis": "SynthesisNetwork", "torgb": "ToRGBLayer",
                   "affine": "FullyConnectedLayer", "embed": "FullyConnectedLayer", "fc": "FullyConnectedLayer",
                   "out": "FullyConnectedLayer", "fromrgb": "Conv2dLayer", "skip": "Conv2dLayer"}


def _reconstruct_persistent_obj(meta):  # the name the pickle records; never called by vgzoo
    raise AssertionError("a stand-in for the reference's loader; vgzoo must not call it")


class _Persistent:
    def __init__(self, class_name: str, state: dict[str, Any]) -> None:
        self.class_name, self.state = class_name, state

    def __reduce__(self):
        meta = dict(type="class", version=6, module_src="# the reference's module source would be here\n",
                    class_name=self.class_name, state=self.state)
        return (_reconstruct_persistent_obj, (meta,))


def _module_state(init_kwargs: dict[str, Any] | None) -> dict[str, Any]:
    return {"training": False, "_parameters": OrderedDict(), "_buffers": OrderedDict(),
            "_non_persistent_buffers_set": set(), "_forward_hooks": OrderedDict(),
            "_forward_pre_hooks": OrderedDict(), "_modules": OrderedDict(),
            "_init_args": (), "_init_kwargs": dict(init_kwargs or {})}


def _child_class(name: str, top: str) -> str:
    if name.startswith("b") and name[1:].isdigit():
        return "SynthesisBlock" if top == "Generator" else "DiscriminatorBlock"
    if name.startswith("conv"):
        return "SynthesisLayer" if top == "Generator" else "Conv2dLayer"
    return _CLASS_OF_CHILD.get(name.rstrip("0123456789"), "Module")


def network(class_name: str, init_kwargs: dict[str, Any], shapes: dict[str, list[int]],
            generator: torch.Generator) -> _Persistent:
    """A persistent record holding a random tensor of each shape under each key."""
    root = _Persistent(class_name, _module_state(init_kwargs))
    for key, shape in shapes.items():
        *path, leaf = key.split(".")
        node = root
        for name in path:
            modules = node.state["_modules"]
            if name not in modules:
                modules[name] = _Persistent(_child_class(name, class_name), _module_state(None))
            node = modules[name]
        value = torch.randn(shape, generator=generator) * 0.1
        if leaf in BUFFERS:
            node.state["_buffers"][leaf] = value
        else:
            node.state["_parameters"][leaf] = torch.nn.Parameter(value, requires_grad=False)
    return root


@contextlib.contextmanager
def persistence_module():
    """``torch_utils.persistence`` exists while pickling, so the reduce function pickles under the reference's name."""
    package, module = types.ModuleType("torch_utils"), types.ModuleType("torch_utils.persistence")
    _reconstruct_persistent_obj.__module__ = "torch_utils.persistence"
    module._reconstruct_persistent_obj = _reconstruct_persistent_obj
    package.persistence = module
    saved = {name: sys.modules.get(name) for name in ("torch_utils", "torch_utils.persistence")}
    sys.modules.update({"torch_utils": package, "torch_utils.persistence": module})
    try:
        yield
    finally:
        for name, old in saved.items():
            if old is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = old


def write_snapshot(published: dict[str, Any], seed: int = 0) -> bytes:
    """The pickle bytes of a snapshot of one ``published_shapes.json`` configuration (G, D, G_ema: random values)."""
    g = torch.Generator().manual_seed(seed)
    G = network("Generator", published["G_init_kwargs"], published["G_ema"], g)
    D = network("Discriminator", published["D_init_kwargs"], published["D"], g)
    G_ema = network("Generator", published["G_init_kwargs"], published["G_ema"], g)
    data = {"G": G, "D": D, "G_ema": G_ema, "augment_pipe": None,
            "training_set_kwargs": {"class_name": "training.dataset.ImageFolderDataset", "resolution":
                                    published["G_init_kwargs"]["img_resolution"]}}
    with persistence_module():
        return pickle.dumps(data, protocol=pickle.HIGHEST_PROTOCOL)
