"""The ``vgzoo`` command line: thin click commands that parse, call the library and print.

Exit codes: 0 on success, 2 on usage errors (click's own), 1 on any other error, reported as one line
on stderr without a traceback unless ``--debug`` or ``VGZOO_DEBUG=1``. Heavy imports (torch, model
modules) happen inside commands, so ``vgzoo list`` stays fast.
"""

from __future__ import annotations

import json
import os
import sys

import click

from . import __version__
from .errors import PluginError
from .train.options import click_options as train_options

DEBUG_ENV = "VGZOO_DEBUG"


def _debug_enabled(ctx: click.Context | None) -> bool:
    if os.environ.get(DEBUG_ENV, "") not in ("", "0"):
        return True
    root = ctx.find_root() if ctx is not None else None
    return bool(root is not None and (root.obj or {}).get("debug"))


class VgzooGroup(click.Group):
    """A click group that turns library errors into one-line messages and exit code 1."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            ctx.exit(130)
        except BrokenPipeError:
            _closed_pipe()
        except Exception as exc:
            if _debug_enabled(ctx):
                raise
            message = " ".join(str(exc).split()) or type(exc).__name__
            click.echo(f"error: {message}", err=True)
            ctx.exit(1)


@click.group(cls=VgzooGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="vgzoo")
@click.option("--debug", is_flag=True, help="Show full tracebacks on errors (or set VGZOO_DEBUG=1).")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """vgzoo: a model zoo for vision GANs and vision transformers."""
    ctx.obj = {"debug": debug}


def _echo_json(obj) -> None:
    click.echo(json.dumps(obj, indent=2, default=str))


@cli.command("list")
@click.argument("pattern", default="*")
@click.option("--family", default=None, help="Only this family (imports the model modules).")
@click.option("--pretrained", is_flag=True,
              help="Every name.tag with published weights (like timm.list_pretrained; imports the model modules).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
def list_cmd(pattern: str, family: str | None, pretrained: bool, as_json: bool) -> None:
    """List installed models matching PATTERN (fnmatch), one per line; an alias says what it points to."""
    from ._registry import list_aliases, list_models, list_pretrained

    names = list_pretrained(pattern, family=family) if pretrained else list_models(pattern, family=family)
    aliases = list_aliases(pattern, family=family) if pretrained else {}
    if as_json:
        _echo_json(names)
    else:
        for name in names:
            click.echo(f"{name} -> {aliases[name]}" if name in aliases else name)


@cli.command("info")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def info_cmd(name: str, as_json: bool) -> None:
    """Show a model's family, task, distribution, parameter count and default config."""
    import torch

    import vgzoo

    info = vgzoo.model_info(name).to_dict()
    with torch.device("meta"):  # shapes only: counting parameters needs no memory and no initialisation
        model = vgzoo.create(name)
    info["num_params"] = sum(p.numel() for p in model.parameters())
    info["pretrained_cfg"] = model.pretrained_cfg
    info["weights"] = _published_weights(name, model)
    if as_json:
        _echo_json(info)
        return
    if info["alias_of"]:
        shown = f"{info['name']}.{info['tag']}" if info["tag"] else info["name"]
        click.echo(f"{'alias':13s} {info['alias_of']} is an alias of {shown}")
    for key in ("name", "tag", "description", "family", "task", "distribution", "entry_point", "paper"):
        if info[key] is not None:
            click.echo(f"{key:13s} {info[key]}")
    for alias, target in info["aliases"].items():
        click.echo(f"{'alias':13s} {alias} -> {target}")
    click.echo(f"{'parameters':13s} {info['num_params']:,}")
    if info["weights"]:
        for key, value in info["weights"].items():
            click.echo(f"{key:13s} {value}")
    click.echo("default kwargs:")
    for key, value in info["default_kwargs"].items():
        click.echo(f"  {key} = {value!r}")
    click.echo("default config:")
    for key, value in info["default_cfg"].items():
        click.echo(f"  {key} = {value!r}")


def _published_weights(name: str, model) -> dict[str, str]:
    """Where a name's published weights come from, their size and whether they are cached (empty: none)."""
    from ._factory import split_name
    from ._registry import load_spec, resolve_name
    from .pretrained import converted_dir, source_of

    arch, tag = split_name(resolve_name(name))
    spec = load_spec(arch)
    tag, cfg = spec.cfg_for(tag)
    if not cfg.has_weights:
        tags = spec.published_tags()
        return {"weights": f"none published; tags with weights: {', '.join(tags)}"} if tags else {}
    nbytes = sum(t.numel() * t.element_size() for t in model.state_dict().values())
    out = {"source": source_of(cfg), "size": f"{nbytes / 1e6:.1f} MB of tensors"}
    if not cfg.file:
        folder = converted_dir(spec, tag)
        out["cached"] = f"yes ({folder})" if (folder / "model.safetensors").is_file() else f"no (would be {folder})"
    for key in ("license", "dataset", "direction"):
        if getattr(cfg, key):
            out[key] = getattr(cfg, key)
    return out


