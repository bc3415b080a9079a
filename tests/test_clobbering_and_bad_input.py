"""Issue 13, the cases outside the trainer engine: each test reproduces one fault a new user hit.

translate never writes over its inputs or over its own outputs; bad data is reported before step 1; `--nproc 2`
works from the CLI and each rank resolves its own CUDA device; written files follow the umask; tiny images and wrong
channel counts; plugins that exit or shadow built-ins; corrupt checkpoints, run folders, missing CUDA, huge images and
out-of-range augmentation input.
"""

from __future__ import annotations

import json
import os
import stat
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import vgzoo

HERE = Path(__file__).resolve().parent
NO_CUDA = not torch.cuda.is_available()


def vgzoo_cli(*args, cwd=None, env=None, timeout=600) -> subprocess.CompletedProcess:
    """``python -m vgzoo ARGS`` in a fresh process (what a user's shell runs)."""
    full_env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", **(env or {})}
    full_env.pop("VGZOO_DEBUG", None)
    return subprocess.run([sys.executable, "-m", "vgzoo", *map(str, args)], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=timeout)


def write_png(path: Path, h: int, w: int, mode: str = "RGB", seed: int = 0) -> Path:
    rng = np.random.default_rng(seed * 7919 + h * 1000 + w)
    shape = (h, w) if mode == "L" else (h, w, 3)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode=None).save(path)
    return path


def corrupt_png_data(path: Path) -> Path:
    """Flip bytes inside the IDAT chunk: the header still opens, the pixel data is broken (CRC mismatch)."""
    data = bytearray(path.read_bytes())
    at = data.index(b"IDAT") + 8
    for i in range(at, at + 6):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))
    return path


