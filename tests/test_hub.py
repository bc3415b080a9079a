"""Weights: save/load round trips, strict loading, bad files, pickles, pretrained sources, the Hub cache."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

import vgzoo
from vgzoo import _hub

TESTS = Path(__file__).parent


def _outputs(model, x):
    with torch.no_grad():
        return model.eval()(x)


def test_save_pretrained_round_trip(tiny_model_name, tmp_path):
    model = vgzoo.create(tiny_model_name, num_classes=3, width=6)
    out = vgzoo.save_pretrained(model, tmp_path / "saved")
    config = json.loads((out / "config.json").read_text())
    assert config["architecture"] == tiny_model_name
    assert config["config"] == {"in_chans": 3, "num_classes": 3, "width": 6}
    assert config["vgzoo_version"] == vgzoo.__version__
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary files left behind
    loaded = vgzoo.create(f"local-dir:{out}")
    x = torch.randn(2, 3, 8, 8)
    assert torch.equal(_outputs(model, x), _outputs(loaded, x))
    assert loaded.pretrained_cfg["weight_source"] == f"local-dir:{out}"


def test_checkpoint_path_safetensors_and_strict_errors(tiny_model_name, tmp_path):
    model = vgzoo.create(tiny_model_name)
    path = tmp_path / "w.safetensors"
    _hub.save_state_dict(model.state_dict(), path)
    again = vgzoo.create(tiny_model_name, checkpoint_path=path)
    x = torch.randn(1, 3, 8, 8)
    assert torch.equal(_outputs(model, x), _outputs(again, x))

    state = dict(model.state_dict())
    state.pop("stem.bias")
    state["extra.weight"] = torch.zeros(1)
    save_file(state, tmp_path / "bad.safetensors")
    with pytest.raises(vgzoo.WeightsError) as info:
        vgzoo.create(tiny_model_name, checkpoint_path=tmp_path / "bad.safetensors")
    assert "missing keys: stem.bias" in str(info.value) and "unexpected keys: extra.weight" in str(info.value)

    state = dict(model.state_dict())
    state["stem.weight"] = torch.zeros(4, 3, 5, 5)
    save_file(state, tmp_path / "shape.safetensors")
    with pytest.raises(vgzoo.WeightsError, match=r"stem.weight: checkpoint \(4, 3, 5, 5\) vs model \(4, 3, 3, 3\)"):
        vgzoo.create(tiny_model_name, checkpoint_path=tmp_path / "shape.safetensors")


def test_other_num_classes_reinitialises_head_and_other_in_chans_adapts_stem(tiny_model_name, tmp_path):
    model = vgzoo.create(tiny_model_name)
    path = _hub.save_state_dict(model.state_dict(), tmp_path / "w.safetensors")
    with pytest.warns(UserWarning, match="classifier is re-initialised"):
        other = vgzoo.create(tiny_model_name, checkpoint_path=path, num_classes=9)
    assert other.head.weight.shape == (9, 4)
    assert torch.equal(other.stem.weight, model.stem.weight)
    with pytest.warns(UserWarning, match="first conv is adapted"):
        gray = vgzoo.create(tiny_model_name, checkpoint_path=path, in_chans=1)
    assert torch.allclose(gray.stem.weight, model.stem.weight.sum(1, keepdim=True))


def test_corrupt_truncated_and_missing_files(tiny_model_name, tmp_path):
    model = vgzoo.create(tiny_model_name)
    good = _hub.save_state_dict(model.state_dict(), tmp_path / "good.safetensors")
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(good.read_bytes()[:-40])
    corrupt = tmp_path / "corrupt.safetensors"
    corrupt.write_bytes(b"\x07" * 64)
    for path in (truncated, corrupt):
        with pytest.raises(vgzoo.WeightsError, match="truncated, corrupt"):
            vgzoo.create(tiny_model_name, checkpoint_path=path)
    with pytest.raises(vgzoo.WeightsNotFoundError) as info:
        vgzoo.create(tiny_model_name, checkpoint_path=tmp_path / "nope.safetensors")
    assert isinstance(info.value, FileNotFoundError)
    with pytest.raises(vgzoo.WeightsNotFoundError, match="not a folder"):
        vgzoo.create(f"local-dir:{tmp_path / 'nowhere'}")


def test_saved_folder_with_broken_config(tiny_model_name, tmp_path):
    model = vgzoo.create(tiny_model_name)
    vgzoo.save_pretrained(model, tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**config, "architecture": "tiny_core_nett"}))
    with pytest.raises(vgzoo.WeightsError, match="'tiny_core_nett', which is not installed"):
        vgzoo.create(f"local-dir:{tmp_path}")
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(vgzoo.WeightsError, match="not valid JSON"):
        vgzoo.create(f"local-dir:{tmp_path}")
    (tmp_path / "config.json").unlink()
    with pytest.raises(vgzoo.WeightsNotFoundError, match="config.json"):
        vgzoo.create(f"local-dir:{tmp_path}")


def test_pickle_refused_without_opt_in_and_read_weights_only_with_it(tiny_model_name, tmp_path):
    model = vgzoo.create(tiny_model_name)
    path = tmp_path / "w.pth"
    torch.save({"state_dict": model.state_dict()}, path)
    with pytest.raises(vgzoo.WeightsError, match="allow_pickle=True"):
        vgzoo.create(tiny_model_name, checkpoint_path=path)
    loaded = vgzoo.create(tiny_model_name, checkpoint_path=path, allow_pickle=True)
    assert torch.equal(loaded.head.weight, model.head.weight)

    evil = tmp_path / "whole_module.pth"  # a pickled object graph: weights_only=True must refuse to rebuild it
    torch.save(model, evil)
    with pytest.raises(vgzoo.WeightsError, match="weights_only=True"):
        vgzoo.create(tiny_model_name, checkpoint_path=evil, allow_pickle=True)


def test_failed_save_keeps_the_previous_file(tiny_model_name, tmp_path, monkeypatch):
    model = vgzoo.create(tiny_model_name)
    vgzoo.save_pretrained(model, tmp_path)
    before = (tmp_path / "model.safetensors").read_bytes()

    import safetensors.torch

    def crash(tensors, filename, metadata=None):
        Path(filename).write_bytes(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(safetensors.torch, "save_file", crash)
    with torch.no_grad():
        model.head.weight.add_(1.0)
    with pytest.raises(OSError, match="disk full"):
        vgzoo.save_pretrained(model, tmp_path)
    assert (tmp_path / "model.safetensors").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["README.md", "config.json", "model.safetensors"]


def test_save_pretrained_refuses_a_model_vgzoo_did_not_build(tmp_path):
    with pytest.raises(vgzoo.WeightsError, match="not built by vgzoo.create"):
        vgzoo.save_pretrained(torch.nn.Linear(2, 2), tmp_path)


def test_pretrained_without_published_weights_is_an_error(tiny_model_name):
    with pytest.raises(vgzoo.WeightsNotFoundError, match="no published weights"):
        vgzoo.create(tiny_model_name, pretrained=True)


def test_pretrained_from_a_file_source(tmp_path):
    import _tiny

    model = _tiny.TinyNet()
    path = _hub.save_state_dict(model.state_dict(), tmp_path / "published.safetensors")
    _tiny.register({"file": str(path)})
    try:
        loaded = vgzoo.create(_tiny.NAME, pretrained=True)
        assert torch.equal(loaded.head.weight, model.head.weight)
        assert loaded.pretrained_cfg["weight_source"] == f"file:{path}"
    finally:
        _tiny.unregister()


def test_resource_inside_a_package_resolves():
    path = _hub.resolve_file_source("vgzoo:_hub.py")
    assert path.is_file() and path.name == "_hub.py"


def _prepare_hub_cache(cache: Path, repo_id: str, files: dict[str, bytes], commit: str) -> None:
    """Lay out files the way huggingface_hub's cache stores a downloaded snapshot."""
    repo_dir = cache / ("models--" + repo_id.replace("/", "--"))
    snapshot = repo_dir / "snapshots" / commit
    snapshot.mkdir(parents=True)
    for name, data in files.items():
        (snapshot / name).write_bytes(data)
    (repo_dir / "refs").mkdir()
    (repo_dir / "refs" / "main").write_text(commit)


