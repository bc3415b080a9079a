"""Regenerate the generated parts of docs/: the CLI reference and the model tables.

Run: python docs/generate.py          (rewrites docs/cli.md, docs/models-table.md, the tables in docs/models/ and
                                       the dataset table in docs/data.md)
     python docs/generate.py --check  (exit 1 if either file is stale; tests/test_docs.py runs this)

The CLI reference comes from the click commands themselves, the model tables from the registry
(parameter counts of each model at its default configuration) and the dataset table from the registry of
reference datasets, so none can drift from the code.
"""

from __future__ import annotations

import argparse
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

    lines = ["| name.tag | what | source | licence | dataset (direction) | input | parameters |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for full in vgzoo.list_pretrained():
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
        lines.append(f"| `{full}` | {what} | {source_of(cfg)} | {cfg.license or 'not stated'} | {data} | {size} "
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
    env.update(VGZOO_DOCS_TINY="1", HF_HUB_OFFLINE="1", COLUMNS="100", MPLBACKEND="Agg",
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
