"""Weights IO, public: safetensors and JSON files, written atomically, read without pickle.

Plugins and scripts use these to save or load a network's weights on their own (a generator for inference,
say) with the same guarantees as ``vgzoo.save_pretrained``: atomic writes, no pickle unless asked for (and then
``torch.load(weights_only=True)``), one clear error per problem. This folder also holds the weights vgzoo ships
(``cgan_embed_digits.safetensors``, the digits classifier).
"""

from .._hub import (
    CONFIG_NAME,
    WEIGHTS_NAME,
    atomic_write,
    atomic_write_json,
    load_into,
    load_state_dict,
    read_config,
    save_state_dict,
)

__all__ = [
    "CONFIG_NAME",
    "WEIGHTS_NAME",
    "atomic_write",
    "atomic_write_json",
    "load_into",
    "load_state_dict",
    "read_config",
    "save_state_dict",
]