@cli.group("plugins", cls=VgzooGroup, invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def plugins_cmd(ctx: click.Context, as_json: bool) -> None:
    """List every vgzoo.models, vgzoo.tasks and vgzoo.converters entry point, its distribution and whether it loads."""
    if ctx.invoked_subcommand is not None:
        return
    from ._registry import MODELS, load_spec
    from .converters import CONVERTERS, get_converter
    from .tasks import plugin_tasks

    rows = MODELS.report(load_spec)
    rows += [{**r, "name": f"{r['name']} (task)"} for r in plugin_tasks()]  # vgzoo.tasks entry points
    rows += [{**r, "name": f"{r['name']} (converter)"} for r in CONVERTERS.report(get_converter)]
    if as_json:
        _echo_json(rows)
        return
    width = max((len(r["name"]) for r in rows), default=4)
    dist_width = max((len(r["distribution"]) for r in rows), default=12)
    for r in rows:
        line = f"{r['name']:{width}s}  {r['distribution']:{dist_width}s}  {r['status']}"
        click.echo(line + (f"  {r['error']}" if r["error"] else ""))


class ConverterGroup(VgzooGroup):
    """``vgzoo convert``: one command per ``vgzoo.converters`` entry point (vgzoo's own and the plugins')."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        from .converters import converter_entry_points

        return sorted(converter_entry_points())

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        from .conversion import load_object
        from .converters import UnknownConverterError, get_converter

        try:
            converter = get_converter(name)
        except UnknownConverterError as exc:
            raise click.UsageError(str(exc), ctx) from None
        except PluginError as exc:  # listed in --help, failing only when run
            return click.Command(name, help=f"(broken: {exc})", callback=_raiser(exc))
        if converter.command:
            return load_object(converter.command, f"converter {name!r}")
        return _converter_command(name, converter)


def _raiser(exc: Exception):
    def callback() -> None:
        raise exc

    return callback


def _converter_command(name: str, converter) -> click.Command:
    """The generic ``vgzoo convert NAME FILE... OUT`` of a converter without a command of its own."""
    metavar = " ".join(n.upper() for n in converter.file_names)

    def run(files: tuple[str, ...] | str, out: str, overwrite: bool) -> None:
        from .converters import convert_files

        paths = [files] if isinstance(files, str) else list(files)  # click gives one value, not a tuple, for nargs=1
        model, path = convert_files(name, paths, out, overwrite=overwrite)
        click.echo(f"wrote {model.pretrained_cfg['architecture']} to {path}; load it with "
                   f"vgzoo.create('local-dir:{path}')")

    return click.Command(
        name, callback=run, short_help=converter.description,
        help=f"{converter.description}\n\nReads {metavar} and writes a {converter.model} folder OUT "
             "(model.safetensors + config.json).",
        params=[
            click.Argument(["files"], nargs=len(converter.file_names), metavar=metavar,
                           type=click.Path(exists=True, dir_okay=False)),
            click.Argument(["out"], type=click.Path(file_okay=False)),
            click.Option(["--overwrite"], is_flag=True, help="Replace OUT when it is not empty."),
        ],
    )


@cli.group("convert", cls=ConverterGroup)
def convert_cmd() -> None:
    """Convert checkpoints of other implementations to vgzoo folders (one command per vgzoo.converters entry)."""


class _WarningsAsNotes:
    """Show library warnings (e.g. "the model has random weights") as one ``warning:`` line on stderr."""

    def __enter__(self):
        import warnings

        self._ctx = warnings.catch_warnings()
        self._ctx.__enter__()
        warnings.simplefilter("default")
        warnings.showwarning = lambda message, *args, **kwargs: click.echo(f"warning: {message}", err=True)

    def __exit__(self, *exc):
        return self._ctx.__exit__(*exc)


@cli.command("attention-map")
@click.argument("model_or_dir")
@click.argument("image", type=click.Path(exists=True, dir_okay=False))
@click.option("--out", default="attention_map.png", show_default=True, help="PNG to write.")
@click.option("--pretrained", is_flag=True, help="With a model name: load its published weights.")
@click.option("--head-fusion", type=click.Choice(["mean", "max", "min"]), default="mean", show_default=True)
@click.option("--alpha", type=float, default=0.5, show_default=True, help="Opacity of the heat map.")
def attention_map_cmd(model_or_dir: str, image: str, out: str, pretrained: bool, head_fusion: str,
                      alpha: float) -> None:
    """Draw a ViT's attention rollout (MODEL name or saved folder) over IMAGE as a PNG."""
    from .viz import save_attention_map

    with _WarningsAsNotes():
        info = save_attention_map(model_or_dir, image, out, alpha=alpha, head_fusion=head_fusion, pretrained=pretrained)
    top = f", top class {info['top_class']} (p={info['top_prob']:.3f})" if "top_class" in info else ""
    click.echo(f"wrote {info['out']} (rollout grid {info['grid'][0]}x{info['grid'][1]}{top})")


@click.command("timm-vit")
@click.argument("src", type=click.Path(exists=True, dir_okay=False))
@click.argument("dst_dir", type=click.Path(file_okay=False))
@click.option("--allow-pickle", is_flag=True, help="Read a .pth/.bin with torch.load(weights_only=True).")
def convert_timm_vit_cmd(src: str, dst_dir: str, allow_pickle: bool) -> None:
    """Convert a timm ViT checkpoint SRC (.safetensors) to a vgzoo folder DST_DIR."""
    from .converters import convert_timm_vit_file

    model, path = convert_timm_vit_file(src, dst_dir, allow_pickle=allow_pickle)
    arch = model.pretrained_cfg["architecture"]
    from ._factory import model_info

    defaults = model_info(arch).default_kwargs
    changed = {k: v for k, v in model.config.items() if defaults.get(k) != v}
    click.echo(f"wrote {path} ({arch}, {changed}); load it with vgzoo.create('local-dir:{path}')")


@plugins_cmd.command("new")
@click.argument("name")
@click.option("--dir", "directory", default=".", show_default=True, type=click.Path(file_okay=False),
              help="Folder to create the package in (the package goes to DIR/NAME).")
@click.option("--model", "model_name", default=None, help="Model name to register (default: derived from NAME).")
def plugins_new_cmd(name: str, directory: str, model_name: str | None) -> None:
    """Write a ready plugin package whose distribution name is NAME (pyproject, model, test, README)."""
    from .scaffold import new_plugin

    made = new_plugin(name, directory, model=model_name)
    click.echo(f"created {made.path} (distribution {made.distribution}, package {made.package}, model {made.model})")
    for path in made.files:
        click.echo(f"  {path.relative_to(made.path)}")
    click.echo(f"next: pip install -e {made.path} && python -m pytest {made.path / 'tests'} && vgzoo plugins")


_INFER_DEVICE = click.option("--device", default="auto", show_default=True,
                             help="cpu, cuda, cuda:N or auto ($VGZOO_DEVICE, else CUDA when present, else cpu).")
_INFER_PRECISION = click.option(
    "--precision", type=click.Choice(["auto", "fp32", "bf16", "fp16"]), default="auto", show_default=True,
    envvar="VGZOO_PRECISION",
    help="auto: bf16 autocast where the hardware has bf16 units (CPUs with AVX512-BF16 or AMX, CUDA GPUs with bf16), "
         "else fp32; on a CPU also fp32 when a forward call does under 0.2 GFLOP (small networks and batches, "
         "where autocast's casts cost more than they save) or ONEDNN_MAX_CPU_ISA/ATEN_CPU_CAPABILITY cap the CPU "
         "below bf16. A reduced precision is checked against fp32 on the first batch and falls back to fp32 below "
         "the quality floor (docs/gpu.md). Default from $VGZOO_PRECISION when set.")
_INFER_COMPILE = click.option("--compile", "compile_", is_flag=True, help="torch.compile the network first.")


def _describe_inference(record: dict) -> str:
    from .inference import describe_inference

    return describe_inference(record)


@cli.command("translate")
@click.argument("model_or_dir")
@click.argument("input_path", metavar="INPUT")
@click.argument("output_path", metavar="OUTPUT", type=click.Path())
@click.option("--direction", type=click.Choice(["AtoB", "BtoA"]), default="AtoB", show_default=True,
              help="CycleGAN: which generator (G_AB or G_BA).")
@click.option("--batch-size", type=click.IntRange(min=1), default=1, show_default=True)
@_INFER_DEVICE
@_INFER_PRECISION
@_INFER_COMPILE
@click.option("--workers", type=click.IntRange(min=0), default=None,
              help="Processes decoding the input files while the model runs (default: up to 4 for a GPU, none on "
                   "the CPU or for fewer than 8 files; 0: none).")
@click.option("--no-eval", is_flag=True, help="Keep dropout and batch statistics on (the reference's pix2pix test).")
@click.option("--pretrained", is_flag=True, help="With a model name: load its published weights.")
def translate_cmd(model_or_dir: str, input_path: str, output_path: str, direction: str, batch_size: int,
                  device: str, precision: str, compile_: bool, workers: int | None, no_eval: bool,
                  pretrained: bool) -> None:
    """Translate INPUT (an image, a folder, or a dataset split like cyclegan:horse2zebra/testA) with MODEL_OR_DIR
    (a saved folder, a model name or an exported .onnx) into OUTPUT."""
    from .data.reference import is_reference_spec
    from .translate import TranslationError, translate

    if not is_reference_spec(input_path) and not os.path.exists(input_path):
        raise click.BadParameter(f"Path {input_path!r} does not exist.", param_hint="'INPUT'")
    with _WarningsAsNotes():
        try:
            written = translate(model_or_dir, input_path, output_path, direction=direction, batch_size=batch_size,
                                device=device, eval_mode=not no_eval, pretrained=pretrained, precision=precision,
                                compile=compile_, workers=workers)
        except TranslationError as exc:  # some images failed: say what was written, then the error (exit 1)
            click.echo(_describe_inference(exc.inference))
            click.echo(f"wrote {len(exc.written)} image(s) to {output_path}")
            raise
    click.echo(_describe_inference(written.inference))
    click.echo(f"wrote {len(written)} image(s) to {output_path}")


@click.command("pix2pix-reference")
@click.argument("paths", nargs=-1, required=True, metavar="[SRC.pth] DST_DIR")
@click.option("--dir", "ref_dir", type=click.Path(exists=True, file_okay=False),
              help="A reference checkpoints/NAME folder: assemble the whole composite from its latest_net_*.pth.")
@click.option("--model", "ref_model", type=click.Choice(["cycle_gan", "pix2pix"]), default=None,
              help="With --dir: the reference's --model.")
@click.option("--epoch", default="latest", show_default=True, help="With --dir: which <epoch>_net_*.pth.")
@click.option("--netG", "netG", default=None,
              help="resnet_9blocks, resnet_6blocks, unet_256, unet_128 (default: read from the checkpoint).")
@click.option("--ngf", type=int, default=None, help="Generator width (default: read from the checkpoint).")
@click.option("--norm", type=click.Choice(["batch", "instance", "none"]), default=None, help="Default: read.")
@click.option("--in-chans", type=int, default=None, help="Default: read.")
@click.option("--out-chans", type=int, default=None, help="Default: read.")
@click.option("--dropout/--no-dropout", default=None, help="ResNet dropout variant (default: detected).")
@click.option("--overwrite", is_flag=True, help="Replace a DST_DIR that is not empty (one generator).")
def convert_pix2pix_reference_cmd(paths: tuple[str, ...], ref_dir: str | None, ref_model: str | None,
                                  epoch: str, netG: str | None, ngf: int | None, norm: str | None,
                                  in_chans: int | None, out_chans: int | None, dropout: bool | None,
                                  overwrite: bool) -> None:
    """Convert a pytorch-CycleGAN-and-pix2pix generator SRC.pth (or a whole --dir) into DST_DIR, a model folder.

    One generator becomes cyclegan_resnet_generator (ResNet) or pix2pix_unet_generator (U-Net); --dir assembles
    the whole CycleGAN or pix2pix composite.

    Reading a .pth is a pickle load (torch.load(weights_only=True)); running this command is the opt-in.
    """
    if len(paths) != (1 if ref_dir is not None else 2):
        raise click.UsageError("Give SRC.pth DST_DIR (one generator), or --dir checkpoints/NAME --model ... DST_DIR.")
    src, dst_dir = (None, paths[0]) if ref_dir is not None else paths
    if ref_dir is not None:
        if ref_model is None:
            raise click.UsageError("--dir needs --model cycle_gan or --model pix2pix.")
        import vgzoo

        from .converters import reference_composite

        model = reference_composite(ref_dir, model=ref_model, epoch=epoch)
        vgzoo.save_pretrained(model, dst_dir)
        click.echo(f"wrote {model.pretrained_cfg['architecture']} to {dst_dir} (use: vgzoo translate {dst_dir} ...)")
        return
    from .converters import convert_reference_generator

    model, _ = convert_reference_generator(src, dst_dir, overwrite=overwrite, netG=netG, ngf=ngf, norm=norm,
                                           in_chans=in_chans, out_chans=out_chans, dropout=dropout)
    click.echo(f"wrote {model.pretrained_cfg['architecture']} to {dst_dir} (use: vgzoo translate {dst_dir} ...)")


def _bench_finish(doc, out: str, as_json: bool) -> None:
    """Write a bench document's files, then print its table (or the JSON document with --json)."""
    from .bench.report import format_table, to_json, write_results

    paths = write_results(doc, out)
    if as_json:
        click.echo(to_json(doc))
        click.echo(f"wrote {', '.join(str(p) for p in paths)}", err=True)
        return
    click.echo(format_table(doc))
    click.echo(f"\nwrote {', '.join(str(p) for p in paths)}")


def _int_list(value: str, what: str) -> list[int]:
    try:
        items = [int(v) for v in value.replace(" ", "").split(",") if v]
    except ValueError:
        raise click.BadParameter(f"{what} must be comma-separated integers, e.g. 64,128,256; got {value!r}") from None
    if not items or any(v < 1 for v in items):
        raise click.BadParameter(f"{what} must be positive integers, got {value!r}")
    return items


_BENCH_OUT = click.option("--out", default="vgzoo-bench", show_default=True, type=click.Path(file_okay=False),
                          help="Folder for the JSON, CSV and PNG files.")
_BENCH_JSON = click.option("--json", "as_json", is_flag=True, help="Print the results as one JSON document.")
_BENCH_PROGRESS = click.option("--progress/--no-progress", default=True, help="Progress bar on stderr.")
def _threads_option(value: str) -> int | str | None:
    if value in ("auto", "all"):
        return "auto" if value == "auto" else None
    try:
        n = int(value)
    except ValueError:
        n = 0
    if n < 1:
        raise click.BadParameter(f"--threads takes a positive integer, 'auto' or 'all'; got {value!r}")
    return n


_BENCH_DEVICE = click.option("--device", default="auto", show_default=True,
                             help="cpu, cuda, cuda:N or auto (CUDA when a GPU is visible); sizes, batch and dtype "
                                  "defaults follow the device (docs/bench.md).")
_BENCH_THREADS = click.option("--threads", default="auto", show_default=True,
                              help="torch threads: N, 'all' (torch's default) or 'auto' (1 when the load average "
                                   "is above half the cores, where more threads only contend; else all).")


@cli.group("bench", cls=VgzooGroup, invoke_without_command=True)
@_BENCH_OUT
@_BENCH_JSON
@click.option("--budget", type=float, default=140.0, show_default=True,
              help="Seconds the default sweep aims for (repeats shrink to fit, never below 5).")
@_BENCH_DEVICE
@_BENCH_THREADS
@_BENCH_PROGRESS
@click.pass_context
def bench_cmd(ctx: click.Context, out: str, as_json: bool, budget: float, device: str, threads: str,
              progress: bool) -> None:
    """Measure attention's O(S^2) cost against convolution throughput.

    Bare `vgzoo bench` runs the default scaling sweep (vit_ti16_scratch, vit_s16_scratch, the cyclegan_resnet6
    generator and timm's resnet50, batch 1, 64..448 px; a few minutes on a laptop's CPU; on a GPU, bf16, batch 16,
    224..1120 px and ViT-B too). Ctrl-C keeps and writes what was measured so far.
    """
    if ctx.invoked_subcommand is not None:
        return
    from .bench.defaults import bench_defaults, resolve_device
    from .bench.scaling import run_scaling

    device = resolve_device(device)
    d = bench_defaults("scaling", device)
    _bench_finish(run_scaling(d["models"], d["sizes"], batch_size=d["batch_size"], amp_dtype=d["amp_dtype"],
                              device=device, budget_s=budget, num_threads=_threads_option(threads),
                              progress=progress), out, as_json)


@bench_cmd.command("scaling")
@click.option("--models", default=None, help="Comma-separated vgzoo names or timm:NAME "
              "(default: vit_ti16_scratch,vit_s16_scratch,cyclegan_resnet6,resnet50; on CUDA timm's ViT-B too).")
@click.option("--sizes", default=None, help="Image sides in px (default: 64..448 on CPU, 224..1120 on CUDA).")
@click.option("--batch-size", type=int, default=None, help="Images per forward (default: 1 on CPU, 16 on CUDA).")
@_BENCH_DEVICE
@click.option("--amp-dtype", type=click.Choice(["bfloat16", "float16", "float32"]), default=None,
              help="Autocast dtype (default: float32 on CPU, bfloat16 on CUDA).")
@click.option("--repeats", type=int, default=15, show_default=True, help="Most timed forwards per point.")
@click.option("--min-repeats", type=int, default=5, show_default=True, help="Fewest timed forwards per point.")
@click.option("--budget", type=float, default=140.0, show_default=True, help="Seconds to aim for; 0 = no cap.")
@_BENCH_OUT
@_BENCH_JSON
@_BENCH_THREADS
@_BENCH_PROGRESS
def bench_scaling_cmd(models: str | None, sizes: str | None, batch_size: int | None, device: str, amp_dtype: str | None,
                      repeats: int, min_repeats: int, budget: float, out: str, as_json: bool, threads: str,
                      progress: bool) -> None:
    """Time, FLOPs, attention share and memory of models over image sizes; log-log fits and crossovers."""
    from .bench.defaults import bench_defaults, resolve_device
    from .bench.scaling import run_scaling

    device = resolve_device(device)
    d = bench_defaults("scaling", device)
    names = [m for m in models.replace(" ", "").split(",") if m] if models else list(d["models"])
    sizes_ = _int_list(sizes, "--sizes") if sizes else list(d["sizes"])
    amp_dtype = d["amp_dtype"] if amp_dtype is None else (None if amp_dtype == "float32" else amp_dtype)
    doc = run_scaling(names, sizes_, batch_size=batch_size or d["batch_size"], device=device, amp_dtype=amp_dtype,
                      repeats=repeats, min_repeats=min(min_repeats, repeats), budget_s=budget or None,
                      num_threads=_threads_option(threads), progress=progress)
    _bench_finish(doc, out, as_json)


@bench_cmd.command("attention")
@click.option("--seq-lens", default=None, help="Sequence lengths S (default: 256..2048 on CPU, 256..16384 on CUDA).")
@click.option("--operators", default=None,
              help="Comma-separated subset of naive,sdpa_math,sdpa_flash,sdpa_efficient,sdpa_cudnn (default: all).")
@click.option("--modes", default="forward,forward_backward", show_default=True)
@click.option("--batch-size", type=int, default=1, show_default=True)
@click.option("--heads", type=int, default=None, help="h (default: 6 = ViT-S on CPU, 12 = ViT-B on CUDA).")
@click.option("--head-dim", type=int, default=64, show_default=True)
@_BENCH_DEVICE
@click.option("--dtype", type=click.Choice(["float32", "float16", "bfloat16"]), default=None,
              help="Element type (default: float32 on CPU, bfloat16 on CUDA, where flash/cuDNN need it).")
@click.option("--repeats", type=int, default=7, show_default=True)
@click.option("--budget", type=float, default=50.0, show_default=True, help="Seconds of timing to aim for; 0 = no cap.")
@_BENCH_OUT
@_BENCH_JSON
@_BENCH_THREADS
@_BENCH_PROGRESS
def bench_attention_cmd(seq_lens: str | None, operators: str | None, modes: str, batch_size: int, heads: int | None,
                        head_dim: int, device: str, dtype: str | None, repeats: int, budget: float, out: str,
                        as_json: bool, threads: str, progress: bool) -> None:
    """Naive softmax(QK^T/sqrt(d))V against scaled_dot_product_attention per backend, over S."""
    from .bench.attention import run_attention
    from .bench.defaults import bench_defaults, resolve_device

    device = resolve_device(device)
    d = bench_defaults("attention", device)
    ops = [o for o in operators.replace(" ", "").split(",") if o] if operators else None
    doc = run_attention(_int_list(seq_lens, "--seq-lens") if seq_lens else list(d["seq_lens"]), operators=ops,
                        modes=[m for m in modes.replace(" ", "").split(",") if m], batch_size=batch_size,
                        heads=heads or d["heads"], head_dim=head_dim, device=device, dtype=dtype or d["dtype"],
                        repeats=repeats,
                        budget_s=budget or None, num_threads=_threads_option(threads), progress=progress)
    _bench_finish(doc, out, as_json)


@bench_cmd.command("model")
@click.argument("name")
@click.option("--batch-size", type=int, default=None, help="Samples per step (default: 8 on CPU, 256 on CUDA).")
@click.option("--img-size", type=int, default=None, help="Square input side (default: the model's).")
@click.option("--train/--infer", default=False, help="Time a training step or inference (default).")
@click.option("--amp/--no-amp", default=None, help="Autocast (see --amp-dtype; default: off on CPU, on on CUDA).")
@click.option("--amp-dtype", type=click.Choice(["bfloat16", "float16"]), default="bfloat16", show_default=True)
@click.option("--compile", "compile_", is_flag=True, help="torch.compile the model first.")
@click.option("--channels-last", is_flag=True, help="NHWC memory format.")
@_BENCH_DEVICE
@click.option("--vs-timm", default=None, metavar="TIMM_NAME", help="A timm model timed alternately in the same run.")
@click.option("--repeats", type=int, default=10, show_default=True)
@click.option("--warmup", type=int, default=2, show_default=True)
@_BENCH_OUT
@_BENCH_JSON
@_BENCH_THREADS
@_BENCH_PROGRESS
def bench_model_cmd(name: str, batch_size: int | None, img_size: int | None, train: bool, amp: bool | None,
                    amp_dtype: str, compile_: bool, channels_last: bool, device: str, vs_timm: str | None, repeats: int,
                    warmup: int, out: str, as_json: bool, threads: str, progress: bool) -> None:
    """Inference or training-step throughput of NAME (a vgzoo model or timm:NAME), like timm's benchmark.py."""
    from .bench.defaults import bench_defaults, resolve_device
    from .bench.model import run_model

    device = resolve_device(device)
    d = bench_defaults("model", device)
    doc = run_model(name, batch_size=batch_size or d["batch_size"], img_size=img_size, train=train,
                    amp=d["amp"] if amp is None else amp, amp_dtype=amp_dtype,
                    compile=compile_, channels_last=channels_last, device=device, vs_timm=vs_timm, repeats=repeats,
                    warmup=warmup, num_threads=_threads_option(threads), progress=progress)
    _bench_finish(doc, out, as_json)


@cli.command("train")
@click.argument("model")
@train_options
@click.pass_context
def train_cmd(ctx: click.Context, model: str, **values) -> None:
    """Train MODEL with its task's recipe; see vgzoo.train.fit and docs/train.md.

    Exit 1 with a message if training diverges or --out holds something else; 130/143 after saving a checkpoint
    when interrupted by SIGINT/SIGTERM.
    """
    from .train.command import train_command

    code = train_command(model, values)
    if code:
        ctx.exit(code)


@cli.command("generate")
@click.argument("model_or_dir")
@click.option("--pretrained", is_flag=True, help="With a model name: load its published weights.")
@click.option("--seeds", default=None, metavar="0-7",
              help="Seeded generators (StyleGAN2, BigGAN, ...): the seeds, ranges and comma lists (e.g. 0-7 or "
                   "1,5,10-12), an image each, as the reference code draws them (default 0-7).")
@click.option("--truncation", "--psi", "truncation", type=float, default=None,
              help="Seeded generators: the truncation (StyleGAN's psi; default: the model's).")
@click.option("--class", "classes", multiple=True, metavar="INT|NAME",
              help="Seeded class-conditional generators: a class index or name (repeatable; default class 0).")
@click.option("--grid", default=None, type=click.Path(dir_okay=False),
              help="Seeded generators: also write a grid PNG (a row per class, a column per seed).")
@click.option("--labels", default=None, metavar="0,1,2", help="Class-conditional GANs: classes, one grid row each.")
@click.option("--all-classes", is_flag=True, help="One row per class (the default when --labels is not given).")
@click.option("--per-class", type=click.IntRange(min=1), default=8, show_default=True, help="Samples per class.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the latent draws.")
@click.option("--out", default=None, type=click.Path(),
              help="Class-conditional GANs: the grid PNG to write. Seeded generators: the folder for seed%04d.png "
                   "(class%04d-seed%04d.png with several classes).")
@click.option("--out-dir", default=None, type=click.Path(file_okay=False), help="Also write every sample here.")
@click.option("--scale", type=click.IntRange(min=1), default=None, help="Upscale grid cells (default: to >= 64 px).")
@click.option("--batch-size", type=click.IntRange(min=1), default=None,
              help="Seeded generators: latents per forward pass (default: 8; on a CPU fewer for large images, "
                   "see vgzoo.generate.CPU_BATCH_PIXELS).")
@_INFER_DEVICE
@_INFER_PRECISION
@_INFER_COMPILE
@click.pass_context
def generate_cmd(ctx: click.Context, model_or_dir: str, pretrained: bool, seeds: str | None, truncation: float | None,
                 classes: tuple[str, ...], grid: str | None, labels: str | None, all_classes: bool, per_class: int,
                 seed: int, out: str | None, out_dir: str | None, scale: int | None, batch_size: int | None,
                 device: str, precision: str, compile_: bool) -> None:
    """Sample MODEL_OR_DIR (a model name or saved folder) into PNGs.

    A seeded generator (vgzoo.protocols.SeededSampler) draws an image per --seeds seed and --class, as its
    reference code does, into --out DIR and/or --grid FILE.png. A class-conditional GAN (cgan_*) writes a grid
    PNG (--out) with a row per class of --labels and --per-class samples drawn from --seed.
    """
    from ._runtime import check_device
    from .generate import generate, generate_seeds, load_sampler, parse_labels, parse_seeds
    from .protocols import SeededSampler

    def given(*names: str) -> list[str]:
        return [f"--{n.replace('_', '-')}" for n in names
                if ctx.get_parameter_source(n) is not click.core.ParameterSource.DEFAULT]

    check_device(device)  # before loading a model that cannot run there
    with _WarningsAsNotes():
        model, _ = load_sampler(model_or_dir, pretrained)
    if isinstance(model, SeededSampler):
        wrong = given("labels", "all_classes", "per_class", "seed", "out_dir")
        if wrong:
            raise click.UsageError(f"{' '.join(wrong)}: this model draws from seeds; use --seeds, --class, "
                                   "--truncation/--psi, --out DIR and --grid FILE.png.")
        try:
            seed_list = parse_seeds(seeds if seeds is not None else "0-7")
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--seeds") from None
        with _WarningsAsNotes():
            result = generate_seeds(model, seeds=seed_list, truncation=truncation, classes=list(classes) or None,
                                    out_dir=out, grid=grid, batch_size=batch_size, scale=scale, device=device,
                                    precision=precision, compile=compile_)
        what = f", classes {result.classes}" if result.classes is not None else ""
        click.echo(f"drew {len(result.seeds)} seed(s) x {len(result.classes or [None])} class(es), "
                   f"{result.truncation_name} {result.truncation:g}{what}")
        if out is not None:
            click.echo(f"wrote {len(result.images)} images to {out}")
        if result.grid is not None:
            click.echo(f"wrote {result.grid}")
    else:
        wrong = given("seeds", "truncation", "classes", "grid", "batch_size")
        if wrong:
            raise click.UsageError(f"{' '.join(wrong)} need a seeded generator (vgzoo.protocols.SeededSampler); "
                                   "for this model use --labels, --per-class, --seed and --out FILE.png.")
        if out is None:
            raise click.UsageError("Missing option '--out': the grid PNG to write.")
        if labels is not None and all_classes:
            raise click.UsageError("--labels and --all-classes exclude each other; give one of them.")
        try:
            rows = parse_labels(labels) if labels is not None else None
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--labels") from None
        with _WarningsAsNotes():
            result = generate(model, out=out, labels=rows, per_class=per_class, seed=seed, out_dir=out_dir,
                              scale=scale, device=device, precision=precision, compile=compile_)
        click.echo(f"wrote {result.grid} ({len(result.labels)} rows x {per_class}, classes {result.labels}, "
                   f"seed {seed})")
        if out_dir is not None:
            click.echo(f"wrote {len(result.images)} images to {out_dir}")
    click.echo(_describe_inference(result.inference))
    if result.weight_source is None:
        click.echo("note: the model has random weights; pass --pretrained or a trained folder.", err=True)


@cli.group("data", cls=VgzooGroup)
def data_cmd() -> None:
    """The reference datasets of pix2pix and CycleGAN: list them, fetch them.

    The cache is VGZOO_CACHE (default ~/.cache/vgzoo); VGZOO_MIRROR=URL replaces the scheme and host of every
    download; VGZOO_OFFLINE=1 uses the cache only.
    """


@data_cmd.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (with URL and cache folder).")
def data_list_cmd(as_json: bool) -> None:
    """List the reference datasets: name, kind, image size, licence note, whether cached."""
    from .data.reference import describe, list_references

    rows = [describe(e) for e in list_references()]
    if as_json:
        _echo_json(rows)
        return
    width = max(len(r["name"]) for r in rows)
    click.echo(f"{'name':<{width}}  {'kind':<9}  {'size':<16}  {'cached':<10}  license")
    for r in rows:
        click.echo(f"{r['name']:<{width}}  {r['kind']:<9}  {r['size']:<16}  {r['cached']:<10}  {r['license']}")


@data_cmd.command("fetch")
@click.argument("name")
@click.option("--force", is_flag=True,
              help="Download and extract again; the cached archive and folder are replaced once the new ones are "
                   "complete.")
@click.option("--no-verify", is_flag=True, help="Keep the set even if some image headers cannot be read.")
@click.option("--progress/--no-progress", default=True, help="Progress bars.")
def data_fetch_cmd(name: str, force: bool, no_verify: bool, progress: bool) -> None:
    """Download and safely extract reference dataset NAME (e.g. pix2pix:facades) into the cache."""
    from .data.reference import fetch_dataset, get_reference

    entry = get_reference(name)
    folder = fetch_dataset(entry, progress=progress, force=force, verify=not no_verify)
    click.echo(f"{entry.spec}: {folder} ({entry.kind}; {entry.layout}; default direction {entry.direction})")


@cli.group("eval", cls=VgzooGroup)
def eval_cmd() -> None:
    """Score models and image sets: FID/KID, PSNR/SSIM/LPIPS/L1, top-1/top-5 (docs/eval.md)."""


_EVAL_FEATURES = click.option("--features", default="inception", show_default=True,
                              help="inception (standard FID Inception-v3, fetched on first use), digits (the shipped "
                                   "16x16 digits classifier), or a classification model name/folder.")
_EVAL_JSON = click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON document.")
_EVAL_DEVICE = _INFER_DEVICE


def _eval_precision_options(f):
    return _INFER_PRECISION(_INFER_COMPILE(f))
_EVAL_BATCH = click.option("--batch-size", type=click.IntRange(min=1), default=64, show_default=True)
_EVAL_PROGRESS = click.option("--progress/--no-progress", default=True, help="Progress bars on stderr.")


def _eval_kid_options(f):
    f = click.option("--seed", type=int, default=0, show_default=True, help="Seed of KID's subsets.")(f)
    f = click.option("--subset-size", type=click.IntRange(min=2), default=1000, show_default=True,
                     help="KID subset size (capped at the smaller set).")(f)
    f = click.option("--subsets", type=click.IntRange(min=1), default=100, show_default=True,
                     help="KID subsets (mean and std over them).")(f)
    return f


def _eval_finish(result: dict, as_json: bool) -> None:
    from .metrics.report import format_result

    if as_json:
        _echo_json(result)
    else:
        click.echo(format_result(result))


@eval_cmd.command("fid")
@click.argument("real", type=click.Path(exists=True, file_okay=False))
@click.argument("fake", type=click.Path(exists=True, file_okay=False))
@_EVAL_FEATURES
@_eval_kid_options
@_EVAL_BATCH
@_EVAL_DEVICE
@_eval_precision_options
@click.option("--no-cache", is_flag=True, help="Recompute features instead of reading $VGZOO_CACHE/features.")
@_EVAL_PROGRESS
@_EVAL_JSON
def eval_fid_cmd(real: str, fake: str, features: str, subsets: int, subset_size: int, seed: int, batch_size: int,
                 device: str, precision: str, compile_: bool, no_cache: bool, progress: bool, as_json: bool) -> None:
    """FID and KID between the images under REAL and FAKE (folders, searched recursively)."""
    from .metrics import eval_fid

    with _WarningsAsNotes():
        result = eval_fid(real, fake, features=features, device=device, batch_size=batch_size, subsets=subsets,
                          subset_size=subset_size, seed=seed, cache=not no_cache, progress=progress,
                          precision=precision, compile=compile_)
    _eval_finish(result, as_json)


@eval_cmd.command("translate")
@click.argument("model_or_dir")
@click.argument("data")
@click.option("--split", default="test", show_default=True, help="Reads DATA/{split}A and DATA/{split}B.")
@click.option("--direction", type=click.Choice(["AtoB", "BtoA"]), default=None,
              help="Default: a reference dataset's own direction, else AtoB.")
@click.option("--pretrained", is_flag=True, help="With a model name: load its published weights.")
@click.option("--out", default=None, type=click.Path(file_okay=False), help="Keep the translated images here.")
@_EVAL_FEATURES
@_eval_kid_options
@click.option("--batch-size", type=click.IntRange(min=1), default=8, show_default=True)
@_EVAL_DEVICE
@_eval_precision_options
@_EVAL_PROGRESS
@_EVAL_JSON
def eval_translate_cmd(model_or_dir: str, data: str, split: str, direction: str | None, pretrained: bool,
                       out: str | None, features: str, subsets: int, subset_size: int, seed: int, batch_size: int,
                       device: str, precision: str, compile_: bool, progress: bool, as_json: bool) -> None:
    """Translate DATA's {split}A with MODEL_OR_DIR and score it against {split}B with FID/KID.

    DATA is a folder or a reference dataset (cyclegan:horse2zebra, fetched into the cache when missing)."""
    from .metrics import eval_translate

    with _WarningsAsNotes():
        result = eval_translate(model_or_dir, data, split=split, direction=direction, features=features,
                                pretrained=pretrained, out=out, device=device, batch_size=batch_size, subsets=subsets,
                                subset_size=subset_size, seed=seed, progress=progress, precision=precision,
                                compile=compile_)
    _eval_finish(result, as_json)


@eval_cmd.command("paired")
@click.argument("model_or_dir")
@click.argument("data")
@click.option("--split", default="val", show_default=True, help="Reads DATA/{split}/ (A|B side-by-side images).")
@click.option("--direction", type=click.Choice(["AtoB", "BtoA"]), default=None,
              help="Which half is the input (default: a reference dataset's own, e.g. BtoA for pix2pix:facades; "
                   "else AtoB).")
@click.option("--pretrained", is_flag=True, help="With a model name: load its published weights.")
@click.option("--lpips/--no-lpips", default=True, show_default=True,
              help="LPIPS (AlexNet; its ImageNet weights are fetched on first use).")
@click.option("--batch-size", type=click.IntRange(min=1), default=8, show_default=True)
@_EVAL_DEVICE
@_EVAL_PROGRESS
@_EVAL_JSON
def eval_paired_cmd(model_or_dir: str, data: str, split: str, direction: str | None, pretrained: bool, lpips: bool,
                    batch_size: int, device: str | None, progress: bool, as_json: bool) -> None:
    """PSNR, SSIM, LPIPS and L1 of a paired translator over DATA's split (a folder or e.g. pix2pix:facades)."""
    from .metrics import eval_paired

    with _WarningsAsNotes():
        result = eval_paired(model_or_dir, data, split=split, direction=direction, pretrained=pretrained, lpips=lpips,
                             device=device, batch_size=batch_size, progress=progress)
    _eval_finish(result, as_json)


@eval_cmd.command("generate")
@click.argument("model_or_dir")
@click.option("--pretrained", is_flag=True, help="With a model name: load its published weights.")
@click.option("--data", "--real", "real", default="builtin:digits", show_default=True,
              help="The real images: builtin:digits, a folder of class sub-folders, or a flat folder (--data as "
                   "for vgzoo train and eval classify; --real is accepted too).")
@click.option("--split", default="val", show_default=True,
              help="Split of --data (builtin:digits 'val' is held out from the shipped weights' training; a folder's "
                   "sub-folder of that name when it has one, else the whole folder).")
@click.option("--features", default="digits", show_default=True,
              help="digits, inception, or a classification model name/folder.")
@click.option("--per-class", type=click.IntRange(min=2), default=None,
              help="Samples per class (default: as many as the real set has).")
@click.option("--num-samples", type=click.IntRange(min=2), default=None, help="Unconditional models: samples.")
@click.option("--shuffle-labels", is_flag=True, help="Control: draw every sample with a random label.")
@click.option("--metrics", "metrics", default="fid,kid", show_default=True,
              help="Comma-separated: fid and kid (one feature pass, with per-class scores), is (the Inception Score "
                   "of the same samples: Inception-v3 logits, 10 splits, mean and std).")
@_eval_kid_options
@click.option("--batch-size", type=click.IntRange(min=1), default=256, show_default=True)
@_EVAL_DEVICE
@_eval_precision_options
@_EVAL_PROGRESS
@_EVAL_JSON
def eval_generate_cmd(model_or_dir: str, pretrained: bool, real: str, split: str, features: str,
                      per_class: int | None, num_samples: int | None, shuffle_labels: bool, metrics: str,
                      subsets: int, subset_size: int, seed: int, batch_size: int, device: str, precision: str,
                      compile_: bool, progress: bool, as_json: bool) -> None:
    """Per-class and overall FID/KID of a generator's samples (and, on digits, class-conditional accuracy), and the
    Inception Score with --metrics is."""
    from .metrics import eval_generate

    with _WarningsAsNotes():
        result = eval_generate(model_or_dir, real=real, split=split, features=features, pretrained=pretrained,
                               per_class=per_class, num_samples=num_samples, shuffle_labels=shuffle_labels,
                               device=device, batch_size=batch_size, subsets=subsets, subset_size=subset_size,
                               seed=seed, progress=progress, precision=precision, compile=compile_,
                               metrics=[m.strip().lower() for m in metrics.split(",") if m.strip()])
    _eval_finish(result, as_json)


@eval_cmd.command("classify")
@click.argument("model_or_dir")
@click.option("--data", required=True, help="A folder with one sub-folder per class, or builtin:digits.")
@click.option("--split", default="all", show_default=True,
              help="all, or a sub-folder of --data (builtin:digits: val or train).")
@click.option("--pretrained", is_flag=True, help="With a model name: load its published weights.")
@click.option("--confusion", default="confusion.png", show_default=True, type=click.Path(dir_okay=False),
              help="Confusion-matrix PNG to write.")
@_EVAL_BATCH
@_EVAL_DEVICE
@_eval_precision_options
@_EVAL_PROGRESS
@_EVAL_JSON
def eval_classify_cmd(model_or_dir: str, data: str, split: str, pretrained: bool, confusion: str, batch_size: int,
                      device: str, precision: str, compile_: bool, progress: bool, as_json: bool) -> None:
    """Top-1 / top-5 accuracy of a classifier on labelled images, and its confusion matrix as a PNG."""
    from .metrics import eval_classify

    with _WarningsAsNotes():
        result = eval_classify(model_or_dir, data, split=split, pretrained=pretrained, device=device,
                               batch_size=batch_size, confusion_png=confusion, progress=progress,
                               precision=precision, compile=compile_)
    _eval_finish(result, as_json)


@cli.command("export")
@click.argument("model_or_dir")
@click.option("--format", "fmt", type=click.Choice(["onnx", "pt2"]), default=None,
              help="onnx (torch.onnx.export, dynamo) or pt2 (torch.export); default: from the --out suffix.")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="The file to write (.onnx or .pt2).")
