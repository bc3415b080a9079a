"""Issue 28, hangs, misleading errors, races and leftovers: each test reproduces one case a new user hit.

Network faults are played by loopback servers (tests/_http.py: stall, trickle, HTTP 500, refused, never answering)
with the limits set low through their documented variables; signals are real SIGTERMs to real child processes, and
races are real concurrent processes.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from _http import LoopbackServer, SilentServer, free_port, http_server  # noqa: F401  (the fixture)

from vgzoo.download import fetch
from vgzoo.errors import DownloadError

HERE = Path(__file__).resolve().parent
URL = "http://efrosgans.eecs.berkeley.edu/cyclegan/pretrained_models/horse2zebra.pth"
PATH = "/cyclegan/pretrained_models/horse2zebra.pth"


@pytest.fixture
def net(tmp_path, monkeypatch, http_server):  # noqa: F811
    """The loopback server as the mirror, an empty cache, and short limits (the defaults are minutes)."""
    monkeypatch.setenv("VGZOO_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("VGZOO_MIRROR", http_server.url)
    monkeypatch.delenv("VGZOO_OFFLINE", raising=False)
    monkeypatch.setenv("VGZOO_READ_TIMEOUT", "1")
    monkeypatch.setenv("VGZOO_LOW_SPEED_LIMIT", "200")
    monkeypatch.setenv("VGZOO_LOW_SPEED_TIME", "1")
    return http_server


def cache_files(folder: Path) -> list[str]:
    """Files under ``folder``, the empty lock files under ``.locks/`` aside."""
    if not folder.exists():
        return []
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")
                  if p.is_file() and ".locks" not in p.relative_to(folder).parts)


def run(args: list[str], env: dict, timeout: float = 120, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=timeout, cwd=cwd)


def hub_env(tmp_path, endpoint: str, **extra) -> dict:
    """A user's shell pointed at a Hub endpoint: no offline flags, its own caches, short limits."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("HF_", "HUGGINGFACE_", "VGZOO_OFFLINE")) and "proxy" not in k.lower()}
    env.update(HF_ENDPOINT=endpoint, HF_HOME=str(tmp_path / "hf-home"), HF_HUB_DISABLE_TELEMETRY="1",
               HF_HUB_DISABLE_PROGRESS_BARS="1", HF_HUB_DISABLE_XET="1", VGZOO_CACHE=str(tmp_path / "cache"),
               VGZOO_READ_TIMEOUT="1", VGZOO_CONNECT_TIMEOUT="2", OMP_NUM_THREADS="1", **extra)
    return env


# ------------------------------------------------------------------------ (7) limits on every request
def test_a_trickling_download_fails_under_the_low_speed_limit_and_leaves_nothing(net, tmp_path):
    net.trickle(PATH, b"x" * 1000, every=0.05)  # 20 bytes/s, never silent for a whole read timeout
    with pytest.raises(DownloadError, match="too slow") as info:
        fetch(URL, "weights/h2z.pth", progress=False)
    assert "VGZOO_LOW_SPEED_LIMIT" in str(info.value) and "200 bytes/s" in str(info.value)
    assert cache_files(tmp_path / "cache") == []


def test_data_fetch_of_a_trickling_server_exits_with_the_limit_named(net, tmp_path):
    net.trickle("/cyclegan/datasets/mini.zip", b"PK" * 500, every=0.05)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = run([sys.executable, "-m", "vgzoo", "data", "fetch", "cyclegan:mini"], env, timeout=60)
    assert proc.returncode != 0
    assert "too slow" in proc.stderr and "VGZOO_LOW_SPEED_TIME" in proc.stderr, proc.stderr


def test_a_silent_server_is_a_read_timeout_not_cannot_connect(net, tmp_path):
    net.stall(PATH)
    with pytest.raises(DownloadError) as info:
        fetch(URL, "weights/h2z.pth", progress=False)
    message = str(info.value)
    assert "stopped sending data" in message and "VGZOO_READ_TIMEOUT" in message, message
    assert "cannot connect" not in message
    assert cache_files(tmp_path / "cache") == []


