"""Sample images from generators: the library behind ``vgzoo generate``.

Two kinds of generator. A :class:`~vgzoo.protocols.SeededSampler` (StyleGAN2, BigGAN, ...) draws each image from
an integer seed exactly as its reference code does: :func:`generate_seeds` writes ``seed%04d.png`` per seed (or
``class%04d-seed%04d.png`` with several classes) and a grid, converting images as the reference scripts do
(``img * 127.5 + 128``, clamped, cast to uint8). For a conditional GAN in the sense of Mirza & Osindero,
"Conditional Generative Adversarial Nets" (2014) -- any model with ``num_classes`` and ``sample(labels,
generator=None)`` returning images in [-1, 1], such as ``cgan_embed`` and ``cgan_embed_digits`` -- :func:`generate`
draws ``per_class``
samples for each requested class with a seeded latent draw and writes a PNG grid with one row per
class (in the order asked), and optionally every sample as its own PNG.
"""

from __future__ import annotations

import difflib
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ._runtime import usable_cores
from .data.images import NON_FINITE_CAUSES, require_finite, save_images, to_uint8
from .layers.label_map import validate_labels
from .protocols import ConditionalSampler, SeededSampler

__all__ = [
    "GenerateResult",
    "SeededResult",
    "generate",
    "generate_seeds",
    "load_sampler",
    "make_grid",
    "parse_labels",
    "parse_seeds",
    "reference_uint8",
    "resolve_classes",
    "seed_batch_size",
]

MIN_CELL_PIXELS = 64  # automatic scale: upscale small images until a cell is at least this wide
MAX_SEED = 2**32 - 1  # numpy's RandomState, which the reference scripts seed, takes seeds below 2**32


@dataclass
class GenerateResult:
    """What :func:`generate` wrote."""

    grid: Path
    labels: list[int]
    per_class: int
    seed: int
    model: str
    weight_source: str | None = None
    images: list[Path] = field(default_factory=list)
    inference: dict[str, Any] = field(default_factory=dict)  # what ran: vgzoo.inference.InferenceMode.to_dict()

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "grid": str(self.grid), "images": [str(p) for p in self.images]}


def parse_labels(text: str) -> list[int]:
    """``"0,1, 2"`` -> ``[0, 1, 2]``.

    Raises:
        ValueError: an entry that is not an integer, or no entries at all.
    """
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not parts:
        raise ValueError(f"labels {text!r} name no class; expected comma-separated class indices such as 0,1,2.")
    try:
        return [int(p) for p in parts]
    except ValueError:
        bad = [p for p in parts if not p.lstrip("-").isdigit()]
        raise ValueError(
            f"labels {text!r}: {bad} are not integers; expected comma-separated class indices such as 0,1,2."
        ) from None


def make_grid(images: torch.Tensor, rows: int | None = None, padding: int = 2, scale: int = 1, pad_value: int = 128,
              *, cols: int | None = None) -> torch.Tensor:
    """Arrange uint8 images (N, H, W, C) in ``rows`` rows (row-major) -> one uint8 image (H', W', C).

    Each image is upscaled ``scale`` times (nearest neighbour); cells are separated by ``padding`` pixels of
    ``pad_value``. Give ``cols`` instead of ``rows`` to fill rows of that width, the last one partly.
    """
    n, h, w, c = images.shape
    if cols is not None:
        if cols < 1:
            raise ValueError(f"make_grid: cols={cols}; expected 1 or more.")
        rows = math.ceil(n / cols)
    elif rows is None or rows < 1 or n % rows:
        raise ValueError(f"make_grid: {n} images do not fill {rows} rows evenly.")
    else:
        cols = n // rows
    if n < rows * cols:  # the last row's empty cells show the padding
        images = torch.cat([images, images.new_full((rows * cols - n, h, w, c), pad_value)])
    cell_h, cell_w = h * scale + padding, w * scale + padding  # a cell with its padding above and to the left
    grid = torch.full((rows * cell_h + padding, cols * cell_w + padding, c), pad_value, dtype=torch.uint8)
    # nearest-neighbour along the width in the small images (rows of contiguous pixels, which copy fast), then every
    # cell at once as a (rows, h, scale, cols, w * scale, c) view of the grid, the rows' repeats a broadcast: no loop
    # over hundreds of cells, no upscaled copy of the whole grid
    wide = images.unsqueeze(3).expand(-1, -1, -1, scale, -1).reshape(rows * cols, h, w * scale, c)
    cells = grid[padding:, padding:].unflatten(0, (rows, cell_h)).unflatten(2, (cols, cell_w))
    cells = cells[:, : h * scale, :, : w * scale].unflatten(1, (h, scale))
    cells.copy_(wide.unflatten(0, (rows, cols)).permute(0, 2, 1, 3, 4)[:, :, None])
    return grid


