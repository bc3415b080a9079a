"""``vgzoo demo``: a local web page that runs a model on what you upload or pick, one layout per task.

The page is built with Gradio (the optional extra ``vgzoo[demo]``) and served on 127.0.0.1 unless asked
otherwise. What the page does is in :class:`DemoModel`, plain Python that the tests call without a browser;
:func:`build_demo` only lays it out:

- translation (pix2pix, CycleGAN): upload -> input and output side by side, the output as a PNG download;
- conditional generation (cGAN): class picker, seed and samples per class -> a grid, a row per class;
- generation: seed and count -> a grid;
- seeded generators (StyleGAN2, BigGAN: :class:`~vgzoo.protocols.SeededSampler`): seed, truncation and class -> the
  image the reference code draws for that seed, converted as it converts (``vgzoo generate --seeds`` gives the same);
- classification: upload -> top-5 classes and, for ViTs, the attention rollout over the image;
- restoration: upload -> the degraded input and its restoration side by side.

Uploads are limited in bytes (by Gradio, before they reach vgzoo) and in pixels, and a file that is not an
image is answered with a message saying so.

Everything the page stores (Gradio's copies of the uploads, rejected ones included, its cached previews, and the
PNGs offered for download) goes into one private folder per process, ``TMPDIR/vgzoo-demo-<pid>-*`` (mode 0700,
Gradio's ``GRADIO_TEMP_DIR`` points into it), which is deleted when the demo exits; a folder left behind by a demo
that could not clean up (SIGKILL, power loss) is deleted by the next demo once its process is gone.
"""

from __future__ import annotations

import atexit
import os
import re
import shutil
import signal
import tempfile
import threading
from pathlib import Path
from typing import Any

from ..errors import DataError, VgzooError

MAX_UPLOAD_MB = 10
MAX_PIXELS = 4096 * 4096  # decoded size guard (a small PNG can decode to gigabytes)
MAX_SIDE = 512  # translation and restoration run on CPU by default: larger uploads are scaled down to this side
_MODES = {1: "L", 3: "RGB"}


class DemoDependencyError(VgzooError, ImportError):
    """Gradio, which the demo page needs, is not installed."""


class UploadError(DataError):
    """An upload the demo cannot use: not an image, too many pixels, an unreadable file."""


WORKSPACE_PREFIX = "vgzoo-demo-"
# vgzoo-demo-<pid>-..., or vgzoo-demo-XXXXXXXX as earlier versions named it
_WORKSPACE_NAME = re.compile(re.escape(WORKSPACE_PREFIX) + r"(?:(\d+)-|[a-z0-9_]{8}$)")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return True


def sweep_workspaces(root: str | os.PathLike | None = None) -> list[Path]:
    """Delete the demo folders in ``root`` (the temp folder) whose process has ended; the folders deleted.

    Only folders of this user are touched: ``vgzoo-demo-<pid>-...`` with no live process ``pid``, and the
    ``vgzoo-demo-XXXXXXXX`` folders of earlier versions, which never removed them.
    """
    root = Path(root or tempfile.gettempdir())
    removed = []
    try:
        entries = list(root.iterdir())
    except OSError:
        return removed
    for path in entries:
        match = _WORKSPACE_NAME.match(path.name)
        try:
            mine = path.is_dir() and not path.is_symlink() and path.stat().st_uid == os.getuid()
        except OSError:
            continue
        pid = int(match.group(1)) if match and match.group(1) else None
        if match and mine and (pid is None or (pid != os.getpid() and not _alive(pid))):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


class DemoWorkspace:
    """The demo process's private folder: Gradio's uploads and cache in ``gradio/``, the page's PNGs in ``outputs/``.

    Created with mode 0700 (``mkdtemp``), so no other user reads the uploads or previews; removed at exit.
    """

    def __init__(self) -> None:
        sweep_workspaces()
        self.root = Path(tempfile.mkdtemp(prefix=f"{WORKSPACE_PREFIX}{os.getpid()}-"))
        self.gradio = self.root / "gradio"
        self.outputs = self.root / "outputs"
        # Gradio reads it when it stores an upload or a preview (and, for a few modules, on import)
        os.environ["GRADIO_TEMP_DIR"] = str(self.gradio)
        atexit.register(self.remove)

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