def test_hf_hub_load_from_prepared_offline_cache(tiny_model_name, tmp_path):
    model = vgzoo.create(tiny_model_name, num_classes=4)
    saved = vgzoo.save_pretrained(model, tmp_path / "saved")
    commit = "0123456789abcdef0123456789abcdef01234567"
    files = {n: (saved / n).read_bytes() for n in ("config.json", "model.safetensors")}
    _prepare_hub_cache(tmp_path / "cache", "someorg/tiny", files, commit)
    torch.manual_seed(1)
    x = torch.randn(2, 3, 8, 8)
    torch.save(x, tmp_path / "x.pt")
    expected = _outputs(model, x)
    script = textwrap.dedent(
        f"""
        import sys, torch
        sys.path.insert(0, {str(TESTS)!r})
        import _tiny, vgzoo
        _tiny.register()
        x = torch.load({str(tmp_path / "x.pt")!r}, weights_only=True)
        for name in ("hf-hub:someorg/tiny", "hf-hub:someorg/tiny@{commit}"):
            m = vgzoo.create(name).eval()
            assert m.pretrained_cfg["num_classes"] == 4
            with torch.no_grad():
                torch.save(m(x), {str(tmp_path / "y.pt")!r})
        try:
            vgzoo.create("hf-hub:someorg/absent")
        except vgzoo.WeightsNotFoundError as exc:
            print("MISSING-OK", exc)
        """
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(tmp_path / "cache")}
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "MISSING-OK" in proc.stdout and "HF_HUB_OFFLINE" in proc.stdout
    assert torch.equal(torch.load(tmp_path / "y.pt", weights_only=True), expected)


def test_hub_id_must_be_org_slash_repo():
    with pytest.raises(vgzoo.WeightsError, match="org/repo"):
        vgzoo.create("hf-hub:just-a-name")