#: Why a model that records no trained weights may draw non-finite images (the usual causes follow it).
RANDOM_WEIGHTS_CAUSES = ("The model records no trained weights, and a network with random weights can overflow "
                         "(BigGAN's batch-norm statistics, for one, are placeholders until it is trained): pass "
                         f"--pretrained for its published weights, or a trained folder. {NON_FINITE_CAUSES}")


def _non_finite_causes(model: nn.Module) -> str:
    """What non-finite images most likely mean for ``model``: random weights where it records no weight source (a
    name built without --pretrained, but also a network trained in this process), else a diverged or overflowing
    model."""
    if getattr(model, "pretrained_cfg", {}).get("weight_source") is not None:
        return NON_FINITE_CAUSES
    return RANDOM_WEIGHTS_CAUSES


def load_sampler(model_or_dir: str | os.PathLike | nn.Module, pretrained: bool = False) -> tuple[nn.Module, str]:
    """The model to sample and the name it goes by, from a built model, a name, a folder or a run directory."""
    from ._factory import load_model, resolve_source

    if isinstance(model_or_dir, nn.Module):
        cfg = getattr(model_or_dir, "pretrained_cfg", {})
        return model_or_dir, cfg.get("architecture", type(model_or_dir).__name__)
    source = resolve_source(model_or_dir)  # a run folder becomes its final/ model here, once
    return load_model(source, pretrained=pretrained, warn_random=False), source  # the result names its weights


