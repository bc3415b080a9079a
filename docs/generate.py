"""Regenerate the generated parts of docs/: the CLI reference, the model tables and the plugin protocol.

Run: python docs/generate.py          (rewrites docs/cli.md, docs/models-table.md, the tables in docs/models/,
                                       the dataset table in docs/data.md, the tag table in docs/pretrained.md,
                                       the protocol reference and worked example in docs/plugins.md and the
                                       option tables of docs/train.md)
     python docs/generate.py --check  (exit 1 if any of them is stale; tests/test_docs.py runs this)

The CLI reference comes from the click commands themselves, the model tables from the registry
(parameter counts of each model at its default configuration), the dataset table from the registry of
reference datasets, the tag table from the published configs, the protocol reference from vgzoo/protocols.py and
vgzoo/_registry.py (docstrings and signatures) and the worked plugin example from the scaffold's template, so none
can drift from the code.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import inspect
import re
import sys
from pathlib import Path

import click

DOCS = Path(__file__).parent
WIDTH = 100


def _walk(command: click.Command, path: list[str], parent: click.Context | None):
    ctx = click.Context(command, info_name=path[-1], parent=parent, terminal_width=WIDTH, max_content_width=WIDTH)
    yield path, command, ctx
    if isinstance(command, click.Group):
        for name in sorted(command.list_commands(ctx)):
            yield from _walk(command.get_command(ctx, name), [*path, name], ctx)


@contextlib.contextmanager
def _builtin_converters_only():
    """``vgzoo convert`` as vgzoo alone has it: a plugin's converter installed in a dev environment must not change
    the docs."""
    from vgzoo import converters

    installed = converters.converter_entry_points
    builtin = {n: records for n, records in installed().items() if any(r.builtin for r in records)}
    converters.converter_entry_points = lambda: builtin
    try:
        yield
    finally:
        converters.converter_entry_points = installed


def cli_reference() -> str:
    """Markdown with the --help text of every vgzoo command and subcommand."""
    from vgzoo.cli import cli

    parts = [
        "# CLI reference",
        "",
        "Generated from the click commands by `python docs/generate.py`; a test keeps it current.",
        "Exit codes: 0 on success, 2 on usage errors, 1 on other errors (one line on stderr; `--debug` or",
        "`VGZOO_DEBUG=1` shows the traceback).",
    ]
    with _builtin_converters_only():
        for path, command, ctx in _walk(cli, ["vgzoo"], None):
            parts += ["", f"## `{' '.join(path)}`", "", "```text", command.get_help(ctx).rstrip(), "```"]
    return "\n".join(parts) + "\n"


def _builtin_rows() -> list[dict]:
    """Family, task, parameter count and input size of every built-in model at its default configuration."""
    import torch

    import vgzoo

    rows = []
    for name in vgzoo.list_models():
        info = vgzoo.model_info(name)
        if info.distribution != "vgzoo":  # plugins installed in a dev environment must not change the docs
            continue
        with torch.device("meta"):  # shapes only: no memory, no initialisation
            model = vgzoo.create(name)
        rows.append(
            {
                "name": name,
                "family": info.family,
                "task": info.task,
                "paper": info.paper,
                "params": sum(p.numel() for p in model.parameters()),
                "size": "x".join(str(s) for s in model.pretrained_cfg["input_size"]),
                "parts": _parts(model),
            }
        )
    return rows


def _parts(model) -> dict[str, int]:
    """Parameter counts of a GAN's generators and discriminators, by name."""
    from vgzoo.protocols import GANModel

    if not isinstance(model, GANModel):
        return {}
    nets = {**model.generators(), **model.discriminators()}
    return {name: sum(p.numel() for p in net.parameters()) for name, net in nets.items()}


