"""Typed run options generated from the one option table, the callbacks' read-only view of a run, the shared thread
rule, and run folders written before the options were typed (vgzoo 0.2's format) resuming unchanged."""

from __future__ import annotations

import ast
import dataclasses
import inspect
import json
from pathlib import Path

import pytest
import torch
from test_train import Blobs, TinyCGAN, rows, state_equal

from vgzoo.train import fit
from vgzoo.train.callbacks import Callback
from vgzoo.train.options import (
    ENGINE_OPTIONS,
    FIT_KEYS,
    RUN_OPTIONS,
    SETTINGS,
    EngineOptions,
    RunOptions,
)

QUIET = {"progress": False, "log": lambda message: None}

# What main's code (before the options were typed) wrote for the run of _tiny(out, 2): config.json without its
# "recipe", "recipe_options" and "torch" keys, which is also the "config" of each checkpoint's trainer_state.json.
CONFIG_0_2 = {
    "steps": 2, "batch_size": 8, "seed": 3,
    "options": {"threads": 1, "save_every": 1, "monitor": {"history": 500}},
    "amp": "off", "compile": False, "model_kwargs": {}, "out": "OUT", "device": "cpu", "model": "tiny_cgan",
    "task": "conditional_generation", "data": "Blobs", "lr": 0.0002, "total_steps": 2, "steps_per_epoch": 5,
    "world_size": 1,
}


def _tiny(out, steps, **kw):
    torch.manual_seed(0)  # the model's initialisation
    return fit(TinyCGAN(), Blobs(40), out, steps=steps, batch_size=8, seed=3,
               options={"threads": 1, "save_every": 1, "monitor": {"history": 500}}, **QUIET, **kw)


def test_the_run_options_are_one_frozen_dataclass_generated_from_the_table():
    fields = {f.name: f for f in dataclasses.fields(RunOptions) if f.init}
    assert tuple(fields) == FIT_KEYS  # the kept rows of RUN_OPTIONS, in order
    for option in RUN_OPTIONS:
        if option.name in fields:
            assert fields[option.name].metadata["option"] is option  # type and help come from the row
    assert [f.name for f in dataclasses.fields(EngineOptions)] == [o.name for o in ENGINE_OPTIONS]
    assert EngineOptions() == EngineOptions(**{o.name: o.default for o in ENGINE_OPTIONS})
    # fit() keeps its keywords: every run option but nproc, the settings defaulting to "not given"
    params = inspect.signature(fit).parameters
    assert {o.name for o in RUN_OPTIONS} - {"nproc"} <= set(params)
    assert all(params[name].default is None for name in SETTINGS)
    assert all(o.help in " ".join(fit.__doc__.split()) for o in RUN_OPTIONS if o.name != "nproc")

    opts = RunOptions(model="m", steps=3, lr=1, options={"save_every": 2, "monitor": {"history": 9}, "beta1": 0.9})
    assert opts.lr == 1.0 and isinstance(opts.lr, float)  # an int where a float is expected becomes a float
    assert opts.engine.save_every == 2 and opts.engine.keep_last == 3 and opts.engine.monitor["history"] == 9
    with pytest.raises(dataclasses.FrozenInstanceError):
        opts.steps = 4
    with pytest.raises(TypeError):
        opts.options["save_every"] = 5  # the dict options are read-only mappings
    with pytest.raises(TypeError):
        opts.engine.monitor["history"] = 5
    assert opts.with_options(ema=True).engine.ema is True and opts.engine.ema is False
    # JSON again, as a run folder keeps it: unset epochs/val_data left out, the recipe's own options kept as given
    assert opts.to_config() == {"model": "m", "data": None, "out": None, "task": None, "steps": 3, "batch_size": None,
                                "lr": 1.0, "device": None, "amp": None, "compile": False, "seed": 0,
                                "model_kwargs": {},
                                "options": {"save_every": 2, "monitor": {"history": 9}, "beta1": 0.9}}
    assert RunOptions.from_config({**opts.to_config(), "total_steps": 3, "recipe": "X"}) == opts


@pytest.mark.parametrize("given, message", [
    ({"seed": "three"}, r"seed='three': expected int .*e\.g\. --seed 0"),
    ({"lr": "fast"}, r"lr='fast': expected float"),
    ({"compile": 1}, r"compile=1: expected bool"),
])
def test_a_run_option_of_the_wrong_type_is_refused_when_the_options_are_built(given, message):
    with pytest.raises(ValueError, match=message):
        RunOptions(**given)


def test_an_engine_value_of_another_type_is_left_to_the_recipe_which_may_own_the_name():
    from vgzoo.train.options import check_options
    from vgzoo.train.recipes import CLIP_GRAD, Option

    opts = RunOptions(options={"augment": "ada", "save_every": "often", "keep_last": 5})
    assert opts.engine.augment == {} and opts.engine.save_every == 0 and opts.engine.keep_last == 5
    assert opts.options["augment"] == "ada"  # kept as given, for the recipe
    owned = (Option("augment", "ada", "str", "the recipe's augmentation mode"), CLIP_GRAD)
    assert check_options({"augment": "ada"}, owned, "Owner") == {"augment": "ada"}
    with pytest.raises(ValueError, match=r"augment='ada': expected dict"):
        check_options({"augment": "ada"}, (CLIP_GRAD,), "Other")  # a recipe that does not own the name refuses it
    with pytest.raises(ValueError, match=r"save_every='often': expected int .*e\.g\. -o save_every=0"):
        check_options(opts.options, owned, "Owner")