_workspace: DemoWorkspace | None = None
_workspace_lock = threading.Lock()


def workspace() -> DemoWorkspace:
    """This process's :class:`DemoWorkspace`, created on first use (before Gradio is imported by the demo)."""
    global _workspace
    with _workspace_lock:
        if _workspace is None or not _workspace.root.is_dir():
            _workspace = DemoWorkspace()
        return _workspace


def require_gradio():
    """Import Gradio (into this process's private demo folder), or say which extra installs it."""
    workspace()
    try:
        import gradio
    except ImportError as exc:
        raise DemoDependencyError(
            "vgzoo demo needs Gradio, which is not installed. Install the demo extra: pip install 'vgzoo[demo]' "
            f"(or pip install gradio). ({exc})"
        ) from None
    return gradio


def load_demo_model(model: Any, pretrained: bool = False):
    """A model from a name (with ``pretrained``), a saved folder, a training run folder or an ``hf-hub:`` source."""
    from torch import nn

    from .._factory import load_model
    from .push import resolve_model_dir

    if isinstance(model, nn.Module):
        return model
    text = str(model)
    if not text.startswith("hf-hub:") and Path(text.removeprefix("local-dir:")).expanduser().is_dir():
        text = f"local-dir:{resolve_model_dir(text)}"
    return load_model(text, pretrained=pretrained)


def _to_pil(x):
    """(C, H, W) in [-1, 1] -> PIL image."""
    from PIL import Image

    from ..data.images import to_uint8

    arr = to_uint8(x.unsqueeze(0))[0].permute(1, 2, 0).numpy()
    return Image.fromarray(arr[..., 0] if arr.shape[-1] == 1 else arr)


