"""Resolving a model's data configuration, the way timm's ``resolve_data_config`` does.

The source is a model built by :func:`vgzoo.create` (its ``pretrained_cfg``), a registered model name (its
default config, read without building the model) or a plain dict. Explicit overrides win over the source,
and the source wins over the task's defaults.
"""

from __future__ import annotations

from typing import Any

from ..tasks import get_task, is_task, list_tasks

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
DEFAULT_CROP_PCT = 0.875

# Keys resolve_config understands; every other create_transform keyword goes to the pipeline.
CONFIG_KEYS = (
    "task",
    "input_size",
    "mean",
    "std",
    "crop_pct",
    "interpolation",
    "num_classes",
    "load_size",
    "crop_size",
    "in_chans",
    "out_chans",
)



def _source_cfg(model_or_cfg: Any) -> dict[str, Any]:
    if isinstance(model_or_cfg, dict):
        return dict(model_or_cfg)
    if isinstance(model_or_cfg, str):
        from .._factory import model_info

        info = model_info(model_or_cfg)
        return {**info.default_cfg, "task": info.task}
    cfg = getattr(model_or_cfg, "pretrained_cfg", None)
    if isinstance(cfg, dict):
        return dict(cfg)
    raise TypeError(
        f"create_transform: expected a model built by vgzoo.create, a model name or a config dict, got "
        f"{type(model_or_cfg).__name__} without a `pretrained_cfg` dict. Pass the config as a dict "
        "(with task, input_size, mean, std)."
    )


def _size_hw(value: Any, name: str) -> tuple[int, int]:
    if isinstance(value, int):
        return value, value
    vals = tuple(int(v) for v in value)
    if len(vals) == 1:
        return vals[0], vals[0]
    if len(vals) in (2, 3):
        return vals[-2], vals[-1]
    raise ValueError(f"{name}={value!r}: expected an int, (H, W) or (C, H, W).")


def resolve_config(model_or_cfg: Any, **overrides: Any) -> dict[str, Any]:
    """The data config a transform is built from.

    Args:
        model_or_cfg: a vgzoo model (its ``pretrained_cfg``), a registered model name, or a config dict.
        **overrides: any of :data:`CONFIG_KEYS`; ``input_size`` may be an int, ``(H, W)`` or ``(C, H, W)``.

    Returns:
        A dict with ``task``, ``input_size`` (C, H, W), ``mean``, ``std``, ``crop_pct``, ``interpolation``,
        ``num_classes`` (or None), ``load_size`` and ``crop_size`` (ints, translation tasks), ``in_chans``
        and ``out_chans``.

    Raises:
        ValueError: no task, an unknown task, or no input size anywhere.
    """
    src = _source_cfg(model_or_cfg)
    src.update({k: v for k, v in overrides.items() if v is not None})
    task = src.get("task")
    if task is None:
        raise ValueError(
            "create_transform: the config names no task. Pass task= (one of " + ", ".join(list_tasks()) + ") "
            "or a model built by vgzoo.create."
        )
    if not is_task(task):
        raise ValueError(f"create_transform: unknown task {task!r}; expected one of {', '.join(list_tasks())}.")

    if "input_size" in src:
        size = src["input_size"]
        if isinstance(size, int) or len(size) < 3:
            chans = int(src.get("in_chans") or 3)
            h, w = _size_hw(size, "input_size")
            input_size = (chans, h, w)
        else:
            input_size = tuple(int(v) for v in size)
    elif "crop_size" in src:
        h, w = _size_hw(src["crop_size"], "crop_size")
        input_size = (int(src.get("in_chans") or 3), h, w)
    else:
        raise ValueError("create_transform: the config has no input_size; pass input_size=(C, H, W).")
    chans = input_size[0]
    gan = get_task(task).stats == "gan"

    cfg: dict[str, Any] = {
        "task": task,
        "input_size": input_size,
        "mean": tuple(src.get("mean") or ((0.5,) * chans if gan else IMAGENET_MEAN[:chans])),
        "std": tuple(src.get("std") or ((0.5,) * chans if gan else IMAGENET_STD[:chans])),
        "crop_pct": float(src.get("crop_pct") or DEFAULT_CROP_PCT),
        "interpolation": str(src.get("interpolation") or "bicubic"),
        "num_classes": src.get("num_classes"),
        "in_chans": int(src.get("in_chans") or chans),
        "out_chans": int(src.get("out_chans") or chans),
    }
    crop = _size_hw(src.get("crop_size", input_size[1:]), "crop_size")[1]
    cfg["crop_size"] = crop
    cfg["load_size"] = _size_hw(src.get("load_size", crop), "load_size")[1]
    if cfg["load_size"] < cfg["crop_size"]:
        raise ValueError(
            f"create_transform: load_size {cfg['load_size']} is smaller than crop_size {cfg['crop_size']}; "
            "the random crop needs load_size >= crop_size."
        )
    return cfg
