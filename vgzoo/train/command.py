"""``vgzoo train``: the command's logic (vgzoo/cli.py only declares it from :mod:`vgzoo.train.options`)."""

from __future__ import annotations

import os
import signal
from typing import Any

import click

from . import distributed
from .options import RUN_OPTIONS, cli_argv, parse_key_values


def _key_values(pairs, what: str) -> dict[str, Any]:
    try:
        return parse_key_values(pairs or (), what)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc


def train_command(model: str, values: dict[str, Any]) -> int:
    """Run ``vgzoo train MODEL`` with the parsed run options; the exit code (128 + signal when interrupted)."""
    if values.get("epochs") is not None and values.get("steps") is not None:
        raise click.UsageError("give --epochs or --steps, not both")
    out = values.get("out") or os.path.join("runs", model)
    from .._docs import tiny_train_length

    # VGZOO_DOCS_TINY=1: the docs' commands as cheap tests
    values["steps"], values["epochs"] = tiny_train_length(values.get("steps"), values.get("epochs"))
    nproc = int(values.get("nproc") or 1)
    if nproc > 1:
        code = distributed.launch_torchrun(nproc, ["train", model, *cli_argv({**values, "out": out})])
        if code:
            raise click.ClickException(f"torchrun with {nproc} processes exited with code {code}")
        return 0
    from .engine import fit

    kw = {o.name: values.get(o.name) for o in RUN_OPTIONS if o.flag and o.name != "nproc"}  # nproc: handled above
    kw.update(out=out, resume=bool(values.get("resume")), overwrite=bool(values.get("overwrite")),
              model_kwargs=_key_values(values.get("model_kwargs"), "-k") or None,
              options=_key_values(values.get("options"), "-o"), progress=values.get("progress", True))
    result = fit(model, **kw)
    if int(os.environ.get("RANK", "0") or 0) != 0:  # under torchrun rank 0 alone reports
        return 0
    if result.interrupted:
        click.echo(f"interrupted by {result.interrupted} at step {result.step}; checkpoint {result.checkpoint}; "
                   f"continue with: vgzoo train {model} --resume --out {out}")
        return 128 + int(getattr(signal, result.interrupted, signal.SIGTERM))
    shown = ", ".join(f"{k} {v:.4g}" for k, v in result.metrics.items())
    click.echo(f"trained {model} for {result.step} steps -> {result.run_dir} (health: {result.health})"
               + (f"; {shown}" if shown else ""))
    return 0