def header_only_png(path: Path, width: int, height: int) -> Path:
    """A PNG whose IHDR claims ``width`` x ``height`` RGB, followed by one tiny IDAT: opening it costs nothing."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 16))
                     + chunk(b"IEND", b""))
    return path


@pytest.fixture(scope="module")
def cyclegan_dir(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    model = vgzoo.create("cyclegan_resnet", ngf=4, ndf=4, n_blocks=1, img_size=32)
    out = tmp_path_factory.mktemp("models") / "cyclegan"
    vgzoo.save_pretrained(model, out)
    return out


# ------------------------------------------------------------------------------ (2) translate never clobbers
def test_translate_refuses_to_write_over_its_input_file(tmp_path, cyclegan_dir):
    src = write_png(tmp_path / "photo.png", 12, 12)
    before = src.read_bytes()
    proc = vgzoo_cli("translate", cyclegan_dir, src, src)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "photo.png" in proc.stderr and "input" in proc.stderr and "Traceback" not in proc.stderr
    assert src.read_bytes() == before
    # a folder output that would put photo.png's result onto photo.png itself
    proc = vgzoo_cli("translate", cyclegan_dir, src, tmp_path)
    assert proc.returncode == 1 and "input" in proc.stderr
    assert src.read_bytes() == before


def test_translate_refuses_an_output_folder_that_is_or_is_inside_the_input_folder(tmp_path, cyclegan_dir):
    src = tmp_path / "in"
    write_png(src / "a.png", 10, 10)
    before = (src / "a.png").read_bytes()
    for out in (src, src / "translated"):
        proc = vgzoo_cli("translate", cyclegan_dir, src, out)
        assert proc.returncode == 1, proc.stdout + proc.stderr
        assert "inside the input folder" in proc.stderr or "is the input folder" in proc.stderr
    assert (src / "a.png").read_bytes() == before and not (src / "translated").exists()
    assert sorted(p.name for p in src.iterdir()) == ["a.png"]


def test_translate_keeps_both_inputs_that_share_a_name(tmp_path, cyclegan_dir):
    src = tmp_path / "in"
    write_png(src / "a.png", 10, 10, seed=1)
    write_png(src / "a.jpg", 10, 14, seed=2)
    write_png(src / "b.png", 6, 6, seed=3)
    proc = vgzoo_cli("translate", cyclegan_dir, src, tmp_path / "out")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "wrote 3 image(s)" in proc.stdout
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == ["a.jpg.png", "a.png.png", "b.png"]
    assert Image.open(tmp_path / "out" / "a.jpg.png").size == (14, 10)


# ------------------------------------------------------------------------------- (4) bad data before step 1
def _digit_folder(root: Path, n_per_class: int = 6) -> Path:
    for c in range(2):
        for i in range(n_per_class):
            write_png(root / f"class{c}" / f"{i:02d}.png", 16, 16, mode="L", seed=c * 100 + i)
    return root


def test_train_reports_every_bad_file_before_step_one(tmp_path):
    data = _digit_folder(tmp_path / "data")
    (data / "class0" / "03.png").write_bytes(b"this is not a png")
    corrupt_png_data(data / "class1" / "04.png")  # the header opens; the pixel data does not
    out = tmp_path / "run"
    proc = vgzoo_cli("train", "cgan_embed_digits", "--data", data, "--out", out, "--steps", "40", "--batch-size",
                     "2", "-k", "ngf=4", "-k", "ndf=4", "-k", "num_classes=2", "--device", "cpu", "--no-progress")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "03.png" in proc.stderr and "04.png" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (out / "metrics.jsonl").exists() or not (out / "metrics.jsonl").read_text().strip()
    assert not (out / "checkpoints").exists()


def test_verify_dataset_headers_by_default_full_decode_on_request(tmp_path):
    from vgzoo.data import create_dataset, verify_dataset
    from vgzoo.errors import DataError

    data = _digit_folder(tmp_path / "data", n_per_class=3)
    jpeg = data / "class0" / "cut.jpg"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64), dtype=np.uint8)).save(jpeg, quality=90)
    jpeg.write_bytes(jpeg.read_bytes()[:400])  # a truncated JPEG: its header is whole
    ds = create_dataset(data, "conditional_generation", split="all")
    assert verify_dataset(ds) == 7  # headers only: the truncated JPEG passes
    with pytest.raises(DataError, match=r"1 of 7 files(.|\n)*cut\.jpg"):
        verify_dataset(ds, decode=True)
    with pytest.raises(DataError, match=r"cut\.jpg"):
        create_dataset(data, "conditional_generation", split="all", verify="decode")
    with pytest.raises(DataError, match="verify"):
        verify_dataset(ds, decode="sometimes")


# ----------------------------------------------------------------------------- (5) --nproc 2 from the CLI
def test_torchrun_command_has_nproc_per_node_and_no_ambiguous_flag(monkeypatch):
    from vgzoo.train import distributed

    seen = {}
    monkeypatch.setattr(distributed.subprocess, "call", lambda cmd: seen.setdefault("cmd", cmd) and 0)
    distributed.launch_torchrun(2, ["train", "m", "--out", "x"])
    cmd = seen["cmd"]
    assert "--nproc-per-node=2" in cmd
    inner = cmd[cmd.index("vgzoo") + 1:]
    assert inner == ["train", "m", "--out", "x"]


@pytest.mark.slow
def test_cli_nproc_2_trains_to_final_and_the_checkpoint_loads_in_one_process(tmp_path):
    out = tmp_path / "ddp"
    proc = vgzoo_cli("train", "cgan_embed_digits", "--data", "builtin:digits", "--out", out, "--steps", "2",
                     "--batch-size", "4", "-k", "ngf=4", "-k", "ndf=4", "-k", "nz=8", "--nproc", "2",
                     "--device", "cpu", "--no-progress")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert (out / "final" / "model.safetensors").is_file()
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["world_size"] == 2
    model = vgzoo.create(f"local-dir:{out / 'final'}")
    assert model.pretrained_cfg["architecture"] == "cgan_embed_digits"
    from vgzoo._hub import load_state_dict
    from vgzoo.train import latest_checkpoint

    ckpt = latest_checkpoint(out)
    assert ckpt.name == "step_2"
    model.load_state_dict(load_state_dict(ckpt / "model.safetensors"))


def test_each_rank_resolves_its_own_cuda_device_on_resume(monkeypatch):
    from vgzoo.train import distributed

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.delenv("VGZOO_DEVICE", raising=False)  # the suite pins the default to the CPU (conftest.py)
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    info = distributed.env_info()
    # the run config of a resumed run holds rank 0's resolved device, "cuda:0"
    assert distributed.resolve_device("cuda:0", info) == torch.device("cuda", 1)
    assert distributed.resolve_device("cuda", info) == torch.device("cuda", 1)
    assert distributed.resolve_device(None, info) == torch.device("cuda", 1)
    assert distributed.resolve_device("cpu", info) == torch.device("cpu")
    monkeypatch.setenv("LOCAL_RANK", "0")
    monkeypatch.setenv("RANK", "0")
    assert distributed.resolve_device("cuda:0", distributed.env_info()) == torch.device("cuda", 0)


# ----------------------------------------------------------------------------------- (7) files follow the umask
@pytest.mark.parametrize("mask, file_mode, dir_mode", [(0o022, 0o644, 0o755), (0o002, 0o664, 0o775),
                                                       (0o077, 0o600, 0o700)])
def test_written_files_follow_the_umask(tmp_path, mask, file_mode, dir_mode):
    from vgzoo._hub import atomic_write_json
    from vgzoo.scaffold import new_plugin
    from vgzoo.translate import write_image

    old = os.umask(mask)
    try:
        torch.manual_seed(0)
        vgzoo.save_pretrained(vgzoo.create("cyclegan_resnet", ngf=4, ndf=4, n_blocks=1), tmp_path / "m")
        atomic_write_json(tmp_path / "c.json", {"a": 1})
        write_image(torch.zeros(3, 4, 4), tmp_path / "img.png")
        made = new_plugin("vgzoo-umask-check", tmp_path / "plugins")
    finally:
        os.umask(old)
    for path in (tmp_path / "m" / "model.safetensors", tmp_path / "m" / "config.json", tmp_path / "c.json",
                 tmp_path / "img.png", made.path / "pyproject.toml"):
        assert stat.S_IMODE(path.stat().st_mode) == file_mode, path
    assert stat.S_IMODE(made.path.stat().st_mode) == dir_mode


def test_an_image_write_that_fails_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    from vgzoo.data.images import save_image

    target = tmp_path / "out.png"
    target.write_bytes(b"the user's picture")

    def disk_full(self, fp, *args, **kwargs):
        fp.write(b"\x89PNG half")  # part of the file went out before the disk filled
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Image.Image, "save", disk_full)
    with pytest.raises(OSError, match="No space left on device while writing") as info:
        save_image(np.zeros((4, 4, 3), np.uint8), target)
    assert info.value.filename == str(target)
    assert target.read_bytes() == b"the user's picture" and sorted(tmp_path.iterdir()) == [target]


def _count_syncs(monkeypatch, with_syncfs: bool = True) -> dict[str, int]:
    """Count the batch's syncfs calls (the real one, where this libc has it) and the fsyncs."""
    import vgzoo._atomic as atomic

    calls = {"syncfs": 0, "fsync": 0}
    real_syncfs, real_fsync = atomic._syncfs(), os.fsync
    if with_syncfs and real_syncfs is None:
        pytest.skip("this libc has no syncfs")

    def syncfs(folder):
        calls["syncfs"] += 1
        real_syncfs(folder)

    def fsync(fd):
        calls["fsync"] += 1
        real_fsync(fd)

    monkeypatch.setattr(atomic, "_syncfs", lambda: syncfs if with_syncfs else None)
    monkeypatch.setattr(atomic.os, "fsync", fsync)
    return calls


