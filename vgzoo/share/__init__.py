"""Sharing a model: its model card (README.md), publishing to the Hugging Face Hub and a local demo page.

:func:`save_pretrained` (``vgzoo.save_pretrained``) writes a model folder with its card; :func:`push_to_hub` backs
``vgzoo push``
and :func:`~vgzoo.share.demo.build_demo` backs ``vgzoo demo``. Gradio (the demo) is imported only there.
"""

from __future__ import annotations

from .card import build_model_card, save_pretrained, write_model_card
from .push import push_to_hub, resolve_model_dir

__all__ = ["build_model_card", "save_pretrained", "write_model_card", "push_to_hub", "resolve_model_dir"]