@torch.no_grad()
def generate(
    model_or_dir: str | os.PathLike | nn.Module,
    *,
    out: str | os.PathLike,
    pretrained: bool = False,
    labels: list[int] | None = None,
    per_class: int = 8,
    seed: int = 0,
    out_dir: str | os.PathLike | None = None,
    scale: int | None = None,
    device: str | torch.device | None = "auto",
    precision: str | None = "auto",
    compile: bool = False,
) -> GenerateResult:
    """Sample ``per_class`` images of each class and write a grid PNG, one row per class.

    Args:
        model_or_dir: a model name (``cgan_embed_digits``), a folder written by ``vgzoo.save_pretrained``,
            a ``local-dir:``/``hf-hub:`` source, or an already built model.
        out: path of the grid PNG.
        pretrained: load a named model's published weights (folders and Hub sources carry their own).
        labels: the classes, one grid row each, in this order (default: every class).
        per_class: samples per class (grid columns).
        seed: seed of the latent draws; the same seed gives the same images.
        out_dir: also write every sample as ``class{c}_{i}.png`` (native resolution) into this folder.
        scale: nearest-neighbour upscaling of the grid cells (default: enough for cells of >= 64 px).
        device: where to sample (``auto``: CUDA when present, else the CPU).
        precision: ``auto`` (bf16 autocast where the hardware has bf16 units, else fp32), ``fp32``, ``bf16``,
            ``fp16``; checked against fp32 on the first class's batch (see :mod:`vgzoo.inference`).
        compile: ``torch.compile`` the generator.

    Returns:
        A :class:`GenerateResult` naming the files written and what ran.

    Raises:
        ValueError: the model is not a class-conditional generator, a label outside ``[0, num_classes)``,
            or ``per_class`` < 1.
    """
    if not isinstance(per_class, int) or per_class < 1:
        raise ValueError(f"per_class must be an int >= 1; got {per_class!r}.")
    from .inference import GuardedRunner, inference_mode, prepare_module

    mode = inference_mode(device, precision, compile)
    model, name = load_sampler(model_or_dir, pretrained)
    num_classes = getattr(model, "num_classes", None)
    task = getattr(model, "pretrained_cfg", {}).get("task")
    if not isinstance(model, ConditionalSampler) or not isinstance(num_classes, int):
        raise ValueError(
            f"{name} is not a class-conditional generator (task {task!r}); `generate` needs a model with num_classes "
            "and sample(labels, generator=None), e.g. cgan_embed_digits."
        )
    rows = list(range(num_classes)) if labels is None else [int(c) for c in labels]
    validate_labels(rows, num_classes, what="labels")
    if not rows:
        raise ValueError("labels is empty; name at least one class or leave it out for every class.")
    model.eval()
    model.to(mode.device)
    run = GuardedRunner(prepare_module(model, mode), mode, "images", reference_fn=model, calls=len(rows))
    g = torch.Generator().manual_seed(int(seed))
    samples = []
    with run:  # the calls share autocast's weight casts
        for c in rows:  # as model.sample(labels, g) draws: z from g, then the generator
            z = model.sample_z(per_class, generator=g).to(mode.device)
            samples.append(run(z, torch.full((per_class,), c, dtype=torch.long, device=mode.device)).cpu())
    samples = require_finite(torch.cat(samples), f"{name}'s samples",
                             causes=_non_finite_causes(model))
    pixels = to_uint8(samples).permute(0, 2, 3, 1)  # (N, H, W, C)
    if pixels.shape[-1] not in (1, 3):
        raise ValueError(f"{name} makes {pixels.shape[-1]}-channel images; PNG grids need 1 or 3 channels.")
    if scale is None:
        scale = max(1, MIN_CELL_PIXELS // max(pixels.shape[1], pixels.shape[2]))
    images, targets = [make_grid(pixels, rows=len(rows), scale=scale)], [Path(out)]
    if out_dir is not None:
        folder = Path(out_dir)
        counts: dict[int, int] = {}
        for j in range(len(pixels)):
            c = rows[j // per_class]
            i = counts[c] = counts.get(c, -1) + 1  # a class asked twice continues its numbering
            images.append(pixels[j])
            targets.append(folder / f"class{c}_{i:03d}.png")
    written = _save_all(images, targets)
    return GenerateResult(grid=written[0], labels=rows, per_class=per_class, seed=int(seed), model=name,
                          weight_source=getattr(model, "pretrained_cfg", {}).get("weight_source"),
                          inference=mode.to_dict(), images=written[1:])


#: The most threads writing image files, however many cores: the Python around each small file holds the GIL.
MAX_SAVE_THREADS = 8


def _save_all(images, targets: list[Path]) -> list[Path]:
    """Write ``images[i]`` (uint8 (H, W, C)) to ``targets[i]`` as one batch of atomic writes (one sync of the disk,
    not one per file) from a thread per core (at most :data:`MAX_SAVE_THREADS`); the first (a large grid, the
    longest to compress) starts first and overlaps the rest. Not more threads than cores: the Python around each
    small file holds the GIL, and threads beyond the cores only take it from each other."""
    return save_images(images, targets, threads=min(MAX_SAVE_THREADS, usable_cores()))


# ------------------------------------------------------------------------------------------- seeded sampling
#: Output pixels per forward pass of seeded sampling on a CPU (``batch_size`` left to vgzoo): beyond this, a batch's
#: activations outgrow the caches and the memory-bound layers (modulation, normalisation, resampling) cost more per
#: image than a smaller batch saves (benchmarks/bench_translate_default.py's --seed-batches table).
CPU_BATCH_PIXELS = 2**16
#: Latents per forward pass elsewhere, and at most on a CPU.
SEED_BATCH = 8


def seed_batch_size(model: nn.Module, device: torch.device) -> int:
    """Latents per forward pass for :func:`generate_seeds` when the caller names none: :data:`SEED_BATCH`, and
    on a CPU as many as keep a batch within the model's ``cpu_batch_pixels`` output pixels
    (:class:`~vgzoo.protocols.SeededSampler`; :data:`CPU_BATCH_PIXELS` unless it says), at least one."""
    size = tuple(getattr(model, "pretrained_cfg", {}).get("input_size") or ())
    if torch.device(device).type != "cpu" or len(size) != 3:
        return SEED_BATCH
    budget = getattr(model, "cpu_batch_pixels", None) or CPU_BATCH_PIXELS
    return max(1, min(SEED_BATCH, budget // (int(size[1]) * int(size[2]))))


@dataclass
class SeededResult:
    """What :func:`generate_seeds` wrote."""

    model: str
    seeds: list[int]
    classes: list[int] | None
    truncation: float
    truncation_name: str
    images: list[Path] = field(default_factory=list)
    grid: Path | None = None
    weight_source: str | None = None
    inference: dict[str, Any] = field(default_factory=dict)  # what ran: vgzoo.inference.InferenceMode.to_dict()

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "grid": None if self.grid is None else str(self.grid),
                "images": [str(p) for p in self.images]}


_SEED_RANGE = re.compile(r"^(\d+)\s*-\s*(\d+)$")


def parse_seeds(text: str) -> list[int]:
    """``"0-7"`` -> ``[0, ..., 7]``; ``"1,5,10-12"`` -> ``[1, 5, 10, 11, 12]`` (ranges include both ends).

    Raises:
        ValueError: an entry that is neither an integer nor a range ``A-B`` with ``A <= B``, a seed outside
            ``[0, 2**32)``, a seed named twice, or no seeds at all.
    """
    seeds: list[int] = []
    for part in (p.strip() for p in str(text).split(",")):
        if not part:
            continue
        m = _SEED_RANGE.match(part)
        if m:
            lo, hi = int(m.group(1)), int(m.group(2))
            if lo > hi:
                raise ValueError(f"seeds {text!r}: range {part!r} runs backwards; write it as {hi}-{lo}.")
            if hi > MAX_SEED:
                raise ValueError(f"seeds {text!r}: {hi} is above {MAX_SEED}; seeds lie in [0, 2**32).")
            seeds.extend(range(lo, hi + 1))
        elif part.isdigit():
            seeds.append(int(part))
        else:
            raise ValueError(f"seeds {text!r}: {part!r} is not a seed; expected non-negative integers and ranges, "
                             "e.g. 0-7 or 1,5,10-12.")
    if not seeds:
        raise ValueError(f"seeds {text!r} name no seed; expected e.g. 0-7 or 1,5,10-12.")
    too_big = [s for s in seeds if s > MAX_SEED]
    if too_big:
        raise ValueError(f"seeds {text!r}: {too_big[0]} is above {MAX_SEED}; seeds lie in [0, 2**32).")
    seen: set[int] = set()
    twice = sorted({s for s in seeds if s in seen or seen.add(s)})
    if twice:
        raise ValueError(f"seeds {text!r} name {twice} more than once; each seed gives one image, name it once.")
    return seeds


def resolve_classes(model: SeededSampler, classes: list[int | str]) -> list[int]:
    """Class indices from indices or names (``model.class_names``; exact, then ignoring case).

    Raises:
        ValueError: the model is unconditional, an index outside ``[0, num_classes)``, or an unknown name
            (the message suggests the closest names).
    """
    count = model.class_count()
    names = list(model.class_names or ())
    kind = type(model).__name__
    if not count:
        raise ValueError(f"{kind} is unconditional; it takes no class. Leave --class out.")
    folded = {n.casefold(): i for i, n in enumerate(names)}
    out: list[int] = []
    for item in classes:
        text = str(item).strip()
        if text.lstrip("-").isdigit():
            index = int(text)
            if not 0 <= index < count:
                raise ValueError(f"class {index} is outside [0, {count}); {kind} has {count} classes.")
        elif text in names:
            index = names.index(text)
        elif text.casefold() in folded:
            index = folded[text.casefold()]
        elif not names:
            raise ValueError(f"class {text!r}: {kind} has no class names; give an index in [0, {count}).")
        else:
            close = difflib.get_close_matches(text.casefold(), list(folded), n=3, cutoff=0.5)
            hint = (f" Did you mean {', '.join(repr(names[folded[c]]) for c in close)}?" if close
                    else f" Give an index in [0, {count}) or one of its {len(names)} class names.")
            raise ValueError(f"class {text!r} is not a class name of {kind}.{hint}")
        out.append(index)
    return out


def reference_uint8(images: torch.Tensor) -> torch.Tensor:
    """Images (N, C, H, W) in [-1, 1] -> uint8 (N, H, W, C), converted as the reference GAN scripts do.

    StyleGAN's ``gen_images.py`` writes ``img * 127.5 + 128`` clamped to [0, 255] and cast (truncated) to uint8,
    not the rounded ``(img + 1) * 127.5`` of :func:`vgzoo.data.images.to_uint8`; following it keeps a seed's PNG
    byte-identical to the reference's.
    """
    x = images.detach().float() * 127.5  # a new tensor; the rest in place, as in to_uint8
    return x.add_(128).clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1).cpu()


@torch.no_grad()
def generate_seeds(
    model_or_dir: str | os.PathLike | nn.Module,
    *,
    seeds: list[int],
    truncation: float | None = None,
    classes: list[int | str] | None = None,
    out_dir: str | os.PathLike | None = None,
    grid: str | os.PathLike | None = None,
    pretrained: bool = False,
    batch_size: int | None = None,
    scale: int | None = None,
    device: str | torch.device | None = "auto",
    precision: str | None = "auto",
    compile: bool = False,
) -> SeededResult:
    """Draw one image per seed (and class) from a :class:`~vgzoo.protocols.SeededSampler`.

    Args:
        model_or_dir: a model name, a saved folder, a ``local-dir:``/``hf-hub:`` source or a built model.
        seeds: the seeds, an image each (see :func:`parse_seeds`); seed ``s`` is the reference's seed ``s``.
        truncation: StyleGAN's psi or BigGAN's truncation (default: the model's ``default_truncation``).
        classes: class indices or names (``model.class_names``) for a class-conditional model; every class gets
            every seed. Default: class 0 for a conditional model; an unconditional model takes none.
        out_dir: write ``seed%04d.png`` (``class%04d-seed%04d.png`` with several classes) into this folder.
        grid: write a PNG grid: a row per class and a column per seed (unconditional: a square-ish grid).
        pretrained: with a model name, load its published weights.
        batch_size: latents per forward pass (default: :func:`seed_batch_size`, by image size on a CPU).
        scale: nearest-neighbour upscaling of the grid cells (default: enough for cells of >= 64 px).
        device: where to sample (``auto``: CUDA when present, else the CPU).
        precision: ``auto`` (bf16 autocast where the hardware has bf16 units, else fp32), ``fp32``, ``bf16``,
            ``fp16``; checked against fp32 on the first batch (see :mod:`vgzoo.inference`). Latents are always
            drawn in fp32, as the reference draws them.
        compile: ``torch.compile`` ``generate_images``.

    Raises:
        ValueError: the model is not a SeededSampler, nothing to write, no seeds, a bad class, ``batch_size`` < 1.
    """
    from .inference import GuardedRunner, inference_mode

    if out_dir is None and grid is None:
        raise ValueError("nothing to write: give out_dir (CLI: --out DIR) for one PNG per seed, grid (--grid "
                         "FILE.png) for a grid, or both.")
    if grid is not None and Path(grid).suffix.lower() != ".png":
        raise ValueError(f"grid {str(grid)!r}: the grid is a PNG; name a file ending in .png.")
    if out_dir is not None and Path(out_dir).suffix.lower() == ".png":
        raise ValueError(f"--out {str(out_dir)!r} names the folder for one PNG per seed, not a file; use --grid "
                         f"{str(out_dir)!r} for a grid picture.")
    if not seeds:
        raise ValueError("seeds is empty; give at least one seed, e.g. 0-7.")
    if batch_size is not None and (not isinstance(batch_size, int) or batch_size < 1):
        raise ValueError(f"batch_size must be an int >= 1; got {batch_size!r}.")
    mode = inference_mode(device, precision, compile)
    device = mode.device
    model, name = load_sampler(model_or_dir, pretrained)
    if not isinstance(model, SeededSampler):
        raise ValueError(f"{name} does not draw images from seeds (vgzoo.protocols.SeededSampler), which --seeds, "
                         "--truncation and --class need. For a class-conditional GAN such as cgan_embed use "
                         "--labels, --per-class and --seed.")
    if classes and not model.class_count():
        resolve_classes(model, list(classes))  # raises: an unconditional model takes no class
    rows: list[int | None] = ((resolve_classes(model, list(classes)) if classes else [0]) if model.class_count()
                              else [None])
    if len(set(rows)) < len(rows):
        raise ValueError(f"classes {list(classes or [])} name a class more than once; name each class once.")
    psi = float(model.default_truncation if truncation is None else truncation)
    if not math.isfinite(psi):
        raise ValueError(f"{model.truncation_name}={truncation!r}; expected a finite number.")
    model.eval()
    model.to(device)
    if batch_size is None:
        batch_size = seed_batch_size(model, device)
    draw = torch.compile(model.generate_images) if mode.compile else model.generate_images
    run = GuardedRunner(draw, mode, "images", reference_fn=model.generate_images,
                        calls=len(rows) * math.ceil(len(seeds) / batch_size))
    pictures: list[torch.Tensor] = []
    causes = _non_finite_causes(model)
    with run:  # the calls share autocast's weight casts
        for c in rows:
            for start in range(0, len(seeds), batch_size):
                chunk = [int(s) for s in seeds[start:start + batch_size]]
                z = model.latents_for_seeds(chunk, psi).to(device)
                labels = None if c is None else torch.full((len(chunk),), c, dtype=torch.long, device=device)
                images = run(z, labels, psi)
                if not isinstance(images, torch.Tensor) or images.ndim != 4 or images.shape[0] != len(chunk):
                    got = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
                    raise ValueError(f"{name}.generate_images gave {got} for {len(chunk)} latents; expected "
                                     f"({len(chunk)}, C, H, W).")
                pictures.append(reference_uint8(require_finite(images, f"{name}'s images for seeds {chunk}",
                                                               causes=causes)))
    pixels = torch.cat(pictures)  # (len(rows) * len(seeds), H, W, C), class-major
    if pixels.shape[-1] not in (1, 3, 4):
        raise ValueError(f"{name} makes {pixels.shape[-1]}-channel images; PNG holds 1, 3 or 4 channels.")
    result = SeededResult(model=name, seeds=[int(s) for s in seeds], classes=None if rows == [None] else rows,
                          truncation=psi, truncation_name=model.truncation_name,
                          weight_source=getattr(model, "pretrained_cfg", {}).get("weight_source"),
                          inference=mode.to_dict())
    images, targets = [], []
    if grid is not None:
        if scale is None:
            scale = max(1, MIN_CELL_PIXELS // max(pixels.shape[1], pixels.shape[2]))
        cols = len(seeds) if rows != [None] else math.ceil(math.sqrt(len(seeds)))
        images, targets = [make_grid(pixels, cols=cols, scale=scale)], [Path(grid)]
    if out_dir is not None:
        folder = Path(out_dir)
        stems = [f"class{rows[j // len(seeds)]:04d}-seed{seeds[j % len(seeds)]:04d}" if len(rows) > 1
                 else f"seed{seeds[j % len(seeds)]:04d}" for j in range(len(pixels))]
        images += list(pixels)
        targets += [folder / f"{stem}.png" for stem in stems]
    written = _save_all(images, targets)
    if grid is not None:
        result.grid, written = written[0], written[1:]
    result.images = written
    return result