def test_callbacks_read_a_typed_read_only_view_of_the_run(tmp_path):
    seen = {}

    class Reader(Callback):
        def on_start(self, run, st):
            seen.update(save_every=run.options.engine.save_every, model=run.options.model, lr=run.options.lr,
                        device=run.device.type, run_dir=run.run_dir, is_model=run.model is st.model,
                        config=dict(run.config))
            for name in ("options", "run_dir", "new_attribute"):
                with pytest.raises(AttributeError, match="read-only view"):
                    setattr(run, name, None)
            with pytest.raises(AttributeError, match="read-only view"):
                del run.options
            with pytest.raises(TypeError):
                run.config["steps"] = 5

        def on_log(self, run, st, row):
            seen.setdefault("rows", []).append(row["step"])

    result = _tiny(tmp_path / "run", 2, callbacks=[Reader()])
    assert seen["save_every"] == 1 and seen["model"] == "tiny_cgan" and seen["lr"] == 0.0002
    assert seen["device"] == "cpu" and seen["run_dir"] == tmp_path / "run" and seen["is_model"]
    assert seen["rows"] == [1, 2] and result.step == 2
    # what the view calls config is what the checkpoints record
    state = json.loads((result.checkpoint / "trainer_state.json").read_text())
    assert state["config"] == seen["config"]


def test_a_run_folder_keeps_the_0_2_format_and_one_written_in_it_resumes(tmp_path):
    whole = _tiny(tmp_path / "whole", 4)
    first = _tiny(tmp_path / "split", 2)
    folder = tmp_path / "split"
    written = json.loads((folder / "config.json").read_text())
    assert {k: v for k, v in written.items() if k not in ("recipe", "recipe_options", "torch")} == {
        **CONFIG_0_2, "out": str(folder)}
    # the run folder as main's code left it: its config in every checkpoint and in config.json, key order included
    old = {**CONFIG_0_2, "out": str(folder)}
    for state_file in (folder / "checkpoints").glob("step_*/trainer_state.json"):
        state = json.loads(state_file.read_text())
        state_file.write_text(json.dumps({**state, "config": old}))
    (folder / "config.json").write_text(json.dumps({**old, **{k: written[k] for k in ("recipe", "recipe_options",
                                                                                       "torch")}}, indent=2))
    assert first.step == 2
    resumed = fit(TinyCGAN(), Blobs(40), folder, steps=4, resume=True, **QUIET)
    assert resumed.step == 4 and state_equal(whole.model, resumed.model)
    assert rows(tmp_path / "whole") == rows(folder)


def test_the_engine_and_the_callbacks_do_not_import_each_other():
    import vgzoo.train.callbacks as callbacks
    import vgzoo.train.engine as engine

    def imported(module) -> set[str]:
        tree = ast.parse(Path(module.__file__).read_text(encoding="utf-8"))
        return {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}

    assert "engine" not in imported(callbacks) and "view" in imported(callbacks)
    assert "view" in imported(engine)


def test_training_and_the_benchmarks_share_the_load_rule(monkeypatch):
    from vgzoo.bench import timing
    from vgzoo.train import policy
    from vgzoo.train.distributed import DistInfo

    monkeypatch.setattr(policy, "load_average", lambda: 3.0)
    assert policy.threads_for_load(8, "free") == 5 and policy.threads_for_load(2, "free") == 1
    assert policy.threads_for_load(8, "one_when_busy") is None and policy.threads_for_load(4, "one_when_busy") == 1
    assert policy.threads_for_load(8, "free", load=7.5) == 1
    with pytest.raises(ValueError, match="expected 'free' or 'one_when_busy'"):
        policy.threads_for_load(8, "half")
    monkeypatch.setattr(timing.os, "cpu_count", lambda: 4)
    monkeypatch.setattr(timing, "threads_for_load", lambda cores, rule: ("shared", cores, rule))
    assert timing.resolve_threads("auto") == ("shared", 4, "one_when_busy")  # bench asks the policy's rule
    monkeypatch.setattr(policy, "threads_for_load", lambda cores, rule, load: 1)
    assert policy.resolve_threads("auto", torch.device("cpu"), DistInfo())[0] == 1


@pytest.mark.parametrize("name", ["save_every", "save_epochs", "ema_start", "eval_every"])
def test_a_negative_count_of_steps_or_epochs_is_refused(tmp_path, name):
    from vgzoo.train import fit
    from vgzoo.train.options import check_options

    with pytest.raises(ValueError, match=rf"{name}=-3: expected 0 or more"):
        check_options({name: -3}, (), "Recipe")
    with pytest.raises(ValueError, match=rf"{name}=-3: expected 0 or more"):
        fit("cgan_embed_digits", "builtin:digits", tmp_path / "run", steps=1, progress=False, options={name: -3},
            log=lambda message: None)
    assert not (tmp_path / "run" / "checkpoints").exists()
