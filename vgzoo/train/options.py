"""The one schema of training options, shared by :func:`vgzoo.train.fit`, ``vgzoo train`` and the torchrun launcher.

Two tables: :data:`RUN_OPTIONS` are the keywords of ``fit`` (those with a flag are ``vgzoo train``'s flags, re-emitted
by :func:`cli_argv` when ``--nproc`` re-launches the command under torchrun); :data:`ENGINE_OPTIONS` are the
``-o KEY=VALUE`` options every task takes. Each recipe adds its own table (``Recipe.schema`` in
:mod:`vgzoo.train.recipes`). The typed, frozen :class:`RunOptions` (with its :class:`EngineOptions`) is generated
from the two tables; a value is checked against its option's type when it is built, before training starts, so a typo
fails at once. What a run folder keeps (``config.json``, a checkpoint's config) is :meth:`RunOptions.to_config`, and
:meth:`RunOptions.from_config` reads it back. The ``--config`` keys (:data:`FIT_KEYS`), the keywords ``fit`` takes
as given (:data:`SETTINGS`), ``fit``'s docstring, the CLI's flags and docs/train.md's option tables (``python
docs/generate.py``) are all derived from these tables.
"""

from __future__ import annotations

import dataclasses
import json
import textwrap
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

_TYPES: dict[str, tuple[type, ...]] = {
    "int": (int,), "float": (int, float), "bool": (bool,), "str": (str,), "dict": (Mapping,), "list": (list, tuple),
}


@dataclass(frozen=True)
class Option:
    """One typed, documented option with its default.

    ``type`` is ``int``, ``float``, ``bool``, ``str``, ``dict`` or ``list``, or several joined by ``|`` (``int|str``);
    ``none`` in it allows None. ``flag`` is the ``vgzoo train`` flag of a run option (None: not on the command line).
    ``role`` sorts the run options (:data:`RUN_OPTIONS`): ``"setting"``, a value ``fit`` takes as given (an explicit
    one wins over a --config file's and a resumed run's); ``"input"``, what the run is built from (model, data, run
    folder, keyword dicts), kept with the run too; ``"call"``, how this one call runs (resume, overwrite, the config
    file, processes, the progress bar), never saved.
    """

    name: str
    default: Any
    type: str
    help: str
    flag: str | None = None
    click: dict[str, Any] = field(default_factory=dict, compare=False)
    role: str = "setting"
    minimum: float | None = None  # the least number allowed (counts of steps and epochs: 0)

    def check(self, value: Any, where: str = "option") -> Any:
        """``value`` if it has this option's type (an int where a float is expected becomes a float) and is at least
        ``minimum``."""
        kinds = self.type.split("|")
        if value is None and ("none" in kinds or self.default is None):
            return None
        for kind in kinds:
            allowed = _TYPES.get(kind, ())
            if isinstance(value, allowed) and not (kind in ("int", "float") and isinstance(value, bool)):
                if self.minimum is not None and kind in ("int", "float") and value < self.minimum:
                    raise ValueError(f"{where} {self.name}={value!r}: expected {self.minimum:g} or more "
                                     f"({self.help}).")
                return float(value) if kind == "float" and "int" not in kinds else value
        example = json.dumps(self.default if self.default is not None else 1)
        example = f"{self.flag.split()[-1]} {example}" if self.flag else f"-o {self.name}={example}"
        raise ValueError(f"{where} {self.name}={value!r}: expected {self.type.replace('|', ' or ')} ({self.help}); "
                         f"e.g. {example}.")


def _int_flag(name: str, help: str, flag: str) -> Option:
    return Option(name, None, "int", help, flag, {"type": "posint"})


