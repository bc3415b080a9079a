"""Sharing a model: its model card (README.md), publishing to the Hugging Face Hub and a local demo page.

:func:`write_model_card` is called by :func:`vgzoo.save_pretrained`; :func:`push_to_hub` backs ``vgzoo push``
and :func:`~vgzoo.share.demo.build_demo` backs ``vgzoo demo``. Gradio (the demo) is imported only there.
"""

from __future__ import annotations

from .card import build_model_card, write_model_card
from .push import push_to_hub, resolve_model_dir

__all__ = ["build_model_card", "write_model_card", "push_to_hub", "resolve_model_dir"]