# ------------------------------------------------------------------ one resolver for "a name or a saved folder"
def test_load_model_resolves_names_folders_and_bad_paths(tiny_model_name, tmp_path):
    from vgzoo._factory import load_model, resolve_source

    model = vgzoo.create(tiny_model_name)
    saved = vgzoo.save_pretrained(model, tmp_path / "saved")
    assert resolve_source(saved) == f"local-dir:{saved}"
    assert resolve_source(tiny_model_name) == tiny_model_name
    loaded = load_model(saved)  # a folder carries its weights: no warning
    x = torch.randn(1, 3, 8, 8)
    assert torch.equal(_outputs(model, x), _outputs(loaded, x))
    assert load_model(model) is model
    # a path that does not exist is reported as a missing folder, not as an unknown model name
    with pytest.raises(vgzoo.WeightsNotFoundError, match="is not a folder"):
        load_model(tmp_path / "nothere")
    with pytest.raises(vgzoo.WeightsNotFoundError, match="is not a folder"):
        load_model("./nothere")


def test_load_model_warns_about_random_weights_and_checks_the_capability(tiny_model_name):
    from vgzoo._factory import load_model
    from vgzoo.protocols import Translator

    with pytest.warns(UserWarning, match="random weights"):
        load_model(tiny_model_name)
    with pytest.raises(ValueError, match="is a classification model; this needs a model of task paired_translation"):
        load_model(tiny_model_name, needs=Translator)


def test_checkpoint_path_with_a_saved_model_is_refused_not_ignored(tiny_model_name, tmp_path):
    saved = vgzoo.save_pretrained(vgzoo.create(tiny_model_name), tmp_path / "saved")
    other = tmp_path / "other.safetensors"
    _hub.save_state_dict(vgzoo.create(tiny_model_name).state_dict(), other)
    with pytest.raises(ValueError, match="would be ignored"):
        vgzoo.create(f"local-dir:{saved}", checkpoint_path=other)


def test_a_folder_written_by_vgzoo_0_1_says_how_to_rebuild_it(tiny_model_name, tmp_path):
    model = vgzoo.create(tiny_model_name, num_classes=3)
    out = vgzoo.save_pretrained(model, tmp_path / "old")
    config = json.loads((out / "config.json").read_text())
    old = {"architecture": config["architecture"], "model_kwargs": {"num_classes": 3}}
    (out / "config.json").write_text(json.dumps(old))
    with pytest.raises(vgzoo.WeightsError, match="vgzoo 0.1") as info:
        vgzoo.create(f"local-dir:{out}")
    assert "checkpoint_path=" in str(info.value) and "num_classes" in str(info.value)


def test_unreachable_endpoint_fails_fast_with_the_offline_hint(tmp_path):
    """No network: one probe of the endpoint, then the cache alone, instead of ~25 s of retries."""
    import socket
    import time

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items()
           if k not in ("HF_HUB_OFFLINE", "VGZOO_OFFLINE") and "proxy" not in k.lower()}
    env.update(HF_ENDPOINT=f"http://127.0.0.1:{port}", HF_HUB_CACHE=str(tmp_path / "hf"), HF_HUB_DISABLE_TELEMETRY="1")
    code = ("import vgzoo\ntry:\n    vgzoo.create('hf-hub:org/repo')\n"
            "except Exception as e:\n    print(type(e).__name__, e)\n")
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    elapsed = time.monotonic() - start
    assert proc.stdout.startswith("WeightsNotFoundError"), proc.stdout + proc.stderr
    assert f"the Hub endpoint http://127.0.0.1:{port} is unreachable" in proc.stdout
    assert "unset HF_HUB_OFFLINE" in proc.stdout and "HF_HUB_CACHE" in proc.stdout
    assert "Retrying" not in proc.stderr
    assert elapsed < 15, f"took {elapsed:.1f} s; the probe should fail within a second or two (plus start-up)"


def test_unreachable_endpoint_still_reads_the_cache(tmp_path, monkeypatch):
    """The probe only skips the network: a cached file still loads."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    calls = []

    def fake_download(**kwargs):
        calls.append(kwargs["local_files_only"])
        return str(tmp_path / "config.json")

    monkeypatch.setattr("huggingface_hub.hf_hub_download", fake_download)
    monkeypatch.setattr(_hub, "_REACHABLE", {})
    assert _hub.hf_hub_file("org/repo", "config.json") == tmp_path / "config.json"
    assert calls == [True]
    assert "unreachable" in _hub._REACHABLE[("127.0.0.1", port)]


def test_load_model_asks_the_capability_not_the_task_name():
    """A translator of a plugin's own task is a translator: translate and eval ask the class, not the task string."""
    import vgzoo
    from vgzoo._factory import load_model
    from vgzoo.protocols import Translator
    from vgzoo.translate import load_translator

    model = vgzoo.create("pix2pix_unet", **vgzoo.model_info("pix2pix_unet").test_kwargs)
    model.pretrained_cfg["task"] = "my_plugin_translation"
    assert load_model(model, needs=Translator) is model
    assert load_translator(model) is model.inference_generator("AtoB")