RUN_OPTIONS: tuple[Option, ...] = (
    Option("model", None, "str", "a registered model name (built with model_kwargs), or in Python a model instance "
           "(its pretrained_cfg names the task, or pass task)", role="input"),
    Option("data", None, "str", "a folder in the task's format, builtin:digits, or a reference dataset "
           "(pix2pix:facades, cyclegan:horse2zebra; see vgzoo data list)", "--data", role="input"),
    Option("val_data", None, "str", "a validation dataset, when data is a dataset (Python only)", role="input"),
    Option("out", None, "str", "the run directory (default runs/MODEL); a new or empty folder, or a run to --resume",
           "--out", {"type": "dir"}, role="input"),
    Option("task", None, "str", "the task of a model instance whose pretrained_cfg names none"),
    _int_flag("epochs", "epochs to train (default: the recipe's)", "--epochs"),
    _int_flag("steps", "total steps of the run; with --resume, continue up to this total", "--steps"),
    _int_flag("batch_size", "per-process batch size (default: the recipe's)", "--batch-size"),
    Option("lr", None, "float", "base learning rate (default: the recipe's)", "--lr"),
    Option("resume", False, "bool|str", "continue exactly from the newest checkpoint in --out", "--resume",
           role="call"),
    Option("overwrite", False, "bool", "move what --out holds aside to OUT.old-<time> (never deleted), then train "
           "afresh", "--overwrite", role="call"),
    Option("device", None, "str", "cpu, cuda, cuda:1 ... (default: cuda if available; a device this machine lacks "
           "is refused before anything is written; under torchrun each process takes cuda:LOCAL_RANK)", "--device"),
    Option("amp", None, "bool|str", "mixed precision (default: auto on a GPU: bf16, or fp16 + GradScaler on GPUs "
           "without bf16; fp32 on the CPU). --amp is 'on' (bf16 where the hardware has bf16; a warning on CPUs "
           "without bf16 units); --amp auto|bf16|fp16|off picks one (docs/gpu.md)", "--amp",
           {"type": "amp", "flag_value": "on", "metavar": "[MODE]"}),
    Option("compile", False, "bool", "torch.compile with static shapes: a classifier whole, a GAN's networks one by "
           "one (state-dict keys unchanged; docs/gpu.md)", "--compile"),
    Option("seed", 0, "int", "seed of initialisation, data order and augmentation (0)", "--seed"),
    Option("config", None, "str", "a JSON file with any of these keywords; explicit ones win", "--config",
           {"type": "file"}, role="call"),
    Option("model_kwargs", None, "dict", "model constructor keywords (-k KEY=VALUE, repeatable; recorded in "
           "model.config)", "-k --model-kwarg",
           {"multiple": True}, role="input"),
    Option("options", None, "dict", "recipe and engine options (-o KEY=VALUE, repeatable)", "-o --option",
           {"multiple": True}, role="input"),
    Option("nproc", 1, "int", "processes: more than 1 re-launches under torchrun (DDP; gloo on CPU, nccl on CUDA)",
           "--nproc", {"type": "posint", "show_default": True}, role="call"),
    Option("progress", True, "bool", "show a progress bar", "--progress/--no-progress", role="call"),
)
# keys a --config file may hold (and that a checkpoint's config brings back on --resume): all but the call's own
FIT_KEYS = tuple(o.name for o in RUN_OPTIONS if o.role != "call")
# the keywords fit() takes as given (an explicit one wins over a --config file's and a resumed run's)
SETTINGS = tuple(o.name for o in RUN_OPTIONS if o.role == "setting")

