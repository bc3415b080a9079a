"""Throughput of one model: inference or a full training step, optionally side by side with a timm model.

The measurement follows the shape of timm's ``benchmark.py`` (warm-up, synchronised timed steps, samples/s), written
here from scratch. Classification models train with cross-entropy against random labels and SGD; GAN models run
one generator and one discriminator update through their own ``generator_loss``/``discriminator_loss``. With
``vs_timm`` the two models are timed alternately, step by step, so machine drift affects both alike.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from ..protocols import GANModel
from .envelope import declare_rows, envelope, progress_bar
from .flops import clip_to_peak, count_flops, measure_matmul_peak
from .memory import CPU_MEMORY_METHOD, CUDA_MEMORY_METHOD, profile_call
from .timing import Timing, load_note, synchronize, threads

__all__ = ["MODEL_ROW_FIELDS", "run_model"]

MODEL_ROW_FIELDS = declare_rows("model", (
    "model", "source", "mode", "batch_size", "img_size", "device", "amp", "channels_last", "compiled", "params",
    "median_s", "iqr_s", "repeats", "min_s", "samples_per_s", "flops", "flops_per_s", "pct_of_peak", "peak_mem_bytes",
))


def _resize(t: Any, img_size: int | None, channels_last: bool, device: torch.device):
    if not isinstance(t, torch.Tensor):
        return t
    if img_size is not None and t.dim() == 4 and t.is_floating_point():
        t = torch.randn(t.shape[0], t.shape[1], img_size, img_size, dtype=t.dtype)
    t = t.to(device)
    if channels_last and t.dim() == 4:
        t = t.contiguous(memory_format=torch.channels_last)
    return t


def _tree(obj, fn):
    if isinstance(obj, dict):
        return {k: _tree(v, fn) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_tree(v, fn) for v in obj)
    return fn(obj)


def _build(name: str, img_size: int | None, batch_size: int) -> tuple[nn.Module, str, str, tuple, dict | None]:
    """The model, its source, its task, forward inputs and (GANs) a training batch."""
    from .._factory import create, model_info
    from .._registry import list_models

    if not name.startswith("timm:") and name in list_models():
        info = model_info(name)
        kwargs = {"img_size": img_size} if img_size is not None and "img_size" in info.default_kwargs else {}
        model = create(name, **kwargs)
        inputs = tuple(model.example_inputs(batch_size))
        batch = model.example_batch(batch_size) if isinstance(model, GANModel) else None
        return model, "vgzoo", info.task, inputs, batch
    import timm

    timm_name = name.removeprefix("timm:")
    if not timm.is_model(timm_name):
        from ..errors import UnknownModelError

        raise UnknownModelError(f"unknown model {name!r}: neither vgzoo (`vgzoo list`) nor timm knows it; "
                                f"pass a registered vgzoo name or a timm architecture")
    model = None
    if img_size is not None:
        try:  # ViT-like timm models take the size at construction
            model = timm.create_model(timm_name, pretrained=False, img_size=img_size)
        except TypeError:
            model = None
    if model is None:
        model = timm.create_model(timm_name, pretrained=False)
    size = img_size or model.pretrained_cfg.get("input_size", (3, 224, 224))[-1]
    return model, "timm", "classification", (torch.randn(batch_size, 3, size, size),), None


def _step_fn(model: nn.Module, task: str, inputs: tuple, batch: dict | None, train: bool, autocast) -> Callable:
    if not train:
        model.eval()

        def infer():
            with torch.inference_mode(), autocast():
                return model(*inputs)

        return infer
    model.train()
    if batch is None:  # a classifier (vgzoo or timm; _build gives GANModels a batch): cross-entropy on forward
        opt = torch.optim.SGD(model.parameters(), lr=1e-4)

        def train_step():
            with autocast():
                out = model(*inputs)
                target = torch.randint(0, out.shape[-1], (out.shape[0],), device=out.device)
                loss = nn.functional.cross_entropy(out.float(), target)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        return train_step
    opt_g = torch.optim.Adam(model.generator_parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(model.discriminator_parameters(), lr=2e-4, betas=(0.5, 0.999))

    def gan_step():
        with autocast():
            loss_g, _ = model.generator_loss(batch)
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
        with autocast():
            loss_d, _ = model.discriminator_loss(batch)
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()

    return gan_step


def run_model(
    name: str,
    *,
    batch_size: int = 8,
    img_size: int | None = None,
    train: bool = False,
    amp: bool = False,
    amp_dtype: str = "bfloat16",
    compile: bool = False,
    channels_last: bool = False,
    device: str = "cpu",
    vs_timm: str | None = None,
    repeats: int = 10,
    warmup: int = 2,
    num_threads: int | str | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Inference or training-step throughput of ``name`` (and of ``vs_timm``, alternating); schema in docs/bench.md.

    Args:
        name: A vgzoo model name, or ``timm:NAME``.
        batch_size: Samples per step.
        img_size: Square input side; default the model's own. ViTs are built at this size.
        train: Time a training step (forward, loss, backward, optimizer step) instead of inference.
        amp: Autocast to ``amp_dtype``.
        amp_dtype: ``bfloat16`` or ``float16``.
        compile: ``torch.compile`` the model first (needs a working compiler toolchain).
        channels_last: NHWC memory format for the model and its 4-D inputs.
        device: ``cpu`` or ``cuda[:i]``.
        vs_timm: A timm architecture measured in the same run (``throughput_ratio`` = vgzoo / timm samples/s).
        repeats: Timed steps per model.
        warmup: Untimed steps per model.
        num_threads: ``torch.set_num_threads`` (``"auto"``: 1 on a busy machine, see
            :func:`vgzoo.bench.timing.resolve_threads`) for the run (``None``: torch's default, all cores).
        progress: Show a tqdm progress bar.

    Returns:
        The result document (``kind="model"``): one row per model, ``ratio`` when ``vs_timm`` is given.
    """
    with threads(num_threads):
        return _run_model(name, batch_size, img_size, train, amp, amp_dtype, compile, channels_last, device, vs_timm,
                          repeats, warmup, progress)


