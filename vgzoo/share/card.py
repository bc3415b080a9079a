"""Model cards: the README.md beside ``model.safetensors`` and ``config.json`` that the Hugging Face Hub shows.

The card has YAML front matter the Hub reads (``library_name: vgzoo``, ``tags``, ``license``, ``pipeline_tag``,
``datasets``, ``base_model``; written by huggingface_hub's :class:`~huggingface_hub.ModelCardData`) and a body:
what the model is, its paper, parameter counts, the input it takes, how to load and run it and, when the folder
was saved by a training run (``RUN/final``), the run's final metrics, ``vgzoo eval`` results and loss curves.

A card vgzoo wrote ends with a marker holding the hash of its text, so vgzoo knows whether the README in a
folder is still its own (refreshed on the next save) or was written or edited by a person (kept, unless the
caller passes ``overwrite=True``).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import shutil
import warnings
from pathlib import Path
from typing import Any

from .._hub import atomic_write

CARD_NAME = "README.md"
LOSS_CURVES = "loss_curves.png"
SAMPLES = "samples.png"
EVAL_FILES = ("eval.json", "eval_results.json")  # `vgzoo eval ... --json > FOLDER/eval.json`
_MARKER_RE = re.compile(r"\n<!-- vgzoo-model-card sha256:([0-9a-f]{64}) -->\n?\Z")
PLACEHOLDER_REPO = "ORG/REPO"

_HUB_ID_RE = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


# ------------------------------------------------------------------------------------------ ownership
def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _sign(text: str) -> str:
    return f"{text}\n<!-- vgzoo-model-card sha256:{_digest(text)} -->\n"


def is_generated_card(text: str) -> bool:
    """True when ``text`` is a card vgzoo wrote and nobody has edited since."""
    m = _MARKER_RE.search(text)
    return bool(m) and _digest(text[: m.start()]) == m.group(1)


def read_front_matter(text: str) -> dict[str, Any]:
    """The YAML front matter of a card as a dict (empty when there is none)."""
    from huggingface_hub import ModelCard

    try:
        return ModelCard(text, ignore_metadata_errors=True).data.to_dict()
    except Exception:  # a README without front matter, or one the Hub's parser refuses
        return {}


# ------------------------------------------------------------------------------------------ run folder
def find_run_dir(directory: str | os.PathLike) -> Path | None:
    """The training run a model folder was saved from (``RUN/final``, ``RUN/final_ema``), or None.

    A run folder holds the run's ``config.json`` (with its ``recipe``) and ``metrics.jsonl``, as written by
    :func:`vgzoo.train.fit`.
    """
    parent = Path(directory).resolve().parent
    config = parent / "config.json"
    if not (parent / "metrics.jsonl").is_file() or not config.is_file():
        return None
    try:
        data = json.loads(config.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, OSError):
        return None
    return parent if isinstance(data, dict) and "recipe" in data else None


def run_summary(run_dir: str | os.PathLike) -> dict[str, Any]:
    """What a card says about a run: its config, the last train and val rows of metrics.jsonl, its health."""
    run_dir = Path(run_dir)
    summary: dict[str, Any] = {"config": {}, "train": {}, "val": {}, "health": None}
    try:
        summary["config"] = json.loads((run_dir / "config.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        pass
    try:
        lines = (run_dir / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    except OSError:
        lines = []
    for line in lines:
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut short by a crash
        if isinstance(row, dict):
            summary["val" if row.get("split") == "val" else "train"] = row
    try:
        health = json.loads((run_dir / "health.json").read_text(encoding="utf-8"))
        summary["health"] = health.get("status") if isinstance(health, dict) else None
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        pass
    return summary


def read_eval_results(*folders: str | os.PathLike | None) -> dict[str, float]:
    """Numeric results of ``vgzoo eval`` found in ``eval.json``/``eval_results.json`` of the first folder holding one.

    The file is a JSON object of metric name to number, or one with such an object under ``"metrics"``.
    """
    for folder in folders:
        if folder is None:
            continue
        for name in EVAL_FILES:
            path = Path(folder) / name
            if not path.is_file():
                continue
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except (json.JSONDecodeError, UnicodeDecodeError, OSError):
                continue
            if isinstance(data, dict) and isinstance(data.get("metrics"), dict):
                data = data["metrics"]
            if isinstance(data, dict):
                return {k: float(v) for k, v in data.items() if _is_number(v)}
    return {}


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(float(v))


# ------------------------------------------------------------------------------------------ the card
def _param_counts(model) -> tuple[int, list[tuple[str, int]]]:
    total = sum(p.numel() for p in model.parameters())
    parts = [(name, sum(p.numel() for p in child.parameters())) for name, child in model.named_children()]
    parts = [(n, c) for n, c in parts if c]
    return total, parts if len(parts) > 1 else []


def kwargs_of(model) -> dict[str, Any]:
    """The constructor arguments that differ from the architecture's defaults (``model.config`` holds them all)."""
    config = getattr(model, "config", None) or {}
    cfg = getattr(model, "pretrained_cfg", None) or {}
    arch = cfg.get("architecture")
    try:
        from .._factory import model_info

        defaults = model_info(_built_from(cfg)).default_kwargs if arch else {}
    except Exception:  # a model registered at run time and gone, or no registry entry: show everything
        defaults = {}
    return {k: v for k, v in config.items() if k not in defaults or defaults[k] != v}