def _grid_pil(images, rows: int):
    from PIL import Image

    from ..data.images import to_uint8
    from ..generate import MIN_CELL_PIXELS, make_grid

    pixels = to_uint8(images).permute(0, 2, 3, 1)
    scale = max(1, MIN_CELL_PIXELS // max(pixels.shape[1], pixels.shape[2]))
    grid = make_grid(pixels, rows=rows, scale=scale).numpy()
    return Image.fromarray(grid[..., 0] if grid.shape[-1] == 1 else grid)


class DemoModel:
    """What the demo page does, without the page: each method takes and returns PIL images and plain values."""

    def __init__(self, model, max_pixels: int = MAX_PIXELS, max_side: int = MAX_SIDE, *, device: Any = "auto",
                 precision: str | None = "auto", compile: bool = False) -> None:
        """``device``, ``precision`` and ``compile`` as in :mod:`vgzoo.inference` (``auto``: CUDA when present; bf16
        autocast where the hardware has bf16 units, checked against fp32 on the first request of each kind)."""
        from ..inference import inference_mode

        self.mode = inference_mode(device, precision, compile)
        self.device = self.mode.device
        self.model = model.eval().to(self.device)
        self.cfg = dict(getattr(model, "pretrained_cfg", None) or {})
        self.task = self.cfg.get("task")
        self.name = self.cfg.get("architecture", type(model).__name__)
        self.max_pixels, self.max_side = max_pixels, max_side
        self._runners: dict[Any, Any] = {}
        from ..errors import PluginError
        from ..tasks import UnknownTaskError, get_task, list_tasks

        try:
            self.page = get_task(self.task).page  # the task record says which page layout fits
        except (UnknownTaskError, PluginError) as exc:
            raise ValueError(f"{self.name} has task {self.task!r} ({exc}); vgzoo demo shows models of task "
                             f"{', '.join(list_tasks())}.") from exc

    def _runner(self, key: Any, network, kind: str, call=None):
        """One guarded runner per network (a generator per direction, the classifier, ...), made on first use."""
        from ..inference import GuardedRunner, prepare_module

        if key not in self._runners:
            call = call or (lambda net, *args: net(*args))
            fast = prepare_module(network, self.mode)
            self._runners[key] = GuardedRunner(lambda *args: call(fast, *args), self.mode, kind,
                                               reference_fn=lambda *args: call(network, *args))
        return self._runners[key]

    # ------------------------------------------------------------------------------------- inputs
    def load_upload(self, path: str | os.PathLike | None):
        """Open an uploaded file as a PIL image, or raise :class:`UploadError` saying what was wrong."""
        from PIL import Image, UnidentifiedImageError

        if path is None:
            raise UploadError("No image yet: upload a PNG or JPEG file first.")
        name = Path(path).name
        try:
            with Image.open(path) as im:
                w, h = im.size
                if w * h > self.max_pixels:
                    raise UploadError(f"{name} is {w}x{h} pixels; the demo takes images of at most "
                                      f"{self.max_pixels:,} pixels. Scale it down and upload it again.")
                im.load()
                return im.copy()
        except UploadError:
            raise
        except (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError) as exc:
            raise UploadError(f"{name} is not an image vgzoo can read ({type(exc).__name__}). Upload a PNG, JPEG, "
                              "BMP or WebP file.") from None

    def _fit(self, image):
        """Scale an image down (aspect kept) so that its longer side is at most ``max_side``."""
        from PIL import Image

        w, h = image.size
        if max(w, h) <= self.max_side:
            return image
        k = self.max_side / max(w, h)
        return image.resize((max(1, round(w * k)), max(1, round(h * k))), Image.Resampling.BICUBIC)

    def _tensor(self, image, channels: int, size: tuple[int, int] | None = None):
        import numpy as np
        import torch
        from PIL import Image

        image = image.convert(_MODES.get(channels, "RGB"))
        if size is not None:
            image = image.resize((size[1], size[0]), Image.Resampling.BICUBIC)
        arr = np.asarray(image, dtype=np.float32).reshape(image.size[1], image.size[0], -1) / 127.5 - 1.0
        return torch.from_numpy(arr).permute(2, 0, 1).unsqueeze(0).to(self.device)

    # ------------------------------------------------------------------------------------- tasks
    def translate(self, image, direction: str = "AtoB"):
        """``(input as the generator saw it, output)`` for one image."""
        import torch

        from ..translate import load_translator, translate_tensor

        generator = load_translator(self.model, direction).eval()
        shown = self._fit(image.convert("RGB") if image.mode not in ("L", "RGB") else image)
        x = self._tensor(shown, int(getattr(generator, "in_chans", 3)))
        run = self._runner(("translate", direction), generator, "images", translate_tensor)
        with torch.no_grad():
            y = run(x)[0]
        return _to_pil(x[0]), _to_pil(y)

    @property
    def directions(self) -> tuple[str, ...]:
        """The ways the model translates (a :class:`~vgzoo.protocols.Translator`'s ``directions``): the page offers
        a choice when there are several, whatever the task is called."""
        from ..protocols import Translator

        return tuple(self.model.directions) if isinstance(self.model, Translator) else ("AtoB",)

    def class_names(self) -> list[str]:
        n = int(getattr(self.model, "num_classes", 0) or self.cfg.get("num_classes") or 0)
        names = self.cfg.get("label_names") or self.cfg.get("class_names")
        return [str(v) for v in names][:n] if names else [str(i) for i in range(n)]

    def generate(self, classes: list[int] | None = None, seed: int = 0, per_class: int = 8):
        """A grid: one row per class (conditional) or ``per_class`` samples (unconditional)."""
        import torch

        g = torch.Generator().manual_seed(int(seed))
        per_class = int(per_class)
        run = self._runner("generate", self.model, "images")
        with torch.no_grad():  # z drawn as model.sample draws it, then the generator (forward) in the run's precision
            if self.conditional:
                rows = [int(c) for c in (classes if classes else range(len(self.class_names())))]
                images = torch.cat([
                    run(self.model.sample_z(per_class, generator=g).to(self.device),
                        torch.full((per_class,), c, dtype=torch.long, device=self.device)).cpu() for c in rows
                ])
                return _grid_pil(images, rows=len(rows))
            images = run(self.model.sample_z(per_class, generator=g).to(self.device)).cpu()
        rows = max(1, int(per_class**0.5))
        while per_class % rows:
            rows -= 1
        return _grid_pil(images, rows=rows)

    @property
    def conditional(self) -> bool:
        """The model draws images of chosen classes (a :class:`~vgzoo.protocols.ConditionalSampler`), whatever its
        task is called."""
        from ..protocols import ConditionalSampler

        return isinstance(self.model, ConditionalSampler)

    @property
    def seeded(self) -> bool:
        """The model draws images from seeds the reference's way (a :class:`~vgzoo.protocols.SeededSampler`)."""
        from ..protocols import SeededSampler

        return isinstance(self.model, SeededSampler)

    def generate_seed(self, seed: int = 0, truncation: float | None = None, class_: int | str | None = None):
        """The image of ``seed`` (and class) at ``truncation``, as ``vgzoo generate --seeds`` writes it (PIL)."""
        import torch
        from PIL import Image

        from ..generate import reference_uint8, resolve_classes

        if int(seed) < 0 or int(seed) >= 2**32:
            raise ValueError(f"seed {seed} is outside [0, 2**32): the reference's seeds are 32-bit unsigned integers.")
        psi = self.model.default_truncation if truncation is None else float(truncation)
        count = self.model.class_count()
        labels = None
        if count:
            index = resolve_classes(self.model, [0 if class_ is None else class_])[0]
            labels = torch.tensor([index], device=self.device)
        elif class_ not in (None, ""):
            raise ValueError(f"{self.name} is unconditional; it takes no class.")
        run = self._runner("generate_seed", self.model, "images", lambda net, *args: net.generate_images(*args))
        with torch.no_grad():  # latents in fp32 as the reference draws them; the generator in the run's precision
            z = self.model.latents_for_seeds([int(seed)], psi).to(self.device)
            pixels = reference_uint8(run(z, labels, psi))[0].numpy()
        return Image.fromarray(pixels[..., 0] if pixels.shape[-1] == 1 else pixels)

    def classify(self, image, top_k: int = 5) -> tuple[dict[str, float], Any]:
        """``({class name: probability} for the top ``top_k``, attention-rollout overlay or None)``."""
        import torch

        from ..viz import attention_overlay, preprocess_image

        x, shown = preprocess_image(image, self.cfg)
        x = x.to(self.device)
        run = self._runner("classify", self.model, "logits")
        with torch.no_grad():
            probs = run(x)[0].float().softmax(-1).cpu()
            overlay = None
            from ..models.vit import VisionTransformer

            if isinstance(self.model, VisionTransformer):
                relevance = self.model.attention_rollout(x)[0].float().cpu().numpy()
                overlay = attention_overlay(shown, relevance)
        names = self.class_names() or [str(i) for i in range(probs.numel())]
        values, idx = probs.topk(min(top_k, probs.numel()))
        labels = [names[int(i)] if int(i) < len(names) else str(int(i)) for i in idx]
        return {label: float(v) for label, v in zip(labels, values, strict=True)}, overlay

    def restore(self, image, seed: int = 0):
        """``(degraded input, restoration, PSNR in dB against the upload)`` at the model's input size."""
        import torch

        c, h, w = self.cfg.get("input_size", (3, 64, 64))
        clean = self._tensor(image, c, (h, w))
        g = torch.Generator().manual_seed(int(seed))
        with torch.no_grad():
            from ..protocols import Restorer

            degraded = self.model.degrade(clean, g) if isinstance(self.model, Restorer) else clean
            restored = self._runner("restore", self.model, "images")(degraded)
        shown = degraded[0, :c] if degraded.shape[1] > c else degraded[0]
        psnr = float(10 * torch.log10(4.0 / torch.mean((restored - clean) ** 2).clamp_min(1e-10)))
        return _to_pil(shown), _to_pil(restored[0]), psnr


def _save_png(image, folder: Path, stem: str) -> str:
    from .._hub import atomic_write

    folder.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f"{stem}-", suffix=".png", dir=folder)
    os.close(fd)
    atomic_write(name, lambda tmp: image.save(tmp, format="PNG"))
    return name