def pretrained_table() -> str:
    """Markdown table of every name.tag with published weights, from the registry."""
    import torch

    import vgzoo
    from vgzoo import _registry
    from vgzoo.pretrained import source_of

    lines = ["| name.tag (alias) | what | source | licence | dataset (direction) | input | parameters |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    aliases = _registry.list_aliases()
    alias_of = {target: alias for alias, target in aliases.items()}
    for full in vgzoo.list_pretrained():
        if full in aliases:  # shown beside the name.tag it points to
            continue
        arch, tag = _registry.split_name(full)
        spec = _registry.load_spec(arch)
        if vgzoo.model_info(arch).distribution != "vgzoo":
            continue
        cfg = spec.cfg_for(tag)[1]
        with torch.device("meta"):
            params = sum(p.numel() for p in vgzoo.create(full).parameters())
        what = cfg.description.split(" (the reference")[0].split("; timm ")[0]
        data = (f"`{cfg.dataset}`" + (f" ({cfg.direction})" if cfg.direction else "")) if cfg.dataset else "-"
        size = "x".join(map(str, cfg.input_size))
        shown = f"`{full}` (`{alias_of[full]}`)" if full in alias_of else f"`{full}`"
        lines.append(f"| {shown} | {what} | {source_of(cfg)} | {cfg.license or 'not stated'} | {data} | {size} "
                     f"| {params:,} |")
    return "\n".join(lines)


PRETRAINED = re.compile(r"(<!-- BEGIN generated:pretrained -->\n).*?(<!-- END generated:pretrained -->)", re.S)


def fill_pretrained_page() -> dict[Path, str]:
    page = DOCS / "pretrained.md"
    return {page: PRETRAINED.sub(lambda m: f"{m.group(1)}{pretrained_table()}\n{m.group(2)}", page.read_text())}


def model_tables(rows: list[dict]) -> str:
    """Markdown table of every built-in model: family, task, parameters at its default configuration."""
    lines = ["| model | family | task | parameters | input size | paper |", "| --- | --- | --- | --- | --- | --- |"]
    lines += [
        f"| `{r['name']}` | {r['family']} | {r['task']} | {r['params']:,} | {r['size']} | {r['paper']} |" for r in rows
    ]
    return "# Model table\n\nGenerated from the registry by `python docs/generate.py`.\n\n" + "\n".join(lines) + "\n"


def family_table(rows: list[dict], family: str) -> str:
    """Parameter counts of one family's models, with their parts (generators, discriminators)."""
    lines = ["| model | input size | parameters | parts |", "| --- | --- | --- | --- |"]
    for r in rows:
        if r["family"] == family:
            parts = ", ".join(f"{k} {v:,}" for k, v in r["parts"].items()) or "-"
            lines.append(f"| `{r['name']}` | {r['size']} | {r['params']:,} | {parts} |")
    return "\n".join(lines)


def dataset_table() -> str:
    """Markdown table of the reference datasets, from the registry in vgzoo/data/reference.py."""
    from vgzoo.data.reference import list_references

    lines = ["| name | kind | splits | image size | default direction | contents (reference docs) | licence note |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for e in list_references():
        size = f"{e.image_size} px" + (" per half" if e.kind == "aligned" else "") if e.image_size else "varies"
        direction = e.direction if e.task else "-"
        name = f"`{e.spec}`" + (" (not downloadable)" if e.restricted else "")
        lines.append(f"| {name} | {e.kind} | {', '.join(e.splits)} | {size} | {direction} | {e.source} | {e.license} |")
    return "\n".join(lines)


DATASETS = re.compile(r"(<!-- BEGIN generated:datasets -->\n).*?(<!-- END generated:datasets -->)", re.S)


def fill_data_page() -> dict[Path, str]:
    """docs/data.md with its generated dataset table filled in."""
    page = DOCS / "data.md"
    return {page: DATASETS.sub(lambda m: f"{m.group(1)}{dataset_table()}\n{m.group(2)}", page.read_text())}


BLOCK = re.compile(r"(<!-- BEGIN generated:params (\w+) -->\n).*?(<!-- END generated:params -->)", re.S)


def fill_family_pages(rows: list[dict]) -> dict[Path, str]:
    """Each docs/models/*.md with its generated parameter block filled in."""
    pages = {}
    for page in sorted((DOCS / "models").glob("*.md")):
        text = page.read_text()
        pages[page] = BLOCK.sub(lambda m: f"{m.group(1)}{family_table(rows, m.group(2))}\n{m.group(3)}", text)
    return pages


OPTIONS_BLOCK = re.compile(r"(<!-- BEGIN generated:options (\w+) -->\n).*?(<!-- END generated:options -->)", re.S)


def options_table(which: str) -> str:
    """The table of ``vgzoo train``'s run options, the engine options, or one task's recipe options."""
    from vgzoo.train.options import ENGINE_OPTIONS, RUN_OPTIONS, option_table
    from vgzoo.train.recipes import recipe_for

    if which == "run":
        return option_table(o for o in RUN_OPTIONS if o.flag)
    if which == "engine":
        return option_table(ENGINE_OPTIONS)
    return option_table(recipe_for(which).schema)


def fill_train_page() -> dict[Path, str]:
    """docs/train.md with its option tables filled in from vgzoo.train.options and the recipes' schemas."""
    page = DOCS / "train.md"
    text = OPTIONS_BLOCK.sub(lambda m: f"{m.group(1)}{options_table(m.group(2))}\n{m.group(3)}", page.read_text())
    return {page: text}


def _markdown(doc: str | None) -> str:
    """A docstring as Markdown: RST roles and literals become code spans, ``Args:``-style sections lists."""
    if not doc:
        return ""
    doc = re.sub(r":(?:class|meth|func|attr|mod|data|exc):`~?([^`]+)`", r"`\1`", doc).replace("``", "`")
    out: list[str] = []
    section = None
    for line in doc.splitlines():
        heading = re.fullmatch(r"(Args|Returns|Raises|Yields):\s*", line)
        if heading:
            section = heading.group(1)
            out += ["", f"*{section}:*", ""]
        elif section and line.startswith("        "):  # continuation of an item
            out[-1] += " " + line.strip()
        elif section and line.startswith("    "):
            item = re.fullmatch(r"(\*{0,2}\w+):\s*(.*)", line.strip())
            out.append(f"- `{item.group(1)}`: {item.group(2)}" if item and section == "Args" else f"- {line.strip()}")
        else:
            section = None if line.strip() else section
            out.append(line)
    return "\n".join(out).strip()


def _params(func) -> tuple[list[str], str]:
    """The parameters of ``func`` but ``self`` (a ``*`` before the first keyword-only one) and its return
    annotation, each written as in the source (``from __future__ import annotations`` keeps them strings)."""
    sig = inspect.signature(func)
    params, star = [], False
    for p in sig.parameters.values():
        if p.name in ("self", "cls"):
            continue
        if p.kind is p.KEYWORD_ONLY and not star:
            params.append("*")
        star = star or p.kind in (p.KEYWORD_ONLY, p.VAR_POSITIONAL)
        text = {p.VAR_POSITIONAL: "*", p.VAR_KEYWORD: "**"}.get(p.kind, "") + p.name
        if p.annotation is not p.empty:
            text += f": {p.annotation if isinstance(p.annotation, str) else inspect.formatannotation(p.annotation)}"
        if p.default is not p.empty:
            text += f"{' = ' if p.annotation is not p.empty else '='}{p.default!r}"
        params.append(text)
    ret = sig.return_annotation
    return params, "" if ret is sig.empty else f" -> {ret if isinstance(ret, str) else inspect.formatannotation(ret)}"


def _signature(func) -> str:
    """``name(args) -> ret`` on one line."""
    params, ret = _params(func)
    return f"{func.__name__}({', '.join(params)}){ret}"


def _long_signature(func, name: str | None = None) -> str:
    """A ``def`` (or, with ``name``, a ``class``) with one parameter a line."""
    params, ret = _params(func)
    lines = "".join(f"    {p},\n" for p in params)
    return f"class {name}(\n{lines}):" if name else f"def {func.__name__}(\n{lines}){ret}"


def _indent(text: str, by: str = "  ") -> str:
    return "\n".join(by + line if line else line for line in text.splitlines())


def _class_members(cls) -> list[str]:
    """Bullets for the public attributes, properties and methods ``cls`` itself defines, in source order
    (a dataclass's fields are left to a table)."""
    lines = []
    notes = dict(cls.__dict__.get("__annotations__", {}))
    fields_elsewhere = dataclasses.is_dataclass(cls)
    for attr, annotation in notes.items():
        if fields_elsewhere:
            continue
        default = f" = {cls.__dict__[attr]!r}" if attr in cls.__dict__ else ""
        lines.append(f"- attribute `{attr}: {annotation}{default}`")
    abstract = getattr(cls, "__abstractmethods__", frozenset())
    for attr, value in cls.__dict__.items():
        if attr.startswith("_") or attr in notes:
            continue
        if isinstance(value, property):
            head, doc = f"property `{attr}`", inspect.getdoc(value)
        elif inspect.isfunction(value):
            kind = "abstract method" if attr in abstract else "method"
            head, doc = f"{kind} `{_signature(value)}`", inspect.getdoc(value)
        else:
            head, doc = f"attribute `{attr} = {value!r}`", None
        body = _markdown(doc)
        lines.append(f"- {head}" + (f"\n\n{_indent(body)}\n" if body else ""))
    return lines


def protocol_reference() -> str:
    """Markdown of the model contract: each class of vgzoo.protocols, register_model, ModelFamily, PretrainedCfg."""
    from vgzoo import _registry, protocols

    parts = ["*Generated from `vgzoo/protocols.py` and `vgzoo/_registry.py` by `python docs/generate.py`.*", ""]
    parts += [_markdown(inspect.getdoc(protocols)), ""]
    for name in protocols.__all__:
        cls = getattr(protocols, name)
        if not isinstance(cls, type):
            continue
        bases = ", ".join(("nn." if b.__module__.startswith("torch.nn") else "") + b.__name__ for b in cls.__bases__)
        parts += [f"### `{name}({bases})`" if bases else f"### `{name}`", "", _markdown(inspect.getdoc(cls)), ""]
        parts += [*_class_members(cls), ""]
    parts += ["### `register_model`", "", "```python", _long_signature(_registry.register_model), "```", ""]
    parts += [_markdown(inspect.getdoc(_registry.register_model)), ""]
    family = _registry.ModelFamily
    parts += ["### `ModelFamily`", "", "```python", _long_signature(family.__init__, "ModelFamily"), "```", ""]
    parts += [_markdown(inspect.getdoc(family)), "", *_class_members(family), ""]
    cfg = _registry.PretrainedCfg
    parts += ["### `PretrainedCfg`", "", _markdown(inspect.getdoc(cfg)), ""]
    parts += ["| field | type | default |", "| --- | --- | --- |"]
    required = set(getattr(_registry, "REQUIRED_CFG_FIELDS", ()))
    for f in dataclasses.fields(cfg):
        if f.default is not dataclasses.MISSING:
            default = f"`{f.default!r}`"
        elif f.default_factory is not dataclasses.MISSING:
            default = f"`{f.default_factory()!r}`"
        else:
            default = "required"
        default = "required" if f.name in required else default
        kind = str(f.type).replace("|", "\\|")  # a pipe inside a table cell, even in a code span, must be escaped
        parts.append(f"| `{f.name}` | `{kind}` | {default} |")
    parts += ["", *_class_members(cfg)]
    from vgzoo.tasks import TASK_NAMES

    parts += ["", "Tasks `register_model` accepts: " + ", ".join(f"`{t}`" for t in TASK_NAMES) + "."]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(parts)).rstrip() + "\n"


def template_example() -> str:
    """The scaffold's model module as ``vgzoo plugins new vgzoo-my-gan`` writes it, as a Markdown code block."""
    from vgzoo.scaffold import PLACEHOLDERS, _render

    identifiers = dict(zip(PLACEHOLDERS, ("my_gan", "MyGanModel", "vgzoo_my_gan"), strict=True))
    return "```python\n" + _render("model.py", {}, identifiers).rstrip() + "\n```"


PLUGIN_BLOCKS = {
    "protocol": protocol_reference,
    "template": template_example,
}
PLUGIN_BLOCK = re.compile(r"(<!-- BEGIN generated:(\w+) -->\n).*?(<!-- END generated:\2 -->)", re.S)


def fill_plugins_page() -> dict[Path, str]:
    """docs/plugins.md with its generated blocks (the protocol reference, the worked example) filled in."""
    page = DOCS / "plugins.md"
    text = PLUGIN_BLOCK.sub(lambda m: f"{m.group(1)}{PLUGIN_BLOCKS[m.group(2)]().rstrip()}\n{m.group(3)}",
                            page.read_text())
    return {page: text}


CONSOLE = re.compile(r"(<!-- generated:console -->\n```console\n)(.*?)(^```)", re.S | re.M)


def _commands(block: str) -> list[str]:
    """The ``$ ...`` commands of a console block (backslash continuations joined)."""
    cmds, lines = [], block.splitlines()
    i = 0
    while i < len(lines):
        if lines[i].startswith("$ "):
            cmd = lines[i][2:]
            while cmd.endswith("\\") and i + 1 < len(lines):
                i += 1
                cmd += "\n" + lines[i]
            cmds.append(cmd)
        i += 1
    return cmds


def run_console(block: str) -> str:
    """Run a console block's commands in order, in a fresh folder with VGZOO_DOCS_TINY=1, and return the block
    with the real outputs (stdout and stderr, as a terminal shows them; ``echo $?`` sees the previous status)."""
    import os
    import subprocess
    import tempfile

    cmds = _commands(block)
    mark = "@@vgzoo-docs-output@@"
    script = "".join(f"{c}\n__rc=$?; echo '{mark}'; (exit $__rc)\n" if c != "echo $?" else f"{c}\necho '{mark}'\n"
                     for c in cmds)
    env = {k: v for k, v in os.environ.items() if k not in ("VGZOO_OFFLINE",)}
    # the same outputs on every machine: CPU and fp32 (`auto` would pick bf16 only where the CPU has bf16 units)
    env.update(VGZOO_DOCS_TINY="1", HF_HUB_OFFLINE="1", COLUMNS="100", MPLBACKEND="Agg", VGZOO_DEVICE="cpu",
               VGZOO_PRECISION="fp32",
               PATH=os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", ""))
    with tempfile.TemporaryDirectory() as where:
        proc = subprocess.run(["bash", "-c", script], cwd=where, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, timeout=600)
    outputs = proc.stdout.split(mark + "\n")
    parts = []
    for cmd, out in zip(cmds, outputs, strict=False):
        parts.append("$ " + cmd + "\n" + out)
    return "".join(parts)


def fill_console_blocks(texts: dict[Path, str]) -> dict[Path, str]:
    """Every console block marked ``<!-- generated:console -->`` with the output of a real run (``texts``: pages
    already regenerated otherwise)."""
    pages = {}
    for page in [DOCS.parent / "README.md", *sorted(DOCS.glob("*.md")), *sorted(DOCS.glob("models/*.md"))]:
        text = texts.get(page) or page.read_text()
        if "<!-- generated:console -->" in text:
            pages[page] = CONSOLE.sub(lambda m: m.group(1) + run_console(m.group(2)) + m.group(3), text)
    return pages


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if a generated file is stale")
    args = parser.parse_args()
    stale = []
    rows = _builtin_rows()
    outputs = {
        DOCS / "cli.md": cli_reference(),
        DOCS / "models-table.md": model_tables(rows),
        **fill_family_pages(rows),
        **fill_data_page(),
        **fill_pretrained_page(),
        **fill_train_page(),
        **fill_plugins_page(),
    }
    outputs.update(fill_console_blocks(outputs))
    for path, text in outputs.items():
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(path.name)
        else:
            path.write_text(text)
            print(f"wrote {path}")
    if stale:
        print(f"stale: {', '.join(stale)}; run `python docs/generate.py`", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