def _built_from(cfg: dict[str, Any]) -> str:
    """What ``vgzoo.create`` is given to build the model again: ``name.tag`` for a published configuration."""
    arch = cfg.get("architecture")
    return f"{arch}.{cfg['tag']}" if arch and cfg.get("tag") else str(arch)


def _fmt_count(n: int) -> str:
    if n >= 1e6:
        return f"{n / 1e6:.2f}M ({n:,})"
    if n >= 1e3:
        return f"{n / 1e3:.1f}K ({n:,})"
    return f"{n:,}"


def _hub_repo_of(source: str | None) -> str | None:
    """``hf-hub:org/repo[@rev][/file]`` -> ``org/repo``; None for any other weight source."""
    if not source or not source.startswith("hf-hub:"):
        return None
    parts = source[len("hf-hub:") :].split("/")
    if len(parts) < 2:
        return None
    repo = f"{parts[0]}/{parts[1].split('@')[0]}"
    return repo if _HUB_ID_RE.match(repo) else None


def _dataset_ids(values: list[Any]) -> list[str]:
    """Only Hub dataset ids (``org/name``) go into the front matter; local paths must not leak into a public card."""
    out = []
    for v in values:
        if isinstance(v, str):
            v = v[len("hf-dataset:") :] if v.startswith("hf-dataset:") else v
            if _HUB_ID_RE.match(v) and not Path(v).exists() and v not in out:
                out.append(v)
    return out


# The licence ids the Hub's model-card metadata knows (huggingface/hub-docs, docs/hub/repositories-licenses.md);
# any other licence is written as ``license: other`` with ``license_name`` and ``license_link``.
HUB_LICENSES = frozenset("""
    apache-2.0 mit openrail bigscience-openrail-m creativeml-openrail-m bigscience-bloom-rail-1.0 bigcode-openrail-m
    afl-3.0 artistic-2.0 bsl-1.0 bsd bsd-2-clause bsd-3-clause bsd-3-clause-clear c-uda cc cc0-1.0 cc-by-2.0
    cc-by-2.5 cc-by-3.0 cc-by-4.0 cc-by-sa-3.0 cc-by-sa-4.0 cc-by-nc-2.0 cc-by-nc-3.0 cc-by-nc-4.0 cc-by-nd-4.0
    cc-by-nc-nd-3.0 cc-by-nc-nd-4.0 cc-by-nc-sa-2.0 cc-by-nc-sa-3.0 cc-by-nc-sa-4.0 cdla-sharing-1.0
    cdla-permissive-1.0 cdla-permissive-2.0 wtfpl ecl-2.0 epl-1.0 epl-2.0 etalab-2.0 eupl-1.1 agpl-3.0 gfdl gpl
    gpl-2.0 gpl-3.0 lgpl lgpl-2.1 lgpl-3.0 isc lppl-1.3c ms-pl mpl-2.0 odc-by odbl openrail++ osl-3.0 postgresql
    ofl-1.1 ncsa unlicense zlib pddl lgpl-lr deepfloyd-if-license llama2 gemma unknown other""".split())


def _license_metadata(license: str | None, cfg: dict, previous: dict) -> dict[str, str | None]:
    """``license`` as the Hub's front matter wants it: its id (lower-case SPDX, ``Apache-2.0`` -> ``apache-2.0``),
    or ``other`` with ``license_name`` (the licence as an id) and ``license_link`` (the config's, when it declares
    the licence asked for)."""
    name = license or cfg.get("license")
    if not name and previous.get("license") == "other":  # a replaced card's own licence outside the Hub's list
        return {k: previous.get(k) for k in ("license", "license_name", "license_link")}
    name = str(name or previous.get("license") or "apache-2.0").strip()
    hub_id = name.lower().replace(" ", "-")
    if hub_id in HUB_LICENSES:
        return {"license": hub_id}
    link = cfg.get("license_link") if name == cfg.get("license") else None
    return {"license": "other", "license_name": re.sub(r"[^a-z0-9.]+", "-", name.lower()).strip("-"),
            "license_link": link}