def _translation_page(gr, m: DemoModel, guard, note: str, out_dir: Path) -> None:
    """Upload -> input and output side by side, a PNG to download (a direction picker for a two-way translator)."""
    with gr.Row():
        upload = gr.File(label="Input image", file_types=["image"], type="filepath", elem_id="upload")
        direction = gr.Radio(list(m.directions), value=m.directions[0], label="Direction",
                             visible=len(m.directions) > 1, elem_id="direction")
    gr.Markdown(note + f" Larger than {m.max_side} px on a side is scaled down.")
    run = gr.Button("Translate", variant="primary", elem_id="run")
    with gr.Row():
        shown_in = gr.Image(label="Input", type="pil", interactive=False, elem_id="input-image")
        shown_out = gr.Image(label="Output", type="pil", format="png", interactive=False, elem_id="output-image")
    download = gr.File(label="Download the output (PNG)", elem_id="download")

    @guard
    def do_translate(path, d):
        src, out = m.translate(m.load_upload(path), d)
        return src, out, _save_png(out, out_dir, "translated")

    run.click(do_translate, [upload, direction], [shown_in, shown_out, download])


def _generation_page(gr, m: DemoModel, guard, note: str, out_dir: Path) -> None:
    """Class picker (conditional), seed and count -> a grid of samples to download."""
    with gr.Row():
        classes = None
        if m.conditional:
            names = m.class_names()
            classes = gr.CheckboxGroup([(n, i) for i, n in enumerate(names)], value=list(range(len(names))),
                                       label="Classes (one row each)", elem_id="classes")
        seed = gr.Number(value=0, precision=0, label="Seed", elem_id="seed")
        count = gr.Slider(1, 16, value=8, step=1, label="Samples per class" if classes else "Samples",
                          elem_id="count")
    run = gr.Button("Generate", variant="primary", elem_id="run")
    grid = gr.Image(label="Samples", type="pil", format="png", interactive=False, elem_id="output-image",
                    height=520)
    download = gr.File(label="Download the grid (PNG)", elem_id="download")

    @guard
    def do_generate(*args):
        picked, s, n = (args if classes is not None else (None, *args))
        if classes is not None and not picked:
            raise UploadError("Pick at least one class.")
        image = m.generate(picked, int(s or 0), int(n))
        return image, _save_png(image, out_dir, "samples")

    run.click(do_generate, ([classes] if classes is not None else []) + [seed, count], [grid, download])


