"""Regenerate the generated parts of docs/: the CLI reference and the model tables.

Run: python docs/generate.py          (rewrites docs/cli.md and docs/models-table.md)
     python docs/generate.py --check  (exit 1 if either file is stale; tests/test_docs.py runs this)

The CLI reference comes from the click commands themselves and the model tables from the registry
(parameter counts of each model at its default configuration), so neither can drift from the code.
"""

from __future__ import annotations

import argparse
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


def model_tables() -> str:
    """Markdown table of every built-in model: family, task, parameters at its default configuration."""
    import vgzoo

    rows = ["| model | family | task | parameters | input size | paper |", "| --- | --- | --- | --- | --- | --- |"]
    for name in vgzoo.list_models():
        info = vgzoo.model_info(name)
        if info.distribution != "vgzoo":
            continue
        model = vgzoo.create(name)
        params = sum(p.numel() for p in model.parameters())
        size = "x".join(str(s) for s in model.pretrained_cfg["input_size"])
        rows.append(f"| `{name}` | {info.family} | {info.task} | {params:,} | {size} | {info.paper} |")
    return "# Model table\n\nGenerated from the registry by `python docs/generate.py`.\n\n" + "\n".join(rows) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if a generated file is stale")
    args = parser.parse_args()
    stale = []
    for path, text in ((DOCS / "cli.md", cli_reference()), (DOCS / "models-table.md", model_tables())):
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
