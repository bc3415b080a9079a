"""Image-to-image translation of files and folders with a pix2pix (Isola et al. 2017) or CycleGAN (Zhu et al.
2017) generator: the library function behind ``vgzoo translate``.

Images of any size work: each is reflect-padded (evenly on both sides) to the next size the generator accepts
(a multiple of 4 for ResNet generators, of ``2 ** num_downs`` for U-Nets), translated, and cropped back.
Networks run in eval mode by default; ``eval_mode=False`` keeps dropout and batch statistics on, which is what
the reference implementation does at test time for pix2pix.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .data.images import IMG_EXTENSIONS
from .errors import DataError, DataNotFoundError
from .protocols import Translator, ZooModel

IMAGE_SUFFIXES = IMG_EXTENSIONS  # the datasets' list: a folder translates the images a dataset would read
_MODES = {1: "L", 3: "RGB", 4: "RGBA"}
TRANSLATION_TASKS = ("paired_translation", "unpaired_translation")


def load_translator(model_or_dir: str | os.PathLike | nn.Module, direction: str = "AtoB",
                    pretrained: bool = False) -> nn.Module:
    """The generator that translates in ``direction``, from a model, a name or a folder.

    Args:
        model_or_dir: a built model or generator; a folder written by ``vgzoo.save_pretrained`` or by
            ``vgzoo convert pix2pix-reference``; ``local-dir:``/``hf-hub:`` sources; a registered model name; or
            a ``.onnx`` file written by ``vgzoo export`` (run with onnxruntime, see vgzoo.export).
        direction: ``"AtoB"`` or ``"BtoA"`` (CycleGAN only; pix2pix and lone generators translate one way).
        pretrained: with a model name, load its published weights (otherwise its weights are random).
    """
    from ._factory import load_model

    if direction not in ("AtoB", "BtoA"):
        raise ValueError(f"direction={direction!r}; expected 'AtoB' or 'BtoA'.")
    path = None if isinstance(model_or_dir, nn.Module) else Path(str(model_or_dir))
    if path is not None and path.suffix.lower() == ".onnx" and path.is_file():  # an exported file: onnxruntime
        from .export import load_onnx_translator

        return load_onnx_translator(path, direction)
    if path is not None and path.is_dir() and not (path / "config.json").is_file():
        from .convert.reference import GENERATOR_CONFIG, load_generator_dir

        if (path / GENERATOR_CONFIG).is_file():
            model = load_generator_dir(path)
        else:
            hint = ""
            if any(path.glob("*_net_*.pth")):
                hint = (" It holds reference .pth checkpoints: convert them first with `vgzoo convert "
                        "pix2pix-reference --dir DIR --model cycle_gan|pix2pix OUT_DIR`.")
            raise DataNotFoundError(
                f"{str(path)!r} is a folder but holds neither config.json (vgzoo.save_pretrained) nor "
                f"{GENERATOR_CONFIG} (vgzoo convert pix2pix-reference).{hint}"
            )
    else:
        model = load_model(model_or_dir, pretrained=pretrained, tasks=TRANSLATION_TASKS)
    if isinstance(model, ZooModel) and not isinstance(model, Translator):
        raise ValueError(f"{type(model).__name__} is not a translation model (vgzoo.protocols.Translator).")
    directions = model.directions if isinstance(model, Translator) else ("AtoB",)  # a lone generator: one way
    if direction not in directions:
        raise ValueError(f"direction={direction!r}: this {type(model).__name__} translates only "
                         f"{' and '.join(directions)}, the way it was trained. Use a CycleGAN for both directions.")
    return model.inference_generator(direction) if isinstance(model, Translator) else model


def pad_to_multiple(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, tuple[int, int, int, int]]:
    """Reflect-pad (N, C, H, W) evenly so that H and W are multiples of ``multiple``.

    Images smaller than the padding are reflected repeatedly. Returns the padded tensor and the crop box
    ``(top, left, H, W)`` that recovers the original.
    """
    h, w = x.shape[-2:]
    ph, pw = math.ceil(h / multiple) * multiple - h, math.ceil(w / multiple) * multiple - w
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
    """Translate a batch in [-1, 1] of any size: pad to the generator's size multiple, run, crop back."""
    multiple = int(getattr(generator, "size_multiple", 1))
    padded, (top, left, h, w) = pad_to_multiple(x, multiple)
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
    from PIL import Image, UnidentifiedImageError

    if channels not in _MODES:
        raise DataError(f"The generator takes {channels}-channel images; image files hold 1, 3 or 4 channels.")
    try:
        with Image.open(path) as im:
            im = im.convert(_MODES[channels])
            data = torch.frombuffer(bytearray(im.tobytes()), dtype=torch.uint8)
            size = im.size
    except (UnidentifiedImageError, OSError) as exc:
        raise DataError(f"Cannot read image {str(path)!r}: {exc}. Expected a PNG/JPEG/... file.") from exc
    x = data.view(size[1], size[0], channels).permute(2, 0, 1).float().div(255.0)
    return (x * 2 - 1).unsqueeze(0)