ENGINE_OPTIONS: tuple[Option, ...] = (
    Option("save_every", 0, "int", "also checkpoint every N steps (0: only at save_epochs' epoch ends and at the "
           "end)", minimum=0),
    Option("save_epochs", 1, "int", "checkpoint at the end of every N-th epoch (0: not at epoch ends; the run's "
           "end and save_every still checkpoint)", minimum=0),
    Option("keep_last", 3, "int", "checkpoints kept (the best one is kept as well)"),
    Option("ema", False, "bool", "keep an exponential moving average of the weights (final_ema/)"),
    Option("ema_decay", 0.999, "float", "decay of the moving average"),
    Option("ema_start", 0, "int", "steps during which the average is a copy of the weights, before it starts "
           "averaging (BigGAN's ema_start: an average begun at step 1 keeps the initial weights for a long time)",
           minimum=0),
    Option("num_workers", "auto", "int|str", "DataLoader worker processes, started once per run; auto: none on the "
           "CPU or for in-memory data, else up to 8"),
    Option("log_every", "auto", "int|str", "steps between read-backs of the losses from the device (a host wait "
           "each); auto: 1 on the CPU, 25 on a GPU. Checkpoints read them first"),
    Option("augment", {}, "dict", "create_transform overrides (docs/augment.md)"),
    Option("data", {}, "dict", "create_dataset keywords (docs/data.md)"),
    Option("monitor", {}, "dict", "health-monitor thresholds (fields of MonitorConfig)"),
    Option("plot_every", 1, "int", "draw pictures every N epochs (and at most every few seconds)"),
    Option("schedule_steps", None, "int|none", "the LR schedule's horizon in steps (default: the first run's "
           "total; fixed for the run's life, so --resume past it needs this option to re-plan)"),
    Option("eval_every", 0, "int", "FID/KID of the generator's samples every N steps (0: off; generators only, "
           "docs/eval.md)", minimum=0),
    Option("eval_features", "digits", "str", "features for eval_every: digits, inception or a classifier name"),
    Option("eval_data", None, "str|none", "real images for eval_every (default: the training data's val split)"),
    Option("deterministic", False, "bool", "torch's deterministic algorithms (cuDNN and cuBLAS too): resume is "
           "bitwise on CUDA only with this; slower kernels"),
    Option("threads", "cores", "int|str", "CPU intra-op threads: cores (default) uses the cores this process may "
           "use, fixed for the machine; auto caps them at the cores free now (load-dependent, on request); N sets "
           "them. Saved with the run and reused on resume"),
)
ENGINE_DEFAULTS = {o.name: o.default for o in ENGINE_OPTIONS}
_ENGINE_BY_NAME = {o.name: o for o in ENGINE_OPTIONS}


# ------------------------------------------------------------------------------------- typed options
_CHECKED_KINDS = {"int", "float", "bool", "none"}  # what a run option is checked against when the object is built


def _frozen(value: Any) -> Any:
    """A read-only copy of a dict option (nested dicts too); other values as they are."""
    if isinstance(value, Mapping):
        return MappingProxyType({k: _frozen(v) for k, v in value.items()})
    return value


def thawed(value: Any) -> Any:
    """Plain JSON containers again (the form a run folder keeps)."""
    if isinstance(value, Mapping):
        return {k: thawed(v) for k, v in value.items()}
    return value


def _field(option: Option, default: Any) -> Any:
    if isinstance(default, Mapping):  # a fresh read-only mapping per object
        return field(default_factory=lambda: _frozen(default), metadata={"option": option})
    return field(default=default, metadata={"option": option})


def _check_engine(self) -> None:
    for f in dataclasses.fields(self):
        object.__setattr__(self, f.name, _frozen(f.metadata["option"].check(getattr(self, f.name))))


def _engine_part(options: Mapping[str, Any]) -> EngineOptions:
    """The engine options among ``options``, typed. A value without the engine option's type is left to the recipe,
    which checks every option against its own table and the engine's: a recipe may own the name (StyleGAN2's
    ``augment`` is its augmentation mode), and refuses it with the engine option's message where it does not."""
    given = {}
    for name, value in options.items():
        if name in ENGINE_DEFAULTS:
            try:
                given[name] = _ENGINE_BY_NAME[name].check(value)
            except ValueError:
                continue
    return EngineOptions(**given)


EngineOptions = dataclasses.make_dataclass(
    "EngineOptions", [(o.name, Any, _field(o, o.default)) for o in ENGINE_OPTIONS], frozen=True,
    namespace={"__post_init__": _check_engine, "__module__": __name__,
               "__doc__": "The engine options of a run (:data:`ENGINE_OPTIONS`), typed and checked; read-only."})


