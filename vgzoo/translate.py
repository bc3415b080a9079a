"""Image-to-image translation of files and folders with a pix2pix (Isola et al. 2017) or CycleGAN (Zhu et al.
2017) generator: the library function behind ``vgzoo translate``.

Images of any size from 1x1 up work: each is reflect-padded (evenly on both sides) to the next size the generator
accepts (a multiple of 4 and at least 8 for ResNet generators, a multiple of ``2 ** num_downs`` for U-Nets), translated,
and cropped back. Outputs never replace an input file, and two inputs never share an output name. A folder run
translates every image it can and reports the ones it could not at the end (:class:`TranslationError`).
Networks run in eval mode by default; ``eval_mode=False`` keeps dropout and batch statistics on, which is what
the reference implementation does at test time for pix2pix.
"""

from __future__ import annotations

import functools
import math
import os
from collections import Counter
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .data.images import IMG_EXTENSIONS, load_image, save_image, to_tensor, to_uint8
from .data.reference import resolve_input
from .errors import DataError, DataNotFoundError
from .protocols import Translator

IMAGE_SUFFIXES = IMG_EXTENSIONS  # the datasets' list: a folder translates the images a dataset would read
_MODES = {1: "L", 3: "RGB", 4: "RGBA"}


class TranslationError(DataError):
    """Some images of a folder could not be translated; the others were written.

    Attributes:
        written: the files written.
        failures: ``(input file, reason)`` for every image that failed.
    """

    def __init__(self, message: str, written: list[Path], failures: list[tuple[Path, str]]) -> None:
        super().__init__(message)
        self.written, self.failures = written, failures


def load_translator(model_or_dir: str | os.PathLike | nn.Module, direction: str = "AtoB",
                    pretrained: bool = False) -> nn.Module:
    """The generator that translates in ``direction``, from a model, a name, a folder or an exported ``.onnx``.

    Everything but ``.onnx`` is resolved by :func:`vgzoo._factory.load_model`, as for every command.

    Args:
        model_or_dir: a built model or generator; a folder written by ``vgzoo.save_pretrained`` or ``vgzoo
            convert`` (a ``vgzoo train`` run folder means its final model); ``local-dir:``/``hf-hub:`` sources; a
            registered model name or ``name.tag``; or a ``.onnx`` file written by ``vgzoo export`` (run with
            onnxruntime, see vgzoo.export).
        direction: ``"AtoB"`` or ``"BtoA"`` (CycleGAN only; pix2pix and lone generators translate one way).
        pretrained: with a model name, load its published weights (otherwise its weights are random).
    """
    from ._factory import load_model

    if direction not in ("AtoB", "BtoA"):
        raise ValueError(f"direction={direction!r}; expected 'AtoB' or 'BtoA'.")
    if not isinstance(model_or_dir, nn.Module):
        path = Path(str(model_or_dir))
        if path.suffix.lower() == ".onnx" and path.is_file():  # an exported file: onnxruntime
            from .export import load_onnx_translator

            return load_onnx_translator(path, direction)
    model = load_model(model_or_dir, pretrained=pretrained, needs=Translator)
    directions = model.directions if isinstance(model, Translator) else ("AtoB",)  # a lone generator: one way
    if direction not in directions:
        raise ValueError(f"direction={direction!r}: this {type(model).__name__} has a single generator, which "
                         f"translates only {' and '.join(directions)}, the way it was trained. Use a CycleGAN for "
                         "both directions.")
    return model.inference_generator(direction) if isinstance(model, Translator) else model


def pad_to_multiple(x: torch.Tensor, multiple: int,
                    min_size: int = 1) -> tuple[torch.Tensor, tuple[int, int, int, int]]:
    """Reflect-pad (N, C, H, W) evenly so that H and W are multiples of ``multiple`` and at least ``min_size``.

    Images smaller than the padding are reflected repeatedly (a 1-pixel side is repeated). Returns the padded
    tensor and the crop box ``(top, left, H, W)`` that recovers the original.
    """
    h, w = x.shape[-2:]
    th, tw = (math.ceil(max(side, min_size) / multiple) * multiple for side in (h, w))
    ph, pw = th - h, tw - w
    top, left = ph // 2, pw // 2
    need = [left, pw - left, top, ph - top]
    while any(need):
        ch, cw = x.shape[-2:]
        step = [min(need[0], cw - 1), min(need[1], cw - 1), min(need[2], ch - 1), min(need[3], ch - 1)]
        if not any(step):  # a 1-pixel side cannot be reflected: repeat it
            x = F.pad(x, need, mode="replicate")
            break
        x = F.pad(x, step, mode="reflect")
        need = [n - s for n, s in zip(need, step, strict=True)]
    return x, (top, left, h, w)


