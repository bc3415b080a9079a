"""Scaling sweep: how each model's cost grows with the image size, ViT against convnets.

A Vision Transformer ("An Image is Worth 16x16 Words", Dosovitskiy et al., 2021) turns an ``H x W`` image into
``S = HW / P^2`` tokens; each layer's attention costs ``4 S^2 D`` FLOPs against ``24 S D^2`` for its linear layers, so
attention overtakes them at ``S = 6D`` tokens (about 1086 px for ViT-B/16, 543 px for ViT-Ti/16). Convnets (the
CycleGAN ResNet generator, Zhu et al., 2017; the pix2pix U-Net, Isola et al., 2017; ResNet-50, He et al., 2016) cost
linearly in pixels. The sweep times each model over sizes, counts FLOPs (attention analytically, see
:mod:`vgzoo.bench.flops`), measures peak memory (:mod:`vgzoo.bench.memory`), fits log-log exponents and locates
the attention/linear crossover.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from .envelope import declare_rows, envelope, progress_bar
from .fit import crossover, fit_power_law
from .flops import clip_to_peak, count_flops, measure_matmul_peak
from .memory import CPU_MEMORY_METHOD, CUDA_MEMORY_METHOD, profile_call
from .timing import load_note, threads, time_fn

__all__ = ["DEFAULT_MODELS", "DEFAULT_SIZES", "SCALING_ROW_FIELDS", "BenchTarget", "resolve_target", "run_scaling",
           "scaling_fits"]

DEFAULT_MODELS = ("vit_ti16_scratch", "vit_s16_scratch", "cyclegan_resnet6", "resnet50")
DEFAULT_SIZES = (64, 128, 192, 256, 320, 384, 448)

SCALING_ROW_FIELDS = declare_rows("scaling", (
    "model", "kind", "img_size", "tokens", "pixels", "batch_size", "params", "median_s", "iqr_s", "repeats",
    "min_s", "images_per_s", "peak_mem_bytes", "flops", "attention_flops", "linear_flops", "conv_flops",
    "flop_counter_builtin", "attention_flop_share", "attention_time_share", "linear_time_share", "flops_per_s",
    "pct_of_peak",
))

_TIMM_PREFIX = "timm:"


@dataclass
class BenchTarget:
    """A model the sweep can build at a given size.

    Attributes:
        name: The key in the results (``fits`` and ``crossover`` too).
        kind: ``"vit"`` (cost in tokens) or ``"conv"`` (cost in pixels).
        source: ``"vgzoo"`` or ``"timm"``.
        size_multiple: Sizes must be multiples of this.
        in_chans: Input channels.
        patch_size: ViT patch side (``None`` for convnets).
        build: ``size -> nn.Module`` (eval mode, on CPU); ViTs are built once at the largest swept size with
            ``dynamic_img_size=True`` (the position embedding is resampled for smaller inputs, a negligible cost;
            building per size would spend more time initialising weights than measuring).
    """

    name: str
    kind: str
    source: str
    size_multiple: int
    in_chans: int
    patch_size: int | None
    build: Callable[[int], nn.Module]


def _gan_part(model: nn.Module) -> nn.Module:
    """The network a benchmark times: a translator's A->B generator, else the first generator."""
    from ..protocols import GANModel, Translator

    if isinstance(model, Translator):
        return model.inference_generator("AtoB")
    if isinstance(model, GANModel):
        return next(iter(model.generators().values()))
    return model