def _seeded_page(gr, m: DemoModel, guard, note: str, out_dir: Path) -> None:
    """Seed, truncation (the reference's word for it) and class -> the seed's image to download."""
    model = m.model
    with gr.Row():
        seed = gr.Number(value=0, precision=0, minimum=0, label="Seed", elem_id="seed")
        truncation = gr.Slider(0.0, 1.5, value=float(model.default_truncation), step=0.05,
                               label=f"Truncation ({model.truncation_name})", elem_id="truncation")
        classes = None
        if model.class_count():
            names = list(model.class_names or [str(i) for i in range(model.class_count())])
            classes = gr.Dropdown([(n, i) for i, n in enumerate(names)], value=0, label="Class", elem_id="class")
    run = gr.Button("Generate", variant="primary", elem_id="run")
    image = gr.Image(label="Image", type="pil", format="png", interactive=False, elem_id="output-image", height=520)
    download = gr.File(label="Download the image (PNG)", elem_id="download")

    @guard
    def do_generate(s, t, c=None):
        picture = m.generate_seed(int(s or 0), float(t), c)
        return picture, _save_png(picture, out_dir, f"seed{int(s or 0):04d}")

    run.click(do_generate, [seed, truncation] + ([classes] if classes is not None else []), [image, download])


def _classification_page(gr, m: DemoModel, guard, note: str, out_dir: Path) -> None:
    """Upload -> top 5 classes and, for ViTs, the attention-rollout overlay."""
    from ..models.vit import VisionTransformer

    upload = gr.File(label="Input image", file_types=["image"], type="filepath", elem_id="upload")
    gr.Markdown(note)
    run = gr.Button("Classify", variant="primary", elem_id="run")
    with gr.Row():
        shown_in = gr.Image(label="Input", type="pil", interactive=False, elem_id="input-image")
        label = gr.Label(num_top_classes=5, label="Top 5", elem_id="top5")
        overlay = gr.Image(label="Attention rollout", type="pil", interactive=False, elem_id="output-image",
                           visible=isinstance(m.model, VisionTransformer))

    @guard
    def do_classify(path):
        image = m.load_upload(path)
        top, heat = m.classify(image)
        return image.convert("RGB"), top, heat

    run.click(do_classify, [upload], [shown_in, label, overlay])