def translate_tensor(generator: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Translate a batch in [-1, 1] of any size: pad to the generator's size multiple (and its smallest size, e.g.
    8 for a ResNet generator, whose reflection pads need more pixels than a 4x4 image has), run, crop back."""
    multiple = int(getattr(generator, "size_multiple", 1))
    padded, (top, left, h, w) = pad_to_multiple(x, multiple, int(getattr(generator, "min_size", 1)))
    return generator(padded)[..., top:top + h, left:left + w]


def list_inputs(input_path: str | os.PathLike) -> list[Path]:
    """The image files to translate: the file itself, or a folder's images (sorted, not recursive)."""
    path = Path(input_path)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise DataNotFoundError(f"Input {str(path)!r} does not exist; expected an image file or a folder of images.")
    files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise DataNotFoundError(f"Folder {str(path)!r} holds no images (looked for {', '.join(IMAGE_SUFFIXES)}).")
    return files


def read_image(path: Path, channels: int) -> torch.Tensor:
    """One image as a (1, C, H, W) tensor in [-1, 1], converted to ``channels`` (1 grey, 3 RGB, 4 RGBA)."""
    if channels not in _MODES:
        raise DataError(f"The generator takes {channels}-channel images; image files hold 1, 3 or 4 channels.")
    return (to_tensor(load_image(path, channels)) * 2 - 1).unsqueeze(0)


def output_pixels(y: torch.Tensor) -> torch.Tensor:
    """A generator's (N, C, H, W) output in [-1, 1] as uint8 (N, H, W, C) on the CPU, ready for :func:`save_image`.

    Converted where the output lies (on a GPU, a quarter of the bytes cross to the host) and in the calling thread:
    torch's elementwise ops started from a writer thread bring up a second team of torch threads, which then
    competes with the generator's for the cores.
    """
    if y.shape[1] not in _MODES:
        raise DataError(f"Cannot write a {y.shape[1]}-channel output as an image (1, 3 or 4 channels).")
    return to_uint8(y).permute(0, 2, 3, 1).cpu()


def write_image(x: torch.Tensor, path: Path) -> None:
    """Write a (C, H, W) tensor in [-1, 1] as an image (the suffix picks the format)."""
    save_image(output_pixels(x[None])[0], path)


def output_targets(files: list[Path], input_path: str | os.PathLike, output_path: str | os.PathLike) -> list[Path]:
    """Where each input's result goes; refuses any plan that would write over an input or over another output.

    One input file and an output with an image suffix: that file. Otherwise ``OUTPUT/<stem>.png``; inputs that
    share a stem (``a.png`` and ``a.jpg``) keep their suffix in the name (``a.png.png``, ``a.jpg.png``).

    Raises:
        DataError: the output is (or is inside) the input folder, a result would replace an input file, or two
            results would share a name.
    """
    src, out = Path(input_path), Path(output_path)
    if src.is_dir():
        s, o = src.resolve(), out.resolve()
        if o == s:
            raise DataError(f"output folder {str(out)!r} is the input folder; the results would mix with (and could "
                            "replace) the inputs. Choose another output folder.")
        if s in o.parents:
            raise DataError(f"output folder {str(out)!r} is inside the input folder {str(src)!r}; choose an output "
                            "folder outside it.")
    if len(files) == 1 and src.is_file() and out.suffix.lower() in IMAGE_SUFFIXES:
        targets = [out]
    else:
        stems = Counter(f.stem for f in files)
        targets = [out / (f"{f.stem}.png" if stems[f.stem] == 1 else f"{f.name}.png") for f in files]
        clash = [t.name for t, n in Counter(targets).items() if n > 1] if len(set(targets)) < len(targets) else []
        if clash:
            raise DataError(f"inputs would share the output name(s) {', '.join(clash)} in {str(out)!r}; rename the "
                            "inputs so that their names differ.")
    inputs = {f.resolve(): f for f in files}
    for target in targets:
        if target.resolve() in inputs:
            raise DataError(f"output {str(target)!r} would overwrite the input image "
                            f"{str(inputs[target.resolve()])!r}; choose another output path (translate never writes "
                            "over its inputs).")
    return targets


class Translated(list):
    """The files :func:`translate` wrote (a list, in input order) and ``inference``: what ran
    (:meth:`vgzoo.inference.InferenceMode.to_dict`)."""

    inference: dict[str, Any]