@pytest.mark.parametrize("with_syncfs", [True, False])
def test_a_batch_of_images_is_synced_once_and_leaves_no_temporaries(tmp_path, monkeypatch, with_syncfs):
    from vgzoo.data.images import save_images

    calls = _count_syncs(monkeypatch, with_syncfs)
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (5, 7, 3), dtype=np.uint8) for _ in range(6)]
    targets = [tmp_path / "out" / f"{i}.png" for i in range(6)]
    assert save_images(images, targets, threads=3) == targets
    for image, target in zip(images, targets, strict=True):
        assert np.array_equal(np.asarray(Image.open(target)), image)
    assert sorted((tmp_path / "out").iterdir()) == sorted(targets)
    # one syncfs for the batch; without it (not Linux) an fsync per file, as a single write does
    assert calls == ({"syncfs": 1, "fsync": 0} if with_syncfs else {"syncfs": 0, "fsync": 6})


def test_a_batch_that_fails_to_write_changes_no_file_and_leaves_no_temporary(tmp_path, monkeypatch):
    from vgzoo.data.images import save_images

    targets = [tmp_path / f"{i}.png" for i in range(5)]
    targets[0].write_bytes(b"the user's picture")
    real_save, written = Image.Image.save, []

    def disk_fills_on_the_third(self, fp, *args, **kwargs):
        if len(written) == 2:
            fp.write(b"\x89PNG half")
            raise OSError(28, "No space left on device")
        written.append(fp)
        return real_save(self, fp, *args, **kwargs)

    monkeypatch.setattr(Image.Image, "save", disk_fills_on_the_third)
    with pytest.raises(OSError, match="No space left on device while writing"):
        save_images([np.zeros((4, 4, 3), np.uint8)] * 5, targets, threads=1)
    assert targets[0].read_bytes() == b"the user's picture" and sorted(tmp_path.iterdir()) == [targets[0]]