def resolve_target(name: str) -> BenchTarget:
    """Turn a model name into a :class:`BenchTarget`.

    vgzoo ViTs (family ``vit``) are built with ``img_size`` and ``dynamic_img_size=True``; other vgzoo models are
    measured through their generator (CycleGAN ``G_AB``, pix2pix ``generator``); ``timm:NAME`` (or a name only timm
    knows) is built with ``timm.create_model(NAME, pretrained=False)``.

    Raises:
        vgzoo.UnknownModelError: Neither vgzoo nor timm knows ``name``.
    """
    from .._factory import create, model_info
    from .._registry import list_models
    from ..errors import UnknownModelError

    if not name.startswith(_TIMM_PREFIX) and name in list_models():
        info = model_info(name)
        in_chans = int((info.default_cfg.get("input_size") or (3,))[0])
        if info.family == "vit":
            patch = int(info.default_kwargs.get("patch_size", 16))
            return BenchTarget(name, "vit", "vgzoo", patch, in_chans, patch,
                               lambda size: create(name, img_size=size, dynamic_img_size=True).eval())
        part = _gan_part(create(name).eval())
        multiple = int(getattr(part, "size_multiple", 1) or 1)
        return BenchTarget(name, "conv", "vgzoo", multiple, in_chans, None, lambda size: part)
    timm_name = name[len(_TIMM_PREFIX):] if name.startswith(_TIMM_PREFIX) else name
    import timm

    if not timm.is_model(timm_name):
        raise UnknownModelError(
            f"unknown benchmark model {name!r}: not a vgzoo model ({', '.join(list_models())}) and not a timm "
            f"model; run `vgzoo list` or pass timm:NAME for a timm architecture")
    is_vit = timm_name.startswith(("vit_", "deit"))
    if is_vit:
        def build(size: int) -> nn.Module:
            return timm.create_model(timm_name, pretrained=False, img_size=size, dynamic_img_size=True).eval()
        patch = 16 if "16" in timm_name else (32 if "32" in timm_name else 16)
        return BenchTarget(timm_name, "vit", "timm", patch, 3, patch, build)
    model = timm.create_model(timm_name, pretrained=False).eval()
    return BenchTarget(timm_name, "conv", "timm", 32, 3, None, lambda size: model)


def _select_sizes(target: BenchTarget, sizes: Sequence[int]) -> tuple[list[int], list[int]]:
    ok = [s for s in sizes if s % target.size_multiple == 0 and s >= target.size_multiple]
    return ok, [s for s in sizes if s not in ok]