@click.option("--direction", type=click.Choice(["AtoB", "BtoA"]), default=None,
              help="Translation models: which generator (default AtoB).")
@click.option("--part", default=None, help="A network by name (G_BA); discriminators are refused.")
@click.option("--check", is_flag=True, help="Run the file against PyTorch at two sizes, batch 2; fail above 1e-4.")
@click.option("--pretrained", is_flag=True, help="With a model name: load its published weights.")
@click.option("--test-dropout", is_flag=True, help="Keep dropout sampling at inference (the pix2pix reference's test).")
@click.option("--overwrite", is_flag=True, help="Replace an existing --out file.")
def export_cmd(model_or_dir: str, fmt: str | None, out: str, direction: str | None, part: str | None, check: bool,
               pretrained: bool, test_dropout: bool, overwrite: bool) -> None:
    """Export MODEL_OR_DIR's inference network to ONNX or a torch.export program (see docs/export.md)."""
    from .export import export_model

    meta = export_model(model_or_dir, out, fmt, direction=direction, part=part, test_dropout=test_dropout,
                        pretrained=pretrained, overwrite=overwrite, check=check)
    click.echo(f"wrote {out} ({meta['format']}): {meta['model']} {meta['exported']}; accepts {meta['accepts']}")
    if check:
        result = meta["check"]
        diff = "not compared (test-time dropout samples)" if result["max_abs_diff"] is None else \
            f"max abs difference {result['max_abs_diff']:.3g} (tolerance {result['tolerance']:g})"
        click.echo(f"check: {result['runtime']} vs PyTorch on {len(result['runs'])} input sets: {diff}")
    if meta["weight_source"] is None:
        click.echo("note: the model has random weights; pass --pretrained or a trained folder.", err=True)