@pytest.mark.parametrize("var, value", [("VGZOO_READ_TIMEOUT", "0"), ("VGZOO_CONNECT_TIMEOUT", "soon"),
                                        ("VGZOO_LOW_SPEED_LIMIT", "-1"), ("VGZOO_LOW_SPEED_TIME", "nan")])
def test_a_bad_limit_is_named_before_anything_is_fetched(net, monkeypatch, var, value):
    from vgzoo.download import network_limits

    monkeypatch.setenv(var, value)
    with pytest.raises(DownloadError, match=var):
        network_limits()
    net.add(PATH, b"data")
    with pytest.raises(DownloadError, match=var):
        fetch(URL, "weights/h2z.pth", progress=False)
    assert net.requests == []


def test_a_hub_endpoint_that_never_answers_fails_a_pretrained_create_within_the_read_timeout(tmp_path):
    code = ("import vgzoo\ntry:\n    vgzoo.create('hf-hub:org/repo')\nexcept Exception as e:\n"
            "    print(type(e).__name__, e)\n")
    with SilentServer() as hub:
        proc = run([sys.executable, "-c", code], hub_env(tmp_path, hub.url), timeout=90)
    assert proc.stdout.startswith("WeightsNotFoundError"), proc.stdout + proc.stderr
    assert "stopped answering" in proc.stdout and "VGZOO_READ_TIMEOUT" in proc.stdout, proc.stdout
    assert "HF_HUB_OFFLINE" not in proc.stdout.split("(", 1)[1].split(")")[0]  # the reason is not "offline"


def test_push_to_a_hub_endpoint_that_never_answers_fails_within_the_read_timeout(tmp_path):
    folder = _saved_model(tmp_path)
    with SilentServer() as hub:
        proc = run([sys.executable, "-m", "vgzoo", "push", str(folder), "org/tiny"],
                   hub_env(tmp_path, hub.url, HF_TOKEN="hf_x"), timeout=240)
    assert proc.returncode != 0
    assert "stopped answering" in proc.stderr and "VGZOO_READ_TIMEOUT" in proc.stderr, proc.stderr


def _saved_model(tmp_path) -> Path:
    import vgzoo

    folder = tmp_path / "model"
    vgzoo.save_pretrained(vgzoo.create("cgan_embed_digits", pretrained=True), folder)
    return folder


# ------------------------------------------------------------------------ (9) messages that say what happened
def test_push_to_a_refused_endpoint_says_cannot_connect_not_a_bare_errno(tmp_path):
    folder = _saved_model(tmp_path)
    proc = run([sys.executable, "-m", "vgzoo", "push", str(folder), "org/tiny"],
               hub_env(tmp_path, f"http://127.0.0.1:{free_port()}", HF_TOKEN="hf_x"), timeout=240)
    assert proc.returncode != 0
    assert "cannot connect to the Hub endpoint" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_500_from_the_hub_endpoint_is_named_and_not_called_offline(tmp_path):
    code = ("import vgzoo\ntry:\n    vgzoo.create('hf-hub:org/repo')\nexcept Exception as e:\n"
            "    print(type(e).__name__, e)\n")
    with LoopbackServer() as hub:
        hub.fail("/org/repo/resolve/main/config.json", 500)
        proc = run([sys.executable, "-c", code], hub_env(tmp_path, hub.url), timeout=120)
    assert "answered HTTP 500" in proc.stdout, proc.stdout + proc.stderr
    assert "offline" not in proc.stdout.lower() and "unset HF_HUB_OFFLINE" not in proc.stdout


# ------------------------------------------------------------------------ (10) races between processes
MINI = "/cyclegan/datasets/mini.zip"