def test_a_batch_whose_rename_fails_keeps_the_files_before_it_and_no_temporary(tmp_path):
    from vgzoo.data.images import save_images

    targets = [tmp_path / f"{i}.png" for i in range(3)]
    targets[1].mkdir()  # a folder where the second image should go
    (targets[1] / "kept.txt").write_text("the user's")
    with pytest.raises(OSError) as info:
        save_images([np.full((4, 4), 9, np.uint8)] * 3, targets, threads=2)
    assert str(targets[1]) in str(info.value)
    assert np.asarray(Image.open(targets[0]))[0, 0] == 9  # renamed before the failure: complete
    assert (targets[1] / "kept.txt").read_text() == "the user's"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["0.png", "1.png"]


def test_a_batch_with_a_bad_image_writes_nothing(tmp_path):
    from vgzoo.data.images import save_images
    from vgzoo.errors import DataError

    targets = [tmp_path / "a.png", tmp_path / "b.png"]
    with pytest.raises(DataError, match="shape .* float32"):
        save_images([np.zeros((4, 4, 3), np.uint8), np.zeros((4, 4, 3), np.float32)], targets)
    assert not any(tmp_path.iterdir())


# ------------------------------------------------------------------------------ (8) tiny images, wrong channels
@pytest.mark.parametrize("h, w", [(1, 1), (2, 3), (4, 4), (3, 9)])
def test_cyclegan_translates_any_image_of_at_least_one_pixel(tmp_path, cyclegan_dir, h, w):
    from vgzoo.translate import translate

    src = write_png(tmp_path / "tiny.png", h, w)
    (out,) = translate(cyclegan_dir, src, tmp_path / "out.png", progress=False)
    assert Image.open(out).size == (w, h)


def test_translate_folder_reports_failing_files_goes_on_and_exits_non_zero(tmp_path, cyclegan_dir):
    src = tmp_path / "in"
    write_png(src / "a.png", 10, 10)
    (src / "b_broken.png").write_bytes(b"garbage")
    write_png(src / "c.png", 3, 3)
    write_png(src / "d.png", 12, 8)
    proc = vgzoo_cli("translate", cyclegan_dir, src, tmp_path / "out")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png", "c.png", "d.png"]
    assert "b_broken.png" in proc.stderr and "wrote 3 image(s)" in proc.stdout
    assert "1 of 4" in proc.stderr


@pytest.mark.parametrize("name, kwargs", [("cyclegan_resnet", {"ngf": 4, "ndf": 4, "n_blocks": 1}),
                                          ("pix2pix_unet128", {"ngf": 2, "ndf": 2})])
def test_generators_name_the_channel_count_they_expect(name, kwargs):
    model = vgzoo.create(name, **kwargs)
    generator = model.G_AB if hasattr(model, "G_AB") else model.generator
    with pytest.raises(ValueError, match=r"expects 3-channel images, got 1(.|\n)*in_chans=1"):
        generator(torch.zeros(1, 1, 128, 128))