def translate(
    model_or_dir: str | os.PathLike | nn.Module,
    input_path: str | os.PathLike,
    output_path: str | os.PathLike,
    direction: str = "AtoB",
    batch_size: int = 1,
    device: str | torch.device | None = "auto",
    eval_mode: bool = True,
    pretrained: bool = False,
    progress: bool = True,
    precision: str | None = "auto",
    compile: bool = False,
    workers: int | None = None,
) -> Translated:
    """Translate an image file or a folder of images and write the results.

    Args:
        model_or_dir: see :func:`load_translator`; a ``vgzoo train`` run directory means its ``final/`` model.
        input_path: an image file, a folder of images, or a reference dataset split (``cyclegan:horse2zebra/testA``).
        output_path: a folder (created), or, for a single input file, a file name with an image suffix.
            Outputs in a folder are named after their inputs, as PNG (see :func:`output_targets`). Neither may
            be an input file or lie inside the input folder.
        direction: ``"AtoB"`` or ``"BtoA"`` (CycleGAN).
        batch_size: images per forward pass (images of one size share a batch).
        device: where the generator runs; ``auto``: CUDA when present, else the CPU.
        eval_mode: eval mode (default); False keeps dropout and batch statistics, as the reference's test does.
        pretrained: with a model name, load its published weights.
        progress: show a progress bar.
        precision: ``auto`` (bf16 autocast where the hardware has bf16 units, else fp32), ``fp32``, ``bf16`` or
            ``fp16``; a reduced precision is checked against fp32 on the first batch (see :mod:`vgzoo.inference`).
        compile: ``torch.compile`` the generator.
        workers: processes decoding the input files while the generator runs (default: up to 4 for a GPU, none
            on the CPU, whose cores the generator uses, or for fewer than 8 files; 0: none).

    Returns:
        The written files, in input order (a :class:`Translated` list; ``.inference`` says what ran).

    Raises:
        TranslationError: in a folder run, some images could not be read or translated; every other image was
            written, and the error lists the failures (``.failures``) and the written files (``.written``).
    """
    from concurrent.futures import ThreadPoolExecutor

    from tqdm.auto import tqdm

    from .export import OnnxModel
    from .inference import GuardedRunner, inference_mode, load_image_batches, prepare_module
    from .precision import Precision

    if batch_size < 1:
        raise ValueError(f"batch_size={batch_size}; expected 1 or more.")
    mode = inference_mode(device, precision, compile)
    input_path = resolve_input(input_path)  # a reference dataset split, e.g. cyclegan:horse2zebra/testA
    files = list_inputs(input_path)
    targets = output_targets(files, input_path, output_path)
    generator = load_translator(model_or_dir, direction, pretrained)
    if isinstance(generator, OnnxModel):  # onnxruntime runs the exported graph as it was written
        mode.precision = Precision(None, False, mode.device.type, "fp32: an exported .onnx runs as exported")
        mode.compile = False
    generator = generator.to(mode.device)
    generator.train(not eval_mode)
    channels = int(getattr(generator, "in_chans", 3))
    compiled = prepare_module(generator, mode)
    runner = GuardedRunner(lambda x: translate_tensor(compiled, x), mode, "images",
                           reference_fn=lambda x: translate_tensor(generator, x),
                           calls=math.ceil(len(files) / batch_size))  # at least: a batch holds images of one size
    done: dict[int, Path] = {}
    failures: dict[int, str] = {}

    def write(i: int, pixels: torch.Tensor) -> None:
        try:
            save_image(pixels, targets[i])
            done[i] = targets[i]
        except DataError as exc:
            if len(files) == 1:
                raise
            failures[i] = str(exc)

    def run(indices: list[int], x: torch.Tensor) -> list[tuple[int, torch.Tensor]]:
        try:
            y = runner(x.to(mode.device))
        except Exception as exc:  # noqa: BLE001 - one image's failure must not stop the folder
            if len(files) == 1:
                raise
            if len(indices) > 1:  # find which image of the batch fails
                return [pair for k, i in enumerate(indices) for pair in run([i], x[k:k + 1])]
            failures[indices[0]] = f"{type(exc).__name__}: {' '.join(str(exc).split())}"
            return []
        try:
            pixels = output_pixels(y)
        except DataError as exc:
            if len(files) == 1:
                raise
            failures.update((i, str(exc)) for i in indices)
            return []
        return list(zip(indices, pixels, strict=True))

    read = functools.partial(read_image, channels=channels)
    with torch.no_grad(), runner, tqdm(total=len(files), desc="translate", unit="img", disable=not progress) as bar, \
            ThreadPoolExecutor(max_workers=2) as writer:  # PNG encoding and fsync overlap the next batch's forward
        pending = []
        for indices, x, failure in load_image_batches(files, read, batch_size, workers, mode.device):
            if failure is not None:
                if len(files) == 1:
                    raise DataError(failure[1])
                failures[failure[0]] = failure[1]
            else:
                pending += [writer.submit(write, i, pixels) for i, pixels in run(indices, x)]
            bar.update(len(done) + len(failures) - bar.n)
        for job in pending:
            job.result()
        bar.update(len(files) - bar.n)
    written = Translated(done[i] for i in sorted(done))
    written.inference = mode.to_dict()
    if failures:
        listed = "; ".join(f"{str(files[i])!r}: {why.rstrip('.')}" for i, why in sorted(failures.items()))
        error = TranslationError(
            f"{len(failures)} of {len(files)} images could not be translated (the other {len(written)} were written "
            f"to {str(output_path)!r}): {listed}. Fix or remove these files and run again.",
            written, [(files[i], why) for i, why in sorted(failures.items())],
        )
        error.inference = written.inference
        raise error
    return written