@cli.command("push")
@click.argument("folder", type=click.Path(exists=True, file_okay=False))
@click.argument("repo_id", metavar="ORG/REPO")
@click.option("--private", is_flag=True, help="Create the repository private (an existing one keeps its visibility).")
@click.option("--revision", default=None, help="Branch to commit to (created if missing; default main).")
@click.option("--message", "commit_message", default=None, help="Commit summary.")
@click.option("--overwrite-card", is_flag=True, help="Replace a README.md you wrote with the generated model card.")
def push_cmd(folder: str, repo_id: str, private: bool, revision: str | None, commit_message: str | None,
             overwrite_card: bool) -> None:
    """Publish FOLDER (a saved model, or a training run's final model) to the Hugging Face Hub as ORG/REPO.

    The folder must load with vgzoo.create("local-dir:FOLDER"). The token comes from HF_TOKEN or `hf auth login`.
    """
    from .share.push import push_to_hub

    with _WarningsAsNotes():
        result = push_to_hub(folder, repo_id, private=private, revision=revision, commit_message=commit_message,
                             overwrite_card=overwrite_card)
    click.echo(f"pushed {result.folder} to {result.url} (revision {result.revision}, commit {result.commit}); "
               f"load it with vgzoo.create('hf-hub:{result.repo_id}')")