def cli_env(server_url: str, cache: Path, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "VGZOO_OFFLINE"}
    env.update(VGZOO_MIRROR=server_url, VGZOO_CACHE=str(cache), OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1", **extra)
    return env


def start_all(commands: list[list[str]], env: dict) -> list[subprocess.CompletedProcess]:
    """Start every command at once, then wait for all (real processes racing for the same files)."""
    procs = [subprocess.Popen(c, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for c in commands]
    results = []
    for c, p in zip(commands, procs, strict=True):
        out, err = p.communicate(timeout=300)
        results.append(subprocess.CompletedProcess(c, p.returncode, out, err))
    return results


def test_concurrent_data_fetches_of_one_set_all_succeed_and_download_once(http_server, tmp_path):  # noqa: F811
    from test_reference_data import h2z_zip

    http_server.add(MINI, h2z_zip(), delay=2.0)  # every process asks before the first answer arrives
    cache = tmp_path / "cache"
    fetches = start_all([[sys.executable, "-m", "vgzoo", "data", "fetch", "cyclegan:mini"]] * 4,
                        cli_env(http_server.url, cache))
    for r in fetches:
        assert r.returncode == 0, r.stderr
    folder = cache / "datasets" / "cyclegan" / "mini"
    assert all(str(folder) in r.stdout for r in fetches)
    assert sorted(p.name for p in folder.iterdir()) == ["testA", "testB", "trainA", "trainB"]
    assert http_server.requests.count(MINI) == 1  # the others waited and reused it
    assert not [p for p in folder.parent.iterdir() if p.name.endswith((".part", ".extracting"))]


def test_concurrent_first_loads_of_one_tag_all_succeed_and_convert_once(http_server, tmp_path):  # noqa: F811
    from test_pretrained import H2Z, needs_keys, reference_pth

    if needs_keys.args[0]:
        pytest.skip(needs_keys.kwargs["reason"])
    data, sd = reference_pth("resnet_9blocks_instance_G")
    http_server.add(H2Z, data, delay=2.0)
    code = ("import torch, vgzoo\nm = vgzoo.create('cyclegan_resnet.horse2zebra', pretrained=True)\n"
            "print(float(m.generator.stem.conv.weight.double().sum()))\n")
    loads = start_all([[sys.executable, "-c", code]] * 3, cli_env(http_server.url, tmp_path / "cache"))
    for r in loads:
        assert r.returncode == 0, r.stderr
    expected = float(sd["model.1.weight"].double().sum())
    assert [float(r.stdout) for r in loads] == [pytest.approx(expected, abs=0)] * 3
    assert http_server.requests.count(H2Z) == 1
    models = tmp_path / "cache" / "models"
    # the tag is an alias: the folder is named after the name.tag that holds it
    assert sorted(p.name for p in models.iterdir()) == ["cyclegan_resnet_generator.horse2zebra"]  # no temporary left


# ------------------------------------------------------------------------ (11) signals and leftovers
def wait_for(predicate, proc: subprocess.Popen, what: str, limit: float = 120.0):
    """Poll ``predicate`` until it returns something true; fail if ``proc`` ends first."""
    import time

    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        if proc.poll() is not None:
            pytest.fail(f"the process ended before {what}: {proc.communicate()}")
        time.sleep(0.01)
    proc.kill()
    pytest.fail(f"no {what} within {limit} s")


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob(".*") if p.name.endswith((".part", ".extracting", ".replaced")))


def test_sigterm_mid_download_removes_the_part_file(http_server, tmp_path):  # noqa: F811
    import signal

    http_server.trickle(MINI, b"PK" * 5000, every=0.01)  # slow enough to be caught mid-way
    cache = tmp_path / "cache"
    proc = subprocess.Popen([sys.executable, "-m", "vgzoo", "data", "fetch", "cyclegan:mini"],
                            env=cli_env(http_server.url, cache), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    part = wait_for(lambda: [p for p in cache.rglob("*.part") if p.stat().st_size > 0], proc, "a .part file")
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=60)
    assert proc.returncode == 143 and not part[0].exists()
    assert leftovers(cache) == []


def test_sigterm_mid_extraction_removes_the_extracting_folder(http_server, tmp_path):  # noqa: F811
    import signal

    from test_reference_data import h2z_zip, jpeg

    many = {f"horse2zebra/trainA/extra{i}.jpg": jpeg((8, 8), (200, 20, 20), i) for i in range(3000)}
    http_server.add(MINI, h2z_zip(many))
    cache = tmp_path / "cache"
    proc = subprocess.Popen([sys.executable, "-m", "vgzoo", "data", "fetch", "cyclegan:mini"],
                            env=cli_env(http_server.url, cache), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    extracting = wait_for(lambda: [p for p in cache.rglob("*.extracting") if any(p.rglob("*.jpg"))], proc,
                          "an .extracting folder with files in it")
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=60)
    assert proc.returncode == 143 and not extracting[0].exists()
    assert leftovers(cache) == [] and not (cache / "datasets" / "cyclegan" / "mini").exists()


def test_what_a_killed_fetch_left_is_swept_by_the_next_one(http_server, tmp_path):  # noqa: F811
    import signal

    from test_reference_data import h2z_zip

    http_server.trickle(MINI, b"PK" * 5000, every=0.01)
    cache = tmp_path / "cache"
    env = cli_env(http_server.url, cache)
    proc = subprocess.Popen([sys.executable, "-m", "vgzoo", "data", "fetch", "cyclegan:mini"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    wait_for(lambda: [p for p in cache.rglob("*.part") if p.stat().st_size > 0], proc, "a .part file")
    proc.send_signal(signal.SIGKILL)  # no cleanup can run
    proc.communicate(timeout=60)
    sets = cache / "datasets" / "cyclegan"
    (sets / ".mini.killed.extracting" / "mini" / "trainA").mkdir(parents=True)  # as a killed extraction leaves
    assert leftovers(cache) != []
    del http_server.trickled[MINI]
    http_server.add(MINI, h2z_zip())
    fetched = run([sys.executable, "-m", "vgzoo", "data", "fetch", "cyclegan:mini"], env)
    assert fetched.returncode == 0, fetched.stderr
    assert leftovers(cache) == []
    assert (sets / "mini" / "trainA").is_dir()


# ------------------------------------------------------------------------ (8) the FID Inception weights
def test_fid_inception_weights_come_through_vgzoo_mirror_and_obey_vgzoo_offline(net, tmp_path, monkeypatch):
    import torch
    from test_eval import _random_inception_state

    from vgzoo.errors import OfflineError
    from vgzoo.metrics import features as feat_mod

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))  # no copy in torch hub's cache
    monkeypatch.setattr(feat_mod, "_EXTRACTOR_CACHE", {})
    upstream = feat_mod.inception_weights_url()
    assert upstream.startswith("https://github.com/")
    monkeypatch.setenv("VGZOO_OFFLINE", "1")
    with pytest.raises(OfflineError) as info:
        feat_mod.get_features("inception")
    assert upstream in str(info.value) and str(tmp_path / "cache") in str(info.value)  # the path in vgzoo's cache
    assert net.requests == []
    monkeypatch.delenv("VGZOO_OFFLINE")
    state = _random_inception_state()
    import io

    buf = io.BytesIO()
    torch.save(state, buf)
    path = "/" + upstream.split("/", 3)[3]  # the mirror keeps the upstream path
    net.add(path, buf.getvalue())
    monkeypatch.setenv("VGZOO_LOW_SPEED_LIMIT", "0")
    ext = feat_mod.get_features("inception")
    assert net.requests == [path]
    assert feat_mod.inception_weights_path().is_relative_to(tmp_path / "cache")
    torch.testing.assert_close(ext.module.Mixed_7c.branch_pool.conv.weight, state["Mixed_7c.branch_pool.conv.weight"])


# ------------------------------------------------------------------------ (13) NaN outputs are refused
@pytest.fixture(scope="module")
def nan_for_class_3(tmp_path_factory) -> Path:
    """The digits cGAN with class 3's label embedding set to NaN: every sample of class 3 is NaN, the rest fine."""
    import torch

    import vgzoo

    model = vgzoo.create("cgan_embed_digits", pretrained=True)
    with torch.no_grad():
        model.generator.label_map.embed.weight[3] = float("nan")
    folder = tmp_path_factory.mktemp("nan") / "cgan"
    vgzoo.save_pretrained(model, folder)
    return folder


def test_generate_refuses_nan_samples_naming_how_many_and_writes_nothing(nan_for_class_3, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = run([sys.executable, "-m", "vgzoo", "generate", str(nan_for_class_3), "--out", str(tmp_path / "grid.png"),
                "--out-dir", str(tmp_path / "samples"), "--per-class", "4", "--precision", "fp32"], env)
    assert proc.returncode != 0
    assert "4 of 40 images hold non-finite values" in proc.stderr, proc.stderr
    assert not (tmp_path / "grid.png").exists() and not (tmp_path / "samples").exists()


def test_eval_generate_refuses_nan_samples_instead_of_scoring_them(nan_for_class_3):
    from vgzoo.metrics.evaluate import eval_generate

    with pytest.raises(ValueError, match=r"5 of \d+ images hold non-finite values.*nothing was scored") as info:
        eval_generate(str(nan_for_class_3), per_class=5, progress=False)
    assert type(info.value).__name__ == "NonFiniteOutputError"


# ------------------------------------------------------------------------ (12) killed in the first save
def test_a_run_killed_in_its_first_save_gets_one_answer_resume_starts_it_over(tmp_path):
    import signal

    from test_checkpoint import _wait_for
    from test_train_runs import CGAN_ARGS

    from vgzoo.train import checkpoint as ckpt

    out = tmp_path / "run"
    train = [sys.executable, "-m", "vgzoo", "train", "cgan_embed_digits", "--out", str(out), "--steps", "4",
             "-o", "save_every=2", *CGAN_ARGS]
    env = {**os.environ, ckpt._SLOW_SAVE_ENV: "2", "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(train, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    _wait_for(proc, "vgzoo-test: saving step 2")
    proc.send_signal(signal.SIGKILL)  # in the middle of the first checkpoint: nothing can clean up
    proc.wait(timeout=30)
    assert ckpt.latest_checkpoint(out) is None and (out / "config.json").is_file()
    env.pop(ckpt._SLOW_SAVE_ENV)
    fresh = run(train, env, timeout=300)
    assert fresh.returncode != 0 and "Start it over with --resume" in fresh.stdout + fresh.stderr, fresh.stderr
    resumed = run([*train, "--resume"], env, timeout=300)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert ckpt.latest_checkpoint(out).name == "step_4"
    assert "moved the old contents" in resumed.stdout + resumed.stderr
    aside = [p for p in tmp_path.iterdir() if p.name.startswith("run.old-")]
    assert len(aside) == 1 and (aside[0] / "config.json").is_file()  # what the killed run left is kept, aside


# ------------------------------------------------------------------------ (14) mixed image sizes
def test_a_classification_folder_of_mixed_sizes_trains_at_the_models_input_size(tmp_path):
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for cls, sizes in (("cats", [(20, 20), (40, 30), (33, 47)]), ("dogs", [(32, 32), (64, 16), (25, 25)])):
        for i, (w, h) in enumerate(sizes * 2):
            (tmp_path / "data" / cls).mkdir(parents=True, exist_ok=True)
            Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(tmp_path / "data" / cls / f"{i}.png")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = run([sys.executable, "-m", "vgzoo", "train", "vit_ti16_scratch", "--data", str(tmp_path / "data"),
                "--out", str(tmp_path / "run"), "--steps", "2", "--batch-size", "4", "-k", "img_size=32",
                "-k", "num_classes=2", "-o", "threads=1", "--no-progress"], env, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "resized to 32x32 (the model's input size)" in proc.stdout + proc.stderr


def test_resume_with_other_model_arguments_names_the_ones_the_run_was_built_with(tmp_path):
    from test_train_runs import CGAN_ARGS

    out = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    train = [sys.executable, "-m", "vgzoo", "train", "cgan_embed_digits", "--out", str(out), *CGAN_ARGS]
    assert run([*train, "--steps", "2"], env, timeout=300).returncode == 0  # CGAN_ARGS build it with ngf=8
    again = run([*train, "--steps", "4", "--resume", "-k", "ngf=16"], env, timeout=300)
    assert again.returncode != 0
    assert "this run was built with ngf=8" in again.stderr and "size mismatch" not in again.stderr, again.stderr


# ------------------------------------------------------------------------ (15) absurd sizes in config.json
def test_a_config_with_absurd_sizes_is_refused_from_the_weights_header_before_allocating(tmp_path):
    import json

    import vgzoo

    folder = tmp_path / "cgan"
    vgzoo.save_pretrained(vgzoo.create("cgan_embed_digits", pretrained=True), folder)
    config = json.loads((folder / "config.json").read_text())
    config["config"]["ngf"] = 20000  # a 36 GiB generator, over the 8 GiB this process may map
    (folder / "config.json").write_text(json.dumps(config))
    code = ("import resource, vgzoo\nresource.setrlimit(resource.RLIMIT_AS, (8 << 30, 8 << 30))\n"
            f"try:\n    vgzoo.create('local-dir:{folder}')\nexcept Exception as e:\n"
            "    print(type(e).__name__, e)\n")
    proc = run([sys.executable, "-c", code], {**os.environ, "OMP_NUM_THREADS": "1"}, timeout=300)
    assert proc.stdout.startswith("WeightsError"), proc.stdout + proc.stderr
    assert "shape mismatches" in proc.stdout and "config.json" in proc.stdout and "ngf" in proc.stdout


# ------------------------------------------------------------------------ (16) modes, read-only cache
def test_a_fetched_archive_and_a_set_without_top_folder_follow_the_umask(http_server, tmp_path):  # noqa: F811
    import io
    import stat
    import zipfile

    from test_reference_data import jpeg

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:  # splits at the archive's root, no top folder
        for split in ("trainA", "trainB"):
            for i in range(2):
                zf.writestr(f"{split}/{i}.jpg", jpeg((16, 16), (200, 20, 20), i))
    http_server.add(MINI, buf.getvalue())
    cache = tmp_path / "cache"
    proc = run([sys.executable, "-c", "import os; os.umask(0o022); from vgzoo.cli import main; main()",
                "data", "fetch", "cyclegan:mini"], cli_env(http_server.url, cache))
    assert proc.returncode == 0, proc.stderr
    sets = cache / "datasets" / "cyclegan"
    assert stat.S_IMODE((sets / "mini.zip").stat().st_mode) == 0o644
    assert stat.S_IMODE((sets / "mini").stat().st_mode) == 0o755


def test_eval_with_a_read_only_cache_scores_and_says_the_features_were_not_kept(tmp_path):
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for name in ("real", "fake"):
        (tmp_path / name).mkdir()
        for i in range(4):
            Image.fromarray(rng.integers(0, 255, (16, 16), dtype=np.uint8)).save(tmp_path / name / f"{i}.png")
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    cache = blocker / "cache"  # nothing can be written there, root included (a read-only mount behaves alike)
    env = {**os.environ, "VGZOO_CACHE": str(cache), "OMP_NUM_THREADS": "1"}
    proc = run([sys.executable, "-m", "vgzoo", "eval", "fid", str(tmp_path / "real"), str(tmp_path / "fake"),
                "--features", "digits"], env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "feature cache could not be written" in proc.stderr


def test_a_corrupt_onnx_file_is_named(tmp_path):
    from PIL import Image

    bad = tmp_path / "h2z.onnx"
    bad.write_bytes(b"\xff" * 64)  # not a protobuf message (wire type 7 does not exist)
    Image.new("RGB", (16, 16)).save(tmp_path / "in.png")
    proc = run([sys.executable, "-m", "vgzoo", "translate", str(bad), str(tmp_path / "in.png"),
                str(tmp_path / "out.png")], {**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode != 0
    assert str(bad) in proc.stderr and "truncated or corrupt" in proc.stderr, proc.stderr


def test_a_full_disk_is_reported_with_the_file_being_written(tmp_path):
    import shutil

    mnt = tmp_path / "small"
    mnt.mkdir()
    probe = subprocess.run(["unshare", "-rm", "sh", "-c", f"mount -t tmpfs -o size=256k none {mnt}"],
                           capture_output=True, text=True) if shutil.which("unshare") else None
    if probe is None or probe.returncode != 0:
        pytest.skip("a 256 KiB file system needs unshare -rm and mount (user and mount namespaces)")
    train = (f"mount -t tmpfs -o size=256k none {mnt} && exec {sys.executable} -m vgzoo train cgan_embed_digits "
             f"--data builtin:digits --out {mnt}/run --steps 2 --batch-size 8 -o threads=1 --no-progress")
    proc = run(["unshare", "-rm", "sh", "-c", train], {**os.environ, "OMP_NUM_THREADS": "1"}, timeout=300)
    assert proc.returncode != 0
    assert "[Errno 28] No space left on device while writing" in proc.stderr and f"{mnt}/run/" in proc.stderr, \
        proc.stderr
