"""vgzoo push / push_to_hub against a loopback stand-in for the Hub (tests/_hub_server.py), then hf-hub: loads.

huggingface_hub reads HF_ENDPOINT and HF_HUB_OFFLINE when it is imported, so the clients run in subprocesses
with the stand-in's address, exactly as a user's shell would set them.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
import yaml
from _hub_server import HubStandIn

import vgzoo
from vgzoo.share.push import PushError, resolve_model_dir

TOKEN = "hf_standin_0123456789secret"


def _env(hub: HubStandIn, tmp_path, token: str | None = TOKEN, xet: bool = False) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGINGFACE_"))}
    env.update(HF_ENDPOINT=hub.url, HF_HUB_OFFLINE="0", HF_HOME=str(tmp_path / "hf-home"),
               HF_HUB_DISABLE_TELEMETRY="1", HF_HUB_DISABLE_PROGRESS_BARS="1", NO_PROXY="127.0.0.1,localhost")
    if not xet:
        env["HF_HUB_DISABLE_XET"] = "1"  # the LFS batch protocol; with hf_xet on, binaries would go to a Xet CAS
    if token:
        env["HF_TOKEN"] = token
    return env


def _run(args: list[str], env: dict, cwd) -> subprocess.CompletedProcess:
    return subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True, timeout=240)


@pytest.fixture(scope="module")
def digits_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("push") / "digits"
    vgzoo.save_pretrained(vgzoo.create("cgan_embed_digits", pretrained=True), folder)
    return folder


def test_push_round_trip_rebuilds_the_model_bitwise(tmp_path, digits_folder):
    with HubStandIn(token=TOKEN) as hub:
        env = _env(hub, tmp_path)
        pushed = _run([sys.executable, "-m", "vgzoo", "push", str(digits_folder), "org/digits"], env, tmp_path)
        assert pushed.returncode == 0, pushed.stderr
        assert "pushed" in pushed.stdout and "hf-hub:org/digits" in pushed.stdout
        assert TOKEN not in pushed.stdout + pushed.stderr  # never printed
        files = hub.files("org/digits")
        assert {"model.safetensors", "config.json", "README.md"} <= set(files)
        assert files["model.safetensors"] == (digits_folder / "model.safetensors").read_bytes()
        assert "org/digits" in hub.repos and not hub.repos["org/digits"].private
        assert "model.safetensors" in hub.repos["org/digits"].lfs  # went through the LFS batch API + PUT
        writes = [(m, p, ok) for m, p, ok in hub.requests if m in ("POST", "PUT") and p != "/api/validate-yaml"]
        assert all(ok for m, p, ok in writes if not p.startswith("/_lfs/")), "every write carried the token"
        paths = [p for _, p, _ in hub.requests]
        assert "/api/repos/create" in paths and "/api/models/org/digits/commit/main" in paths
        card = files["README.md"].decode()
        meta = yaml.safe_load(card.split("---\n")[1])
        assert meta["library_name"] == "vgzoo" and "cgan" in meta["tags"]
        assert 'vgzoo.create("hf-hub:org/digits")' in card  # the pushed card names its repository

        check = textwrap.dedent(f"""
            import torch, vgzoo
            hub = vgzoo.create("hf-hub:org/digits")
            local = vgzoo.create("local-dir:{digits_folder}")
            a, b = local.state_dict(), hub.state_dict()
            assert a.keys() == b.keys()
            assert all(torch.equal(a[k], b[k]) and a[k].dtype == b[k].dtype for k in a)
            assert hub.pretrained_cfg["weight_source"] == "hf-hub:org/digits"
            print("bitwise", len(a))
        """)
        loaded = _run([sys.executable, "-c", check], env, tmp_path)
        assert loaded.returncode == 0, loaded.stderr
        assert loaded.stdout.startswith("bitwise")
        assert ("GET", "/org/digits/resolve/main/model.safetensors", True) in hub.requests


def test_push_api_model_private_revision_default_transport(tmp_path):
    """push_to_hub(model) with huggingface_hub's default (Xet-capable) pipeline, a private repo and a branch."""
    with HubStandIn(token=TOKEN) as hub:
        hub.binary_suffixes = ()  # every file "regular": the Xet pipeline then commits them inline, as NDJSON
        script = textwrap.dedent("""
            import torch, vgzoo
            torch.manual_seed(0)
            model = vgzoo.create("cgan_embed", nz=8, ngf=8, ndf=8, img_size=16)
            r = vgzoo.push_to_hub(model, "hf-hub:me/tiny-cgan", private=True, revision="v1")
            print(r.revision, r.commit)
            again = vgzoo.create("hf-hub:me/tiny-cgan@v1")
            a, b = model.state_dict(), again.state_dict()
            assert all(torch.equal(a[k], b[k]) for k in a) and a.keys() == b.keys()
            r2 = vgzoo.push_to_hub(model, "me/tiny-cgan", private=True)  # again, to main: repo exists
            from huggingface_hub import HfApi
            info = HfApi().model_info("me/tiny-cgan", revision="v1")  # the stand-in's model info, as the Hub's
            assert info.sha == r.commit and "README.md" in [s.rfilename for s in info.siblings], info
            print(r2.revision)
        """)
        done = _run([sys.executable, "-c", script], _env(hub, tmp_path, xet=True), tmp_path)
        assert done.returncode == 0, done.stderr
        assert done.stdout.split()[0] == "v1" and done.stdout.split()[-1] == "main"
        repo = hub.repos["me/tiny-cgan"]
        assert repo.private and set(repo.branches) == {"main", "v1"}
        assert "model.safetensors" in hub.files("me/tiny-cgan", "v1")
        assert "model.safetensors" in hub.files("me/tiny-cgan")
        assert ("POST", "/api/models/me/tiny-cgan/branch/v1", True) in hub.requests