def _check_run(self) -> None:
    """Check the values of the JSON kinds (ints, floats, bools) against the table; strings, paths and objects (a
    dataset, a ``torch.device``) are checked where they are used. Dict options become read-only mappings."""
    for f in dataclasses.fields(self):
        if not f.init:
            continue
        option, value = f.metadata["option"], getattr(self, f.name)
        if value is not None and set(option.type.split("|")) <= _CHECKED_KINDS:
            value = option.check(value)
        object.__setattr__(self, f.name, _frozen(value))
    object.__setattr__(self, "engine", _engine_part(self.options))


def _to_config(self) -> dict[str, Any]:
    """What a run folder keeps (``config.json``, a checkpoint's config): the run options that are set, as JSON.

    The format of vgzoo 0.2: ``epochs``, ``steps`` and ``val_data`` appear only when set (a run of ``--steps`` keeps
    no ``epochs``), every other key always.
    """
    out = {}
    for f in dataclasses.fields(self):
        if f.name == "engine" or (f.name in _OMITTED_WHEN_UNSET and getattr(self, f.name) is None):
            continue
        out[f.name] = thawed(getattr(self, f.name))
    return out


def _from_config(cls, config: Mapping[str, Any]) -> RunOptions:
    """The run options a ``--config`` file, a run folder's config or ``fit``'s keywords give (other keys ignored)."""
    return cls(**{k: v for k, v in config.items() if k in FIT_KEYS})


def _with_options(self, **changes: Any) -> RunOptions:
    """A copy whose ``options`` (the -o options, engine and recipe ones) has ``changes`` applied."""
    return dataclasses.replace(self, options={**self.options, **changes})


_OMITTED_WHEN_UNSET = ("epochs", "steps", "val_data")
_RUN_DEFAULTS = {"options": {}, "model_kwargs": {}, "seed": 0, "compile": False}  # what an unset keyword means

RunOptions = dataclasses.make_dataclass(
    "RunOptions",
    [(o.name, Any, _field(o, _RUN_DEFAULTS.get(o.name))) for o in RUN_OPTIONS if o.role != "call"]
    + [("engine", Any, field(init=False, repr=False, compare=False))],
    frozen=True,
    namespace={"__post_init__": _check_run, "__module__": __name__, "to_config": _to_config,
               "from_config": classmethod(_from_config),
               "with_options": _with_options,
               "__doc__": "The options of one run (the kept rows of :data:`RUN_OPTIONS`), typed and read-only.\n\n"
                          "``options`` holds every -o option as given (engine and recipe ones; the recipe checks "
                          "its own); ``engine`` is the engine's part of them, typed (:class:`EngineOptions`, "
                          "defaults filled in; a value of another type is left to the recipe's check). A step that "
                          "settles a value (the device that ran, the recipe's learning rate) makes a new object "
                          "(``dataclasses.replace``, :meth:`with_options`)."})


def docstring(options: Iterable[Option], indent: str = "        ") -> str:
    """The ``Args:`` lines of ``options`` for a docstring (``fit``'s are made by this), from the table's help."""
    return "\n".join(textwrap.fill(f"{o.name}: {o.help}.", 116, initial_indent=indent,
                                   subsequent_indent=indent + "    ") for o in options)


def by_name(options: Iterable[Option]) -> dict[str, Option]:
    return {o.name: o for o in options}


def check_options(given: Mapping[str, Any], schema: Iterable[Option], owner: str) -> dict[str, Any]:
    """Checked values of ``given`` against ``schema`` plus the engine options; unknown names are refused."""
    known = {**by_name(ENGINE_OPTIONS), **by_name(schema)}
    unknown = sorted(set(given) - set(known))
    if unknown:
        raise ValueError(f"{owner}: unknown option(s) {', '.join(unknown)}. Known: {', '.join(sorted(known))}.")
    return {k: known[k].check(v) for k, v in given.items()}