@cli.command("demo")
@click.argument("model_or_dir")
@click.option("--pretrained", is_flag=True, help="With a model name: load its published weights.")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to serve on; 0.0.0.0 exposes the page to your network.")
@click.option("--port", type=click.IntRange(0, 65535), default=None,
              help="Port (default: Gradio's, 7860 or next free).")
@click.option("--max-upload-mb", type=click.FloatRange(min=0.01), default=10.0, show_default=True,
              help="Largest upload accepted.")
@_INFER_DEVICE
@_INFER_PRECISION
@_INFER_COMPILE
def demo_cmd(model_or_dir: str, pretrained: bool, host: str, port: int | None, max_upload_mb: float, device: str,
             precision: str, compile_: bool) -> None:
    """Serve a local web page for MODEL_OR_DIR (name, folder, run folder or hf-hub:ORG/REPO) for its task.

    Needs the demo extra: pip install 'vgzoo[demo]'. Stop it with Ctrl-C.
    """
    from .share.demo import DemoModel, launch_demo, load_demo_model, require_gradio

    require_gradio()
    with _WarningsAsNotes():  # "random weights" and the like, once, before the server logs start
        model = DemoModel(load_demo_model(model_or_dir, pretrained=pretrained), device=device, precision=precision,
                          compile=compile_)
    click.echo(_describe_inference(model.mode.to_dict()))
    launch_demo(model, host=host, port=port, max_upload_mb=max_upload_mb)


def _closed_pipe() -> None:
    """The reader went away (``vgzoo info X | head``): stop quietly, as a tool killed by SIGPIPE would (141)."""
    try:  # later flushes (at exit) must not raise again
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    sys.exit(141)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    try:
        cli.main(args=argv, prog_name="vgzoo")
    except BrokenPipeError:
        _closed_pipe()
    try:
        sys.stdout.flush()  # what is still buffered may meet a closed pipe too
    except BrokenPipeError:
        _closed_pipe()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
