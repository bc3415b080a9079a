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

import math
import os
import warnings
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ._runtime import check_device, run_model_folder
from .data.images import IMG_EXTENSIONS, check_decode_budget
from .data.reference import resolve_input
from .errors import DataError, DataNotFoundError
from .protocols import Translator, ZooModel

IMAGE_SUFFIXES = IMG_EXTENSIONS  # the datasets' list: a folder translates the images a dataset would read
_MODES = {1: "L", 3: "RGB", 4: "RGBA"}
TRANSLATION_TASKS = ("paired_translation", "unpaired_translation")


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
    """The generator that translates in ``direction``, from a model, a name or a folder.

    Args:
        model_or_dir: a built model or generator; a folder written by ``vgzoo.save_pretrained`` or by
            ``vgzoo convert pix2pix-reference``; ``local-dir:``/``hf-hub:`` sources; or a registered model name.
        direction: ``"AtoB"`` or ``"BtoA"`` (CycleGAN only; pix2pix and lone generators translate one way).
        pretrained: with a model name, load its published weights (otherwise its weights are random).
    """
    from ._factory import load_model

    if direction not in ("AtoB", "BtoA"):
        raise ValueError(f"direction={direction!r}; expected 'AtoB' or 'BtoA'.")
    path = None if isinstance(model_or_dir, nn.Module) else Path(str(model_or_dir))
    final = run_model_folder(path) if path is not None else None
    if final is not None:  # a `vgzoo train` run directory: its finished model
        warnings.warn(f"{str(path)!r} is a training run; using its final model {str(final)!r}", stacklevel=2)
        path = model_or_dir = final
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
        raise ValueError(f"direction={direction!r}: this {type(model).__name__} has a single generator, which "
                         f"translates only {' and '.join(directions)}, the way it was trained. Use a CycleGAN for "
                         "both directions.")
    return model.inference_generator(direction) if isinstance(model, Translator) else model


def pad_to_multiple(x: torch.Tensor, multiple: int, min_size: int = 1) -> tuple[torch.Tensor, tuple[int, int, int, int]]:
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
    from PIL import Image, UnidentifiedImageError

    if channels not in _MODES:
        raise DataError(f"The generator takes {channels}-channel images; image files hold 1, 3 or 4 channels.")
    try:
        with Image.open(path) as im:
            check_decode_budget(im, path, channels)
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


def _batches(files: list[Path], channels: int, batch_size: int,
             failures: list[tuple[Path, str]]) -> Iterator[tuple[list[Path], torch.Tensor]]:
    group: list[Path] = []
    images: list[torch.Tensor] = []
    for f in files:
        try:
            x = read_image(f, channels)
        except DataError as exc:
            if len(files) == 1:
                raise
            failures.append((f, str(exc)))
            continue
        if images and (len(images) == batch_size or images[0].shape != x.shape):
            yield group, torch.cat(images)
            group, images = [], []
        group.append(f)
        images.append(x)
    if images:
        yield group, torch.cat(images)


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
            raise DataError(f"output {str(target)!r} would overwrite the input image {str(inputs[target.resolve()])!r}; "
                            "choose another output path (translate never writes over its inputs).")
    return targets


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
        model_or_dir: see :func:`load_translator`; a ``vgzoo train`` run directory means its ``final/`` model.
        input_path: an image file, a folder of images, or a reference dataset split (``cyclegan:horse2zebra/testA``).
        output_path: a folder (created), or, for a single input file, a file name with an image suffix.
            Outputs in a folder are named after their inputs, as PNG (see :func:`output_targets`). Neither may
            be an input file or lie inside the input folder.
        direction: ``"AtoB"`` or ``"BtoA"`` (CycleGAN).
        batch_size: images per forward pass (consecutive images of one size share a batch).
        device: where the generator runs.
        eval_mode: eval mode (default); False keeps dropout and batch statistics, as the reference's test does.
        pretrained: with a model name, load its published weights.
        progress: show a progress bar.

    Returns:
        The written files, in input order.

    Raises:
        TranslationError: in a folder run, some images could not be read or translated; every other image was
            written, and the error lists the failures (``.failures``) and the written files (``.written``).
    """
    from tqdm.auto import tqdm

    if batch_size < 1:
        raise ValueError(f"batch_size={batch_size}; expected 1 or more.")
    device = check_device(device)
    input_path = resolve_input(input_path)  # a reference dataset split, e.g. cyclegan:horse2zebra/testA
    files = list_inputs(input_path)
    targets = dict(zip(files, output_targets(files, input_path, output_path), strict=True))
    generator = load_translator(model_or_dir, direction, pretrained).to(device)
    generator.train(not eval_mode)
    channels = int(getattr(generator, "in_chans", 3))
    written: list[Path] = []
    failures: list[tuple[Path, str]] = []

    def run(group: list[Path], x: torch.Tensor) -> None:
        try:
            y = translate_tensor(generator, x.to(device))
        except Exception as exc:  # noqa: BLE001 - one image's failure must not stop the folder
            if len(files) == 1:
                raise
            if len(group) > 1:  # find which image of the batch fails
                for i, f in enumerate(group):
                    run([f], x[i:i + 1])
                return
            failures.append((group[0], f"{type(exc).__name__}: {' '.join(str(exc).split())}"))
            return
        for f, img in zip(group, y, strict=True):
            write_image(img, targets[f])
            written.append(targets[f])

    with torch.no_grad(), tqdm(total=len(files), desc="translate", unit="img", disable=not progress) as bar:
        for group, x in _batches(files, channels, batch_size, failures):
            run(group, x)
            bar.update(len(written) + len(failures) - bar.n)
        bar.update(len(files) - bar.n)  # images that failed to read after the last batch
    if failures:
        order = {f: i for i, f in enumerate(files)}
        listed = "; ".join(f"{str(f)!r}: {why.rstrip('.')}" for f, why in sorted(failures, key=lambda p: order[p[0]]))
        raise TranslationError(
            f"{len(failures)} of {len(files)} images could not be translated (the other {len(written)} were written "
            f"to {str(output_path)!r}): {listed}. Fix or remove these files and run again.",
            written, failures,
        )
    return written