def option_table(options: Iterable[Option]) -> str:
    """A markdown table of ``options`` (docs/train.md's tables are made by this)."""
    lines = ["| option | type | default | meaning |", "| --- | --- | --- | --- |"]
    for o in options:
        shown = o.flag.split()[-1] if o.flag else o.name
        default = "-" if o.default is None or o.default == {} else json.dumps(o.default)
        lines.append(f"| `{shown}` | {o.type.replace('|', ' or ')} | {default} | {o.help} |")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------ the CLI
def _amp_mode_type():
    """``--amp``'s value, checked against :data:`vgzoo.precision.AMP_CHOICES` when it is parsed.

    Not a ``click.Choice``: building one at decoration time would import vgzoo.precision, and with it torch,
    into the start of every command (``vgzoo list`` included).
    """
    import click

    class AmpMode(click.ParamType):
        name = "mode"

        def convert(self, value, param, ctx):
            from ..precision import AMP_CHOICES

            choices = (*AMP_CHOICES, "fp32")
            if isinstance(value, str) and value.lower() in choices:
                return value.lower()
            self.fail(f"{value!r} is not a precision mode; expected one of {', '.join(choices)}.", param, ctx)

    return AmpMode()


def click_options(command: Callable) -> Callable:
    """Decorate the ``vgzoo train`` command with one click option per run option that has a flag."""
    import click

    types = {"posint": click.IntRange(min=1), "dir": click.Path(file_okay=False),
             "file": click.Path(exists=True, dir_okay=False), "amp": _amp_mode_type()}
    for o in reversed(RUN_OPTIONS):
        if o.flag is None:
            continue
        extra = dict(o.click)
        kind = extra.pop("type", None)
        kw: dict[str, Any] = {"help": o.help + "."}
        if kind:
            kw["type"] = types[kind]
        elif o.type == "float":
            kw["type"] = float
        elif o.type == "int":
            kw["type"] = int
        if "flag_value" in extra:  # a flag with an optional value: --amp alone, or --amp bf16
            kw.update(is_flag=False, default=None)
        elif o.type.startswith("bool") and "/" not in o.flag:
            kw.update(is_flag=True, default=None)
        elif "/" in o.flag:
            kw["default"] = o.default
        elif extra.get("multiple"):
            kw["metavar"] = "KEY=VALUE"
        else:
            kw["default"] = o.default if extra.get("show_default") else None
        command = click.option(*o.flag.split(), o.name, **{**kw, **extra})(command)
    return command


def parse_key_values(pairs: Iterable[str], what: str) -> dict[str, Any]:
    """``KEY=VALUE`` pairs; a VALUE that parses as JSON (numbers, true, lists, objects) is taken as JSON."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"{what} takes KEY=VALUE (e.g. save_every=100), got {pair!r}")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def cli_argv(values: Mapping[str, Any]) -> list[str]:
    """The ``vgzoo train`` flags that give back ``values`` (the CLI's parsed run options), for a torchrun re-launch.

    Every process runs one process's worth (no ``--nproc``: torchrun parses every ``--option``, also those after the
    script, and refuses ``--nproc`` as an ambiguous prefix of its own); options left at None are not repeated.
    """
    argv: list[str] = []
    for o in RUN_OPTIONS:
        value = values.get(o.name)
        if o.flag is None or value is None:
            continue
        flag = o.flag.split()[0]
        if o.name == "nproc":  # torchrun would take --nproc for its own (ambiguous) option; each process is one
            continue
        if "/" in o.flag:
            argv += [] if value else ["--no-" + flag[2:].split("/")[0]]
        elif o.type.startswith("bool"):
            argv += [flag, value] if isinstance(value, str) else [flag] if value else []
        elif o.click.get("multiple"):
            argv += [a for kv in value for a in (flag, kv)]
        else:
            argv += [flag, str(value)]
    return argv