def _paper_link(paper: str) -> str:
    m = re.search(r"arXiv:(\d{4}\.\d{4,5})", paper)
    return f"{paper} ([arXiv](https://arxiv.org/abs/{m.group(1)}))" if m else paper


def _value_range(cfg: dict[str, Any]) -> str:
    mean, std = cfg.get("mean"), cfg.get("std")
    if not mean or not std:
        return "pixel values as the model's factory documents"
    if all(abs(m - 0.5) < 1e-9 for m in mean) and all(abs(s - 0.5) < 1e-9 for s in std):
        return "pixel values scaled to [0, 1], then normalised with mean = std = 0.5, so the network sees [-1, 1]"
    return (f"pixel values scaled to [0, 1], then normalised with mean {tuple(round(m, 4) for m in mean)} and "
            f"std {tuple(round(s, 4) for s in std)}")


def _task_record(task: str | None):
    """The task's record (it says what the card writes for such a model), or None for no task or one not installed."""
    from ..errors import PluginError
    from ..tasks import UnknownTaskError, get_task

    try:
        return get_task(task) if task else None
    except (UnknownTaskError, PluginError):
        return None


def _usage(record, repo: str) -> list[str]:
    src = f"hf-hub:{repo}"
    imports, code, commands = record.usage if record is not None else ((), (), ())
    imports = ["import vgzoo", *(line.format(src=src) for line in imports)]
    body = [f'model = vgzoo.create("{src}")  # weights through the Hugging Face cache',
            *(line.format(src=src) for line in code)]
    cli = ["```bash", "pip install vgzoo", *(line.format(src=src) for line in commands),
           f"vgzoo demo {src}   # a local web page for the model (pip install 'vgzoo[demo]')", "```"]
    return ["```python", *imports, "", *body, "```", "", *cli]


def _front_matter(cfg: dict, run_cfg: dict, *, repo_id, license, datasets, base_model, previous) -> tuple[Any, Any]:
    """The Hub's YAML front matter (``ModelCardData``) and the base model it names."""
    from huggingface_hub import ModelCardData

    arch = cfg.get("architecture")
    family, task = cfg.get("family"), cfg.get("task")
    base = base_model or cfg.get("base_model") or _hub_repo_of(cfg.get("weight_source")) or previous.get("base_model")
    data_values = list(datasets or []) + list(cfg.get("datasets") or []) + [cfg.get("dataset"), run_cfg.get("data")]
    dataset_ids = _dataset_ids(data_values) or list(previous.get("datasets") or [])
    tags = ["vgzoo", "pytorch", "safetensors"]
    for t in (family, (task or "").replace("_", "-") or None, arch):
        if t and t not in tags:
            tags.append(t)
    tags.append("vision-transformer" if family == "vit" else "gan")
    data = ModelCardData(
        library_name="vgzoo",
        **_license_metadata(license, cfg, previous),
        tags=tags,
        pipeline_tag=getattr(_task_record(task), "pipeline_tag", None),
        datasets=dataset_ids or None,
        base_model=base if base and base != repo_id else None,
    )
    return data, base


def _io_rows(model, cfg: dict) -> list[str]:
    """Table rows: what the model takes and gives."""
    record = _task_record(cfg.get("task"))
    output = record.output if record is not None else "image"
    labelled = record is not None and record.labelled
    c, h, w = (list(cfg.get("input_size") or []) + [None, None, None])[:3]
    size = f"{c} x {h} x {w} (channels x height x width)" if c is not None else "images"
    rows = []
    if output == "sample":
        nz = getattr(model, "nz", None) or (getattr(model, "config", None) or {}).get("nz")
        cond = " and a class label" if labelled else ""
        rows.append(f"| input | a latent vector{f' of {nz}' if nz else ''}{cond} (drawn by `sample`) |")
        rows.append(f"| output | {size}, values in [-1, 1] (tanh); pixels are `(y + 1) * 127.5` |")
    elif c is not None:
        rows.append(f"| input | {size}, {_value_range(cfg)} |")
        if output != "logits":
            rows.append("| output | images in [-1, 1] (tanh); pixels are `(y + 1) * 127.5` |")
    if cfg.get("num_classes") and labelled:
        rows.append(f"| classes | {cfg['num_classes']} |")
    return rows