def _run_model(name, batch_size, img_size, train, amp, amp_dtype, compile, channels_last, device, vs_timm, repeats,
               warmup, progress):

    if batch_size < 1:
        raise ValueError(f"batch_size={batch_size}; expected a positive integer")
    if img_size is not None and img_size < 1:
        raise ValueError(f"img_size={img_size}; expected a positive integer")
    if amp_dtype not in ("bfloat16", "float16"):
        raise ValueError(f"amp_dtype={amp_dtype!r}; expected 'bfloat16' or 'float16'")
    dev = torch.device(device)
    torch_amp = torch.bfloat16 if amp_dtype == "bfloat16" else torch.float16
    doc = envelope("model", device=str(dev), dtype=amp_dtype if amp else "float32")
    doc["config"] = {"model": name, "vs_timm": vs_timm, "batch_size": batch_size, "img_size": img_size,
                     "mode": "train" if train else "infer", "amp": amp, "compile": compile,
                     "channels_last": channels_last, "repeats": repeats, "warmup": warmup,
                     "memory_method": CUDA_MEMORY_METHOD if dev.type == "cuda" else CPU_MEMORY_METHOD}
    if (note := load_note()) is not None:
        doc["notes"].append(note)

    def autocast():
        return torch.autocast(dev.type, dtype=torch_amp) if amp else contextlib.nullcontext()

    labels = [name] + ([f"timm:{vs_timm.removeprefix('timm:')}"] if vs_timm else [])
    entries = [_entry(label, img_size, batch_size, train, compile, channels_last, dev, autocast) for label in labels]
    doc["matmul_peak_flops"] = peak = measure_matmul_peak(dev, torch_amp if amp else torch.float32)
    doc["interrupted"] = _time_entries(entries, warmup, repeats, dev, progress)
    for e in entries:
        if not e["timing"].times:
            continue
        flops = count_flops(e["count_step"]).total
        mem = profile_call(e["count_step"], dev)
        med = e["timing"].median
        fps = flops / med if flops and med > 0 else None
        doc["rows"].append({
            "model": e["label"], "source": e["source"], "mode": "train" if train else "infer",
            "batch_size": batch_size, "img_size": e["size"], "device": str(dev), "amp": amp,
            "channels_last": channels_last, "compiled": compile,
            "params": sum(p.numel() for p in e["model"].parameters()), "median_s": med, "iqr_s": e["timing"].iqr,
            "repeats": len(e["timing"].times), "min_s": e["timing"].min,
            "samples_per_s": batch_size / med if med > 0 else None,
            "flops": flops, "flops_per_s": fps, "pct_of_peak": 100.0 * fps / peak if fps and peak else None,
            "peak_mem_bytes": mem.peak_bytes,
        })
    if vs_timm and len(doc["rows"]) == 2:
        ours, theirs = doc["rows"]
        doc["ratio"] = {"throughput_ratio": ours["samples_per_s"] / theirs["samples_per_s"]}
    clip_to_peak(doc)
    return doc


def _entry(label: str, img_size, batch_size: int, train: bool, compile: bool, channels_last: bool,
           dev: torch.device, autocast) -> dict:
    """One model of the comparison, on the device, with its step function (and an uncompiled one to count)."""
    model, source, task, inputs, batch = _build(label, img_size, batch_size)
    size = next((t.shape[-1] for t in inputs if isinstance(t, torch.Tensor) and t.dim() == 4), None)
    model = model.to(dev)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    resize_to = img_size if source == "vgzoo" else None
    inputs = _tree(inputs, lambda t: _resize(t, resize_to, channels_last, dev))
    batch = _tree(batch, lambda t: _resize(t, resize_to, channels_last, dev)) if batch is not None else None
    if img_size is not None and source == "vgzoo" and batch is not None:
        size = img_size
    runner = torch.compile(model) if compile else model
    step = _step_fn(runner, task, inputs, batch, train, autocast)
    # FLOPs and memory are counted on the uncompiled module (the compiled graph hides its ops).
    count_step = _step_fn(model, task, inputs, batch, train, autocast) if compile else step
    return {"label": label.removeprefix("timm:") if source == "timm" else label, "source": source,
            "model": model, "step": step, "count_step": count_step, "size": size, "timing": Timing()}


def _time_entries(entries: list[dict], warmup: int, repeats: int, dev: torch.device, progress: bool) -> bool:
    """Warm each model up, then time them step by step in alternation; True when Ctrl-C cut the timing short."""
    bar = progress_bar(len(entries) * (warmup + repeats), "model", progress)
    try:
        for e in entries:
            for _ in range(warmup):
                e["step"]()
                bar.update(1)
        synchronize(dev)
        for _ in range(repeats):  # alternate the models step by step
            for e in entries:
                start = time.perf_counter()
                e["step"]()
                synchronize(dev)
                e["timing"].times.append(time.perf_counter() - start)
                bar.update(1)
    except KeyboardInterrupt:
        return True
    finally:
        bar.close()
    return False