def test_push_refuses_a_folder_that_does_not_load(tmp_path, digits_folder):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_bytes((digits_folder / "config.json").read_bytes())
    (broken / "model.safetensors").write_bytes((digits_folder / "model.safetensors").read_bytes()[:1000])
    with pytest.raises(vgzoo.WeightsError, match="refusing to push"):
        vgzoo.push_to_hub(broken, "org/broken", token="unused")
    with pytest.raises(vgzoo.WeightsNotFoundError, match="holds no saved model"):
        vgzoo.push_to_hub(tmp_path, "org/nothing", token="unused")
    with pytest.raises(vgzoo.WeightsError, match="org/repo"):
        vgzoo.push_to_hub(digits_folder, "just-a-name", token="unused")


def test_push_without_a_token_says_how_to_get_one(tmp_path, digits_folder, monkeypatch):
    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "get_token", lambda: None)
    with pytest.raises(PushError, match="HF_TOKEN"):
        vgzoo.push_to_hub(digits_folder, "org/digits")


def test_cli_push_with_a_wrong_token_fails_cleanly(tmp_path, digits_folder, monkeypatch, capsys):
    """In process (cheaper than a subprocess): huggingface_hub's endpoint and offline flag are patched instead."""
    from huggingface_hub import constants

    from vgzoo.cli import main

    with HubStandIn(token=TOKEN) as hub:
        monkeypatch.setattr(constants, "ENDPOINT", hub.url)
        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
        monkeypatch.setenv("HF_TOKEN", "hf_wrong_token_abcdef")
        with pytest.raises(SystemExit) as exit_info:
            main(["push", str(digits_folder), "org/digits"])
    out = capsys.readouterr()
    assert exit_info.value.code == 1
    assert out.err.startswith("error: pushing") and "token is invalid" in out.err
    assert "Traceback" not in out.err and "hf_wrong_token_abcdef" not in out.out + out.err
    assert "org/digits" not in hub.repos
    assert hub.requests and not any(ok for m, p, ok in hub.requests if p == "/api/repos/create")


def test_a_run_folder_pushes_its_final_model(tmp_path, digits_folder):
    run = tmp_path / "run"
    (run / "final").mkdir(parents=True)
    for name in ("config.json", "model.safetensors"):
        (run / "final" / name).write_bytes((digits_folder / name).read_bytes())
    assert resolve_model_dir(run) == run / "final"
    assert resolve_model_dir(f"local-dir:{digits_folder}") == digits_folder