def _model_section(model, cfg: dict, run_cfg: dict, base: str | None) -> list[str]:
    """The "Model" table: architecture, family, task, paper, parameters, inputs and outputs, provenance."""
    from .._version import __version__

    arch, family, task = cfg.get("architecture", type(model).__name__), cfg.get("family"), cfg.get("task")
    total, parts = _param_counts(model)
    lines = ["", "## Model", "", "| | |", "| --- | --- |", f"| architecture | `{arch}` |"]
    if cfg.get("tag"):
        lines.append(f"| published configuration | `{arch}.{cfg['tag']}` |")
    if family:
        lines.append(f"| family | `{family}` |")
    if task:
        lines.append(f"| task | `{task}` |")
    if cfg.get("paper"):
        lines.append(f"| paper | {_paper_link(str(cfg['paper']))} |")
    if cfg.get("license"):
        notes = f". {cfg['notes']}" if cfg.get("notes") else ""
        lines.append(f"| licence | {cfg['license']}{notes} |")
    lines.append(f"| parameters | {_fmt_count(total)} |")
    lines += [f"| &nbsp;&nbsp;`{name}` | {_fmt_count(n)} |" for name, n in parts]
    lines += _io_rows(model, cfg)
    kwargs = kwargs_of(model)
    if kwargs:
        shown = ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
        lines.append(f"| built with | `vgzoo.create(\"{_built_from(cfg)}\", {shown})` |")
    if base:
        lines.append(f"| fine-tuned from | [{base}](https://huggingface.co/{base}) |")
    elif cfg.get("weight_source") and str(cfg["weight_source"]).startswith("file:"):
        lines.append(f"| initial weights | vgzoo's published `{arch}` weights |")
    trained_on = cfg.get("dataset") or run_cfg.get("data")
    if isinstance(trained_on, str) and trained_on.startswith(("builtin:", "hf-dataset:")):
        lines.append(f"| data | `{trained_on}` |")
    lines.append(f"| vgzoo version | {__version__} |")
    return lines


def _training_section(run: dict, run_dir: Path, pictures: dict[str, Path]) -> list[str]:
    """The run's settings, health, final metrics and pictures (which ``pictures`` collects to copy)."""
    run_cfg = run["config"]
    lines = ["", "## Training", ""]
    facts = []
    for key, label in (("data", "data"), ("recipe", "recipe"), ("total_steps", "steps"), ("epochs", "epochs"),
                       ("batch_size", "batch size"), ("lr", "learning rate"), ("seed", "seed"),
                       ("world_size", "processes")):
        value = run_cfg.get(key)
        if value is None:
            continue
        if key == "data" and isinstance(value, str) and not value.startswith(("builtin:", "hf-dataset:")):
            value = Path(value).name or value  # a local folder: its name, not the user's full path
        facts.append(f"{label} `{value}`")
    if facts:
        lines.append("Trained with vgzoo's trainer (`vgzoo train`, `vgzoo.train.fit`): " + ", ".join(facts) + ".")
    if run["health"]:
        lines += ["", f"GAN health monitor at the end of the run: **{run['health']}**."]
    for split, title in (("train", "last training step"), ("val", "last validation")):
        row = {k: v for k, v in run[split].items() if k not in ("step", "epoch", "split", "time") and _is_number(v)}
        if row:
            lines += ["", f"Final metrics ({title}, step {run[split].get('step')}):", "", "| metric | value |",
                      "| --- | --- |"]
            lines += [f"| {k} | {float(v):.4g} |" for k, v in row.items()]
    if (run_dir / LOSS_CURVES).is_file():
        pictures[LOSS_CURVES] = run_dir / LOSS_CURVES
        lines += ["", f"![loss curves]({LOSS_CURVES})"]
    if (run_dir / "samples" / "final.png").is_file():
        pictures[SAMPLES] = run_dir / "samples" / "final.png"
        lines += ["", "Samples at the end of training:", "", f"![samples]({SAMPLES})"]
    return lines