def run_scaling(
    models: Sequence[str] = DEFAULT_MODELS,
    sizes: Sequence[int] = DEFAULT_SIZES,
    *,
    batch_size: int = 1,
    device: str = "cpu",
    amp_dtype: str | None = None,
    repeats: int = 15,
    min_repeats: int = 5,
    warmup: int = 1,
    budget_s: float | None = 140.0,
    num_threads: int | str | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Time, FLOPs and memory of each model at each valid size; fits and crossovers. Schema: docs/bench.md.

    Args:
        models: vgzoo model names and/or timm names (``timm:NAME`` or a name only timm knows).
        sizes: Square image sides in px; each model keeps the ones that are multiples of its ``size_multiple``.
        batch_size: Images per forward.
        device: ``cpu`` or ``cuda[:i]``.
        amp_dtype: ``None`` for fp32, or ``"bfloat16"``/``"float16"`` autocast.
        repeats: Most timed forwards per point.
        min_repeats: Fewest timed forwards per point, even when over budget.
        warmup: Untimed forwards per point.
        budget_s: Wall-clock budget for the sweep (building, counting and profiling included); repeats shrink to fit
            it, down to ``min_repeats`` (3 once the budget is spent). ``None``: always ``repeats``.
        num_threads: ``torch.set_num_threads`` (``"auto"``: 1 on a busy machine, see
            :func:`vgzoo.bench.timing.resolve_threads`) for the sweep (``None``: torch's default, all cores).
        progress: Show a tqdm progress bar.

    Returns:
        The result document (``kind="scaling"``) with ``rows``, ``fits``, ``crossover``. Ctrl-C stops the sweep and
        returns what was measured so far with ``interrupted=True``.
    """
    with threads(num_threads):
        return _run_scaling(models, sizes, batch_size, device, amp_dtype, repeats, min_repeats, warmup, budget_s,
                            progress)


def _run_scaling(models, sizes, batch_size, device, amp_dtype, repeats, min_repeats, warmup, budget_s, progress):

    started = time.perf_counter()
    if not models:
        raise ValueError("no models to benchmark; pass at least one model name")
    bad = [s for s in sizes if int(s) < 1]
    if not sizes or bad:
        raise ValueError(f"image sizes must be positive integers, got {list(sizes)}")
    dev = torch.device(device)
    autocast_dtype = {None: None, "bfloat16": torch.bfloat16, "float16": torch.float16}.get(amp_dtype, "bad")
    if autocast_dtype == "bad":
        raise ValueError(f"amp_dtype={amp_dtype!r}; expected None, 'bfloat16' or 'float16'")
    doc = envelope("scaling", device=str(dev), dtype=amp_dtype or "float32")
    doc["config"] = {"models": list(models), "sizes": [int(s) for s in sizes], "batch_size": batch_size,
                     "repeats": repeats, "min_repeats": min_repeats, "warmup": warmup, "budget_s": budget_s,
                     "memory_method": CUDA_MEMORY_METHOD if dev.type == "cuda" else CPU_MEMORY_METHOD}
    doc["crossover"] = {}
    if (note := load_note()) is not None:
        doc["notes"].append(note)
    targets: list[BenchTarget] = []
    for name in models:
        try:
            targets.append(resolve_target(name))
        except Exception as exc:  # report and go on: one missing model must not sink the sweep
            doc["notes"].append(f"{name} skipped: {' '.join(str(exc).split())}")
    points: list[tuple[int, BenchTarget]] = []
    largest: dict[str, int] = {}
    for t in targets:
        ok, skipped = _select_sizes(t, [int(s) for s in sizes])
        if skipped:
            doc["notes"].append(f"{t.name}: sizes {skipped} skipped (not multiples of {t.size_multiple})")
        points.extend((s, t) for s in ok)
        if ok:
            largest[t.name] = max(ok)
    points.sort(key=lambda p: p[0])  # size outer, models interleaved: drift in the machine hits every model alike
    doc["matmul_peak_flops"] = peak = measure_matmul_peak(dev, autocast_dtype or torch.float32)
    rows: list[dict[str, Any]] = doc["rows"]
    built: dict[str, nn.Module] = {}
    bar = progress_bar(len(points), "scaling", progress)
    try:
        for i, (size, target) in enumerate(points):
            bar.set_postfix_str(f"{target.name} {size}px")
            if budget_s is None:
                point_budget = None
            else:
                left = budget_s - (time.perf_counter() - started)
                point_budget = max(0.0, left) / (len(points) - i)
            if target.name not in built:
                built[target.name] = target.build(largest[target.name]).to(dev)
            rows.append(_measure(target, built[target.name], size, batch_size, dev, autocast_dtype, repeats,
                                 min_repeats, warmup, point_budget, peak))
            bar.update(1)
    except KeyboardInterrupt:
        doc["interrupted"] = True
    finally:
        bar.close()
    doc["fits"] = scaling_fits(rows)
    doc["crossover"] = _crossovers(rows, targets)
    doc["elapsed_s"] = time.perf_counter() - started
    clip_to_peak(doc)
    return doc


def _measure(target, model, size, batch_size, dev, autocast_dtype, repeats, min_repeats, warmup, budget, peak):
    x = torch.randn(batch_size, target.in_chans, size, size, device=dev)

    def forward():
        with torch.inference_mode(), torch.autocast(dev.type, dtype=autocast_dtype or torch.bfloat16,
                                                    enabled=autocast_dtype is not None):
            return model(x)

    start = time.perf_counter()
    for _ in range(max(1, warmup)):
        forward()
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    one = (time.perf_counter() - start) / max(1, warmup)
    n = repeats
    if budget is not None:
        # the point also pays for a FLOP count and a profiled pass, about one forward each
        extra = 2
        n = max(min_repeats, min(repeats, int(budget / max(one, 1e-6)) - extra))
        if budget <= 0:  # behind schedule: keep a median of three
            n = min(n, 3)
    timing = time_fn(forward, repeats=n, warmup=0, device=dev)
    counted = count_flops(forward)
    prof = profile_call(forward, dev)
    tokens = None
    if counted.attention_calls:
        tokens = counted.attention_calls[0][2]
    elif target.kind == "vit" and target.patch_size:
        tokens = (size // target.patch_size) ** 2 + 1
    med = timing.median
    fps = counted.total / med if med > 0 and counted.total else None
    op_total = prof.op_time_s.get("total") or 0.0
    return {
        "model": target.name, "kind": target.kind, "img_size": size, "tokens": tokens, "pixels": size * size,
        "batch_size": batch_size, "params": sum(p.numel() for p in model.parameters()),
        "median_s": med, "iqr_s": timing.iqr, "repeats": len(timing.times), "min_s": timing.min,
        "images_per_s": batch_size / med if med > 0 else None, "peak_mem_bytes": prof.peak_bytes,
        "flops": counted.total, "attention_flops": counted.attention, "linear_flops": counted.linear,
        "conv_flops": counted.conv,
        "flop_counter_builtin": counted.builtin_total,
        "attention_flop_share": counted.attention / counted.total if counted.total else None,
        "attention_time_share": prof.op_time_s.get("attention", 0.0) / op_total if op_total else None,
        "linear_time_share": prof.op_time_s.get("linear", 0.0) / op_total if op_total else None,
        "flops_per_s": fps, "pct_of_peak": 100.0 * fps / peak if fps and peak else None,
        "_attention_calls": counted.attention_calls[:1],
    }


def scaling_fits(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per model: log-log exponents of time, memory and FLOPs against tokens (ViT) or pixels (convnets)."""
    fits: dict[str, dict[str, Any]] = {}
    for name in dict.fromkeys(r["model"] for r in rows):
        sel = [r for r in rows if r["model"] == name]
        xkey = "tokens" if sel[0]["kind"] == "vit" and all(r.get("tokens") for r in sel) else "pixels"
        xs = [r[xkey] for r in sel]
        t = fit_power_law(xs, [r["median_s"] for r in sel])
        tmin = fit_power_law(xs, [r["min_s"] for r in sel])
        m = fit_power_law(xs, [r["peak_mem_bytes"] for r in sel])
        f = fit_power_law(xs, [r["flops"] for r in sel])
        upper = sel[len(sel) // 2:] if len(sel) >= 4 else sel
        tu = fit_power_law([r[xkey] for r in upper], [r["median_s"] for r in upper])
        fits[name] = {"x": xkey, "time_exponent": t.exponent if t else None,
                      "memory_exponent": m.exponent if m else None, "time_r2": t.r2 if t else None,
                      "flops_exponent": f.exponent if f else None,
                      "time_exponent_min": tmin.exponent if tmin else None,
                      "time_exponent_upper_half": tu.exponent if tu else None, "points": len(sel)}
    return fits


def _crossovers(rows: list[dict[str, Any]], targets: list[BenchTarget]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for t in targets:
        sel = [r for r in rows if r["model"] == t.name and r.get("attention_flops")]
        if t.kind != "vit" or not sel:
            continue
        b, h, s, _, d = sel[0]["_attention_calls"][0]
        width = h * d
        patch = t.patch_size or 16
        prefix = s - (sel[0]["img_size"] // patch) ** 2
        predicted_tokens = 6 * width
        predicted_px = patch * math.sqrt(max(predicted_tokens - prefix, 0))
        xs = [r["img_size"] for r in sel]
        fpx, fmethod = crossover(xs, [r["attention_flops"] for r in sel], [r["linear_flops"] for r in sel])
        tpx, tmethod = crossover(xs, [r["attention_time_share"] for r in sel], [r["linear_time_share"] for r in sel])
        out[t.name] = {"embed_dim": width, "heads": h, "patch_size": patch, "prefix_tokens": prefix,
                       "predicted_tokens": predicted_tokens, "predicted_px": predicted_px,
                       "flops_px": fpx, "flops_method": fmethod, "time_px": tpx, "time_method": tmethod,
                       "measured_range_px": [min(xs), max(xs)]}
    for r in rows:  # private helpers used above; not part of the schema
        for key in [k for k in r if k.startswith("_")]:
            del r[key]
    return out