# --------------------------------------------------------------------------------------------- (9) plugins
SYS_EXIT_MODULE = "import sys\nsys.exit(3)\n"
SHADOW_MODULE = '''
import vgzoo
from vgzoo.protocols import ZooModel


class Shadow(ZooModel):
    def __init__(self):
        raise AssertionError("the plugin's claim on a built-in name must never be built")

    def example_inputs(self, batch_size=2):
        return ()


cgan_embed_digits = vgzoo.register_model(
    "cgan_embed_digits", Shadow, family="fake", task="conditional_generation",
    cfgs={"input_size": (1, 2, 2), "mean": (0.0,), "std": (1.0,), "paper": "none"})
'''


def _fake_dist(root: Path, dist: str, entry_points: dict[str, str], modules: dict[str, str]) -> None:
    info = root / f"{dist.replace('-', '_')}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    lines = ["[vgzoo.models]", *(f"{name} = {value}" for name, value in entry_points.items())]
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n")
    for module, source in modules.items():
        (root / f"{module}.py").write_text(source)


@pytest.fixture(scope="module")
def rogue_plugins(tmp_path_factory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("rogue_plugins")
    _fake_dist(root, "vgzoo-fake-exit", {"fake_exit": "fake_exit_mod:fake_exit"}, {"fake_exit_mod": SYS_EXIT_MODULE})
    _fake_dist(root, "vgzoo-fake-shadow", {"cgan_embed_digits": "fake_shadow_mod:cgan_embed_digits"},
               {"fake_shadow_mod": SHADOW_MODULE})
    return {"PYTHONPATH": os.pathsep.join([str(root), *sys.path])}


def test_plugin_calling_sys_exit_on_import_is_reported_not_fatal(rogue_plugins):
    proc = vgzoo_cli("plugins", "--json", env=rogue_plugins)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (row,) = [r for r in json.loads(proc.stdout) if r["name"] == "fake_exit"]
    assert row["status"] == "error" and "SystemExit" in row["error"]
    proc = vgzoo_cli("list", "--family", "cgan", env=rogue_plugins)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "cgan_embed_digits" in proc.stdout.split()


def test_plugin_claiming_a_built_in_name_does_not_disable_the_built_in(rogue_plugins):
    proc = vgzoo_cli("plugins", "--json", env=rogue_plugins)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = {r["distribution"]: r for r in json.loads(proc.stdout) if r["name"] == "cgan_embed_digits"}
    assert rows["vgzoo"]["status"] == "ok"
    assert rows["vgzoo-fake-shadow"]["status"] == "error" and "built-in" in rows["vgzoo-fake-shadow"]["error"]
    # the plugin module imported before and after the built-in one: the built-in is built either way
    code = ("import importlib, vgzoo; importlib.import_module('fake_shadow_mod'); "
            "m = vgzoo.create('cgan_embed_digits', ngf=4, ndf=4); importlib.reload(importlib.import_module("
            "'fake_shadow_mod')); m2 = vgzoo.create('cgan_embed_digits', ngf=4, ndf=4); "
            "print(type(m).__module__, type(m2).__module__)")
    env = {**os.environ, **rogue_plugins, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["vgzoo.models.cgan", "vgzoo.models.cgan"]


# ------------------------------------------------------------------------------------------- (9) the rest
def test_corrupt_trainer_state_is_named(tmp_path):
    step = tmp_path / "run" / "checkpoints" / "step_3"
    step.mkdir(parents=True)
    (step / "trainer_state.json").write_text('{"step": 3, "config": {')
    (step.parent / "latest").write_text("step_3\n")
    proc = vgzoo_cli("train", "cgan_embed_digits", "--resume", "--out", tmp_path / "run", "--device", "cpu")
    assert proc.returncode == 1
    assert str(step / "trainer_state.json") in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.fixture(scope="module")
def run_folders(tmp_path_factory, cyclegan_dir) -> Path:
    """A finished translation run (config.json of a run + final/) and an unfinished one (checkpoints only)."""
    root = tmp_path_factory.mktemp("runs")
    for name in ("done", "unfinished"):
        (root / name / "checkpoints" / "step_2").mkdir(parents=True)
        (root / name / "config.json").write_text(json.dumps({"model": "cyclegan_resnet", "recipe": "CycleGANRecipe"}))
    import shutil

    shutil.copytree(cyclegan_dir, root / "done" / "final")
    torch.manual_seed(0)
    vgzoo.save_pretrained(vgzoo.create("cgan_embed_digits", ngf=4, ndf=4), root / "cgan" / "final")
    (root / "cgan" / "config.json").write_text(json.dumps({"model": "cgan_embed_digits", "recipe": "CGANRecipe"}))
    return root


def test_translate_and_generate_accept_a_run_folder(tmp_path, run_folders):
    src = write_png(tmp_path / "x.png", 8, 8)
    proc = vgzoo_cli("translate", run_folders / "done", src, tmp_path / "y.png")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert Image.open(tmp_path / "y.png").size == (8, 8)
    assert "final" in proc.stderr  # says which folder it used
    proc = vgzoo_cli("translate", run_folders / "unfinished", src, tmp_path / "z.png")
    assert proc.returncode == 1 and "final" in proc.stderr and "--resume" in proc.stderr, proc.stderr
    proc = vgzoo_cli("generate", run_folders / "cgan", "--out", tmp_path / "g.png", "--per-class", "1")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (tmp_path / "g.png").is_file()


@pytest.mark.skipif(not NO_CUDA, reason="needs a machine without CUDA")
def test_device_cuda_without_cuda_says_to_use_cpu(tmp_path, cyclegan_dir):
    src = write_png(tmp_path / "x.png", 8, 8)
    proc = vgzoo_cli("translate", cyclegan_dir, src, tmp_path / "y.png", "--device", "cuda")
    assert proc.returncode == 1 and "--device cpu" in proc.stderr, proc.stderr
    proc = vgzoo_cli("train", "cgan_embed_digits", "--data", "builtin:digits", "--out", tmp_path / "run",
                     "--steps", "1", "--device", "cuda")
    assert proc.returncode == 1 and "--device cpu" in proc.stderr, proc.stderr
    assert not (tmp_path / "run").exists()
    proc = vgzoo_cli("generate", "cgan_embed_digits", "--out", tmp_path / "g.png", "--device", "cuda")
    assert proc.returncode == 1 and "--device cpu" in proc.stderr, proc.stderr


def test_images_over_the_memory_budget_are_refused_before_decoding(tmp_path, monkeypatch):
    from vgzoo.data.images import read_image
    from vgzoo.errors import DataError
    from vgzoo.translate import read_image as translate_read

    huge = header_only_png(tmp_path / "huge.png", 11000, 11000)  # 363 MB of RGB once decoded; 60 bytes on disk
    monkeypatch.setenv("VGZOO_MAX_IMAGE_BYTES", str(1 << 30))
    for reader in (read_image, translate_read):
        with pytest.raises(DataError, match=r"huge\.png(.|\n)*11000x11000(.|\n)*VGZOO_MAX_IMAGE_BYTES"):
            reader(huge, 3)
    small = write_png(tmp_path / "small.png", 20, 20)
    assert read_image(small, 3).shape == (3, 20, 20)
    monkeypatch.setenv("VGZOO_MAX_IMAGE_BYTES", "1000")
    with pytest.raises(DataError, match=r"small\.png"):
        read_image(small, 3)


def test_cli_translate_refuses_a_huge_image_in_one_line(tmp_path, cyclegan_dir):
    huge = header_only_png(tmp_path / "huge.png", 11000, 11000)
    proc = vgzoo_cli("translate", cyclegan_dir, huge, tmp_path / "o.png", env={"VGZOO_MAX_IMAGE_BYTES": "100000000"})
    assert proc.returncode == 1 and "huge.png" in proc.stderr and "budget" in proc.stderr, proc.stderr
    assert "MemoryError" not in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize("bad, match", [(1.2, "above 1"), (float("nan"), "NaN"), (float("inf"), "Inf")])
def test_augment_refuses_values_above_one_and_nan(bad, match):
    from vgzoo.augment import AugmentInputError, create_transform

    cfg = {"task": "unpaired_translation", "input_size": (3, 16, 16), "mean": (0.5,), "std": (0.5,)}
    x = torch.rand(2, 3, 16, 16)
    x[1, 0, 3, 3] = bad
    with pytest.raises(AugmentInputError, match=match):
        create_transform(cfg)(x)
    x[1, 0, 3, 3] = 1.0
    assert create_transform(cfg)(x).shape[0] == 2