def _restoration_page(gr, m: DemoModel, guard, note: str, out_dir: Path) -> None:
    """Upload a clean image -> degraded and restored side by side, with the PSNR."""
    upload = gr.File(label="Clean image", file_types=["image"], type="filepath", elem_id="upload")
    seed = gr.Number(value=0, precision=0, label="Seed of the degradation", elem_id="seed")
    gr.Markdown(note + " It is resized to the model's input size, degraded, then restored.")
    run = gr.Button("Degrade and restore", variant="primary", elem_id="run")
    with gr.Row():
        shown_in = gr.Image(label="Degraded", type="pil", interactive=False, elem_id="input-image")
        shown_out = gr.Image(label="Restored", type="pil", format="png", interactive=False,
                             elem_id="output-image")
    psnr = gr.Textbox(label="PSNR against the upload (dB)", interactive=False, elem_id="psnr")

    @guard
    def do_restore(path, s):
        degraded, restored, db = m.restore(m.load_upload(path), int(s or 0))
        return degraded, restored, f"{db:.2f}"

    run.click(do_restore, [upload, seed], [shown_in, shown_out, psnr])


def build_demo(model: Any, pretrained: bool = False, *, max_upload_mb: float = MAX_UPLOAD_MB):
    """The Gradio page for ``model`` (a built model, a name, a folder, a run folder or an ``hf-hub:`` source)."""
    gr = require_gradio()
    demo_model = model if isinstance(model, DemoModel) else DemoModel(load_demo_model(model, pretrained))
    task, name = demo_model.task, demo_model.name
    out_dir = workspace().outputs
    weights = demo_model.cfg.get("weight_source")

    def guard(fn):
        def run(*args):
            try:
                return fn(*args)
            except (UploadError, ValueError) as exc:
                raise gr.Error(str(exc)) from None

        return run

    upload_note = (f"Upload a PNG, JPEG, BMP or WebP image of at most {max_upload_mb:g} MB "
                   f"and {demo_model.max_pixels:,} pixels.")
    with gr.Blocks(title=f"vgzoo demo: {name}", analytics_enabled=False) as page:
        gr.Markdown(f"# vgzoo demo: `{name}`\n\nTask `{task}`"
                    + (f", weights from `{weights}`." if weights else ", **random weights** (outputs mean nothing).")
                    + f" Runs on `{demo_model.device}` in {demo_model.mode.dtype_name} "
                      f"({demo_model.mode.precision.reason}).")
        pages = {"translation": _translation_page, "generation": _generation_page,
                 "classification": _classification_page, "restoration": _restoration_page}
        page_of = _seeded_page if demo_model.seeded else pages[demo_model.page]
        page_of(gr, demo_model, guard, upload_note, out_dir)
    page.vgzoo_max_file_size = f"{int(max_upload_mb * 1024 * 1024)}b"
    return page


def launch_demo(model: Any, pretrained: bool = False, *, host: str = "127.0.0.1", port: int | None = None,
                max_upload_mb: float = MAX_UPLOAD_MB, share: bool = False, block: bool = True):
    """Build the page and serve it (blocking unless ``block=False``); returns the Gradio app.

    ``model`` may also be a :class:`DemoModel`. The page listens on ``host`` (127.0.0.1: this machine only).
    """
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # the page talks to nobody but its user
    page = build_demo(model, pretrained, max_upload_mb=max_upload_mb)
    page.queue(default_concurrency_limit=1)  # one model, one forward at a time
    stop_on_term = block and threading.current_thread() is threading.main_thread()
    if stop_on_term:  # SIGTERM stops the page as Ctrl-C does, so the uploads are deleted on the way out
        previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        page.launch(server_name=host, server_port=port, share=share, max_file_size=page.vgzoo_max_file_size,
                    prevent_thread_lock=not block, show_error=True, quiet=False)
    finally:
        if stop_on_term:
            signal.signal(signal.SIGTERM, previous)
            if _workspace is not None:
                _workspace.remove()
    return page