def build_model_card(
    model,
    directory: str | os.PathLike | None = None,
    *,
    repo_id: str | None = None,
    license: str | None = None,
    datasets: list[str] | None = None,
    base_model: str | None = None,
    previous: dict[str, Any] | None = None,
) -> tuple[str, dict[str, Path]]:
    """The card's text for ``model`` saved in ``directory``, and the pictures it shows (name in the folder -> source).

    Args:
        model: a model built by :func:`vgzoo.create` (it has ``pretrained_cfg``).
        directory: the folder the card goes to; when it is a run's ``final`` folder the run is described.
        repo_id: the Hub repository the usage snippet names (default ``ORG/REPO``).
        license: the licence of the weights (default: ``pretrained_cfg["license"]``, else ``apache-2.0``,
            vgzoo's own).
        datasets: Hub dataset ids the model was trained on (default: the config's and the run's, when they are
            Hub ids; local paths are never written).
        base_model: the Hub model this one was fine-tuned from (default: the Hub repo its weights were loaded
            from, if any).
        previous: front matter of the card this one replaces, whose ``base_model``/``datasets``/``license``
            are kept when nothing newer is known.
    """
    cfg = dict(getattr(model, "pretrained_cfg", None) or {})
    cfg.setdefault("architecture", type(model).__name__)
    arch, family, task = cfg["architecture"], cfg.get("family"), cfg.get("task")
    run_dir = find_run_dir(directory) if directory is not None else None
    run = run_summary(run_dir) if run_dir is not None else None
    run_cfg = run["config"] if run else {}
    data, base = _front_matter(cfg, run_cfg, repo_id=repo_id, license=license, datasets=datasets,
                               base_model=base_model, previous=previous or {})

    lines = [f"# {repo_id.split('/')[-1] if repo_id else arch}", ""]
    record = _task_record(task)
    what = record.card_summary if record is not None else (f"a {task} model" if task else "a model")
    lines += [f"A [vgzoo](https://pypi.org/project/vgzoo/) `{arch}`: {what}"
              + (f" (family `{family}`)." if family else ".")]
    if cfg.get("description"):
        lines += ["", str(cfg["description"])]
    lines += _model_section(model, cfg, run_cfg, base)
    lines += ["", "## Use it", "", *_usage(record, repo_id or PLACEHOLDER_REPO)]
    pictures: dict[str, Path] = {}
    if run is not None:
        lines += _training_section(run, run_dir, pictures)
    results = read_eval_results(directory, run_dir)
    if results:
        lines += ["", "## Evaluation", "", "Results of `vgzoo eval`:", "", "| metric | value |", "| --- | --- |"]
        lines += [f"| {k} | {v:.4g} |" for k, v in results.items()]
    lines += ["", "## Files", "", "`model.safetensors` (weights), `config.json` (architecture and kwargs), this card.",
              "Written by `vgzoo.save_pretrained`; regenerated on the next save unless you edit it."]
    text = "---\n" + data.to_yaml() + "\n---\n\n" + "\n".join(lines) + "\n"
    return text, pictures


def save_pretrained(model, directory: str | os.PathLike, overwrite_card: bool = False) -> Path:
    """Write ``model.safetensors``, ``config.json`` and the model card ``README.md``: a model as it is published.

    The weights and config are the core's folder (:func:`vgzoo._builder.save_model`); the card replaces a README
    the user wrote only with ``overwrite_card=True``.
    """
    from .._builder import save_model

    directory = save_model(model, directory)
    write_model_card(model, directory, overwrite=overwrite_card)  # README.md; a user's own is kept
    return directory


def write_model_card(model, directory: str | os.PathLike, *, overwrite: bool = False, repo_id: str | None = None,
                     **card_kwargs: Any) -> Path | None:
    """Write ``README.md`` for ``model`` into ``directory`` (and the pictures it shows), atomically.

    A README that vgzoo wrote and nobody edited is refreshed. Any other README is the user's: it is kept, with a
    warning, unless ``overwrite`` is True (CLI: ``--overwrite-card``).

    Returns:
        The card's path, or None when a user-written README was kept.
    """
    directory = Path(directory)
    path = directory / CARD_NAME
    previous: dict[str, Any] = {}
    if path.is_file():
        existing = path.read_text(encoding="utf-8", errors="replace")
        if not overwrite and not is_generated_card(existing):
            warnings.warn(
                f"{str(path)!r} was written or edited by you, so vgzoo kept it and did not write its model card. "
                "Pass overwrite_card=True (CLI: --overwrite-card) to replace it with a generated card.",
                stacklevel=2,
            )
            return None
        previous = read_front_matter(existing) if is_generated_card(existing) else {}
    text, pictures = build_model_card(model, directory, repo_id=repo_id, previous=previous, **card_kwargs)
    for name, source in pictures.items():
        atomic_write(directory / name, lambda tmp, src=source: shutil.copyfile(src, tmp))
    return atomic_write(path, lambda tmp: Path(tmp).write_text(_sign(text), encoding="utf-8"))