def write_image(x: torch.Tensor, path: Path) -> None:
    """Write a (C, H, W) tensor in [-1, 1] as an image (the suffix picks the format)."""
    from PIL import Image

    if x.shape[0] not in _MODES:
        raise DataError(f"Cannot write a {x.shape[0]}-channel output as an image (1, 3 or 4 channels).")
    from ._hub import atomic_write

    fmt = Image.registered_extensions().get(path.suffix.lower())
    if fmt is None:
        raise DataError(f"Cannot write {str(path)!r}: unknown image suffix; use .png, .jpg, ...")
    arr = ((x.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 0).numpy()
    image = Image.fromarray(arr[..., 0] if x.shape[0] == 1 else arr, mode=None)
    atomic_write(path, lambda tmp: image.save(tmp, format=fmt))  # never a half-written image where one stood


def _batches(files: list[Path], channels: int, batch_size: int) -> Iterator[tuple[list[Path], torch.Tensor]]:
    group: list[Path] = []
    images: list[torch.Tensor] = []
    for f in files:
        x = read_image(f, channels)
        if images and (len(images) == batch_size or images[0].shape != x.shape):
            yield group, torch.cat(images)
            group, images = [], []
        group.append(f)
        images.append(x)
    if images:
        yield group, torch.cat(images)


def translate(
    model_or_dir: str | os.PathLike | nn.Module,
    input_path: str | os.PathLike,
    output_path: str | os.PathLike,
    direction: str = "AtoB",
    batch_size: int = 1,
    device: str | torch.device = "cpu",
    eval_mode: bool = True,
    pretrained: bool = False,
    progress: bool = True,
) -> list[Path]:
    """Translate an image file or a folder of images and write the results.

    Args:
        model_or_dir: see :func:`load_translator`.
        input_path: an image file or a folder of images.
        output_path: a folder (created), or, for a single input file, a file name with an image suffix.
            Outputs in a folder are named after their inputs, as PNG.
        direction: ``"AtoB"`` or ``"BtoA"`` (CycleGAN).
        batch_size: images per forward pass (consecutive images of one size share a batch).
        device: where the generator runs.
        eval_mode: eval mode (default); False keeps dropout and batch statistics, as the reference's test does.
        pretrained: with a model name, load its published weights.
        progress: show a progress bar.

    Returns:
        The written files, in input order.
    """
    from tqdm.auto import tqdm

    if batch_size < 1:
        raise ValueError(f"batch_size={batch_size}; expected 1 or more.")
    generator = load_translator(model_or_dir, direction, pretrained).to(device)
    generator.train(not eval_mode)
    files = list_inputs(input_path)
    out = Path(output_path)
    single_file = len(files) == 1 and Path(input_path).is_file() and out.suffix.lower() in IMAGE_SUFFIXES
    channels = int(getattr(generator, "in_chans", 3))
    written: list[Path] = []
    with torch.no_grad(), tqdm(total=len(files), desc="translate", unit="img", disable=not progress) as bar:
        for group, x in _batches(files, channels, batch_size):
            y = translate_tensor(generator, x.to(device))
            for f, img in zip(group, y, strict=True):
                target = out if single_file else out / f"{f.stem}.png"
                write_image(img, target)
                written.append(target)
            bar.update(len(group))
    return written
