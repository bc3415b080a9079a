"""What the demo page does, without a browser: DemoModel per task, upload checks, the Gradio page and its extra."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from PIL import Image

import vgzoo
from vgzoo.share.demo import DemoDependencyError, DemoModel, UploadError, build_demo, load_demo_model


def tiny(name: str, **extra):
    return vgzoo.create(name, **{**vgzoo.model_info(name).test_kwargs, **extra})


@pytest.fixture
def photo(tmp_path):
    path = tmp_path / "photo.png"
    Image.radial_gradient("L").convert("RGB").resize((70, 45)).save(path)
    return path


def test_translation_keeps_the_upload_size(photo):
    demo = DemoModel(tiny("pix2pix_unet128"))
    src, out = demo.translate(demo.load_upload(photo))
    assert src.size == out.size == (70, 45) and out.mode == "RGB"
    cyc = DemoModel(tiny("cyclegan_resnet6"))
    a, b = cyc.translate(cyc.load_upload(photo), "AtoB")[1], cyc.translate(cyc.load_upload(photo), "BtoA")[1]
    assert a.size == b.size == (70, 45) and a.tobytes() != b.tobytes()


def test_large_uploads_are_scaled_down_for_translation(tmp_path):
    path = tmp_path / "big.png"
    Image.new("RGB", (1200, 300), "white").save(path)
    demo = DemoModel(tiny("pix2pix_unet128"), max_side=256)
    assert demo.translate(demo.load_upload(path))[1].size == (256, 64)


def test_uploads_that_are_not_images_are_named(tmp_path):
    demo = DemoModel(tiny("pix2pix_unet128"), max_pixels=100 * 100)
    text = tmp_path / "notes.png"
    text.write_text("this is text, not a picture")
    with pytest.raises(UploadError, match=r"notes.png is not an image .*PNG, JPEG"):
        demo.load_upload(text)
    big = tmp_path / "big.png"
    Image.new("L", (200, 100)).save(big)
    with pytest.raises(UploadError, match="200x100 pixels; the demo takes images of at most 10,000"):
        demo.load_upload(big)
    with pytest.raises(UploadError, match="upload a PNG"):
        demo.load_upload(None)


def test_conditional_generation_grid_is_seeded():
    demo = DemoModel(vgzoo.create("cgan_embed_digits", pretrained=True))
    assert demo.class_names() == [str(i) for i in range(10)]
    grid = demo.generate([3, 7], seed=1, per_class=5)
    # 16 px digits scaled 4x to 64 px cells, 2 px padding: 2 rows x 5 columns
    assert grid.size == (5 * 66 + 2, 2 * 66 + 2)
    assert demo.generate([3, 7], seed=1, per_class=5).tobytes() == grid.tobytes()
    assert demo.generate([3, 7], seed=2, per_class=5).tobytes() != grid.tobytes()


def test_unconditional_generation_grid():
    demo = DemoModel(tiny("gan_vanilla"))
    assert demo.generate(None, seed=0, per_class=6).size == (3 * 66 + 2, 2 * 66 + 2)


def test_classification_top5_and_attention_overlay(photo):
    demo = DemoModel(tiny("vit_ti16_scratch"))
    top, overlay = demo.classify(demo.load_upload(photo))
    assert len(top) == 5 and 0 < sum(top.values()) <= 1.0 + 1e-6
    assert list(top.values()) == sorted(top.values(), reverse=True)
    assert overlay is not None and overlay.size == (70, 45)  # drawn over the upload itself


def test_restoration_shows_degraded_and_restored(photo):
    demo = DemoModel(tiny("restoration_unet"))
    degraded, restored, psnr = demo.restore(demo.load_upload(photo), seed=0)
    assert degraded.size == restored.size == (16, 16) and psnr > 0


def test_models_of_other_tasks_and_folders(tmp_path):
    model = tiny("pix2pix_unet128")
    vgzoo.save_pretrained(model, tmp_path / "run" / "final")
    loaded = load_demo_model(tmp_path / "run")  # a run folder shows its final model
    assert loaded.pretrained_cfg["architecture"] == "pix2pix_unet128"
    model.pretrained_cfg = {**model.pretrained_cfg, "task": "segmentation"}
    with pytest.raises(ValueError, match="vgzoo demo shows models of task"):
        DemoModel(model)


@pytest.mark.parametrize("name", ["pix2pix_unet128", "cyclegan_resnet6", "cgan_embed", "gan_vanilla",
                                  "vit_ti16_scratch", "restoration_unet"])
def test_every_task_builds_a_page(name):
    pytest.importorskip("gradio")
    page = build_demo(DemoModel(tiny(name)))
    ids = {getattr(block, "elem_id", None) for block in page.blocks.values()}
    assert {"run", "output-image"} <= ids
    assert page.vgzoo_max_file_size == f"{10 * 1024 * 1024}b"


def test_missing_gradio_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "gradio", None)  # import gradio now raises ImportError
    with pytest.raises(DemoDependencyError, match=r"pip install 'vgzoo\[demo\]'"):
        build_demo(DemoModel(tiny("cgan_embed")))
    from vgzoo.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["demo", "cgan_embed"])
    assert exit_info.value.code == 1


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_http(url: str, proc: subprocess.Popen, log: Path, timeout: float = 180) -> None:
    """Until ``url`` answers 200 (the demo imports torch and Gradio first: slow on a busy machine)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the demo exited with {proc.returncode}: {log.read_text()}")
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"{url} did not answer within {timeout} s: {log.read_text()}")


@pytest.mark.slow
def test_uploads_stay_private_and_are_deleted_on_exit_with_leftovers_of_dead_demos(tmp_path, photo):
    """A real `vgzoo demo` process: both uploads (one rejected) and its PNG live in its own 0700 folder, which goes
    when it is stopped (SIGTERM); a folder left by a demo that was killed is swept at the next start."""
    client_module = pytest.importorskip("gradio_client")
    tmp = tmp_path / "tmp"  # the demo's TMPDIR, where Gradio and the demo would put their files
    tmp.mkdir()
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()
    stale = tmp / f"vgzoo-demo-{ended.pid}-k1ll3d"  # what a SIGKILLed demo leaves
    (stale / "gradio").mkdir(parents=True)
    (stale / "gradio" / "someone.png").write_bytes(b"an old upload")
    old = tmp / "vgzoo-demo-k3pt_02a"  # earlier versions never removed their folder
    old.mkdir()
    (old / "translated-x.png").write_bytes(b"an old output")
    live = tmp / f"vgzoo-demo-{os.getpid()}-l1ve"  # a demo that still runs: not touched
    live.mkdir()
    (tmp / "vgzoo-demo-notes").mkdir()  # not a demo's folder
    model = tmp_path / "tiny-pix2pix"
    vgzoo.save_pretrained(tiny("pix2pix_unet128"), model)
    notes = tmp_path / "notes.png"
    notes.write_text("not an image")
    port = _free_port()
    env = {**os.environ, "TMPDIR": str(tmp), "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1"}
    env.pop("GRADIO_TEMP_DIR", None)
    log = tmp_path / "demo.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "vgzoo", "demo", str(model), "--port", str(port)], env=env,
                                stdout=out, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}/"
        _wait_http(url, proc, log)
        assert not stale.exists() and not old.exists() and live.is_dir()
        (work,) = [p for p in tmp.iterdir() if p.name.startswith(f"vgzoo-demo-{proc.pid}-")]
        assert stat.S_IMODE(work.stat().st_mode) == 0o700
        client = client_module.Client(url, download_files=False, verbose=False)
        client.predict(client_module.handle_file(str(photo)), "AtoB", api_name="/run")
        with pytest.raises(Exception, match="notes.png is not an image"):
            client.predict(client_module.handle_file(str(notes)), "AtoB", api_name="/run")
        stored = [p.name for p in work.rglob("*") if p.is_file()]
        assert {"photo.png", "notes.png"} <= set(stored), stored  # Gradio's copies of both uploads
        assert any(name.startswith("translated-") for name in stored), stored  # the PNG offered for download
        assert sorted(os.listdir(tmp)) == sorted([work.name, live.name, "vgzoo-demo-notes"])  # no TMPDIR/gradio
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    assert sorted(os.listdir(tmp)) == sorted([live.name, "vgzoo-demo-notes"]), log.read_text()


def _direction_radio(page):
    return next(b for b in page.blocks.values() if getattr(b, "elem_id", None) == "direction")


def test_the_direction_switch_follows_the_models_directions_not_the_task_name(plugin_task):
    pytest.importorskip("gradio")
    plugin_task("two_way_fake", "unpaired_translation")
    plugin_task("one_way_fake", "paired_translation", demo_page=None)
    two_way = tiny("cyclegan_resnet6")
    two_way.pretrained_cfg = {**two_way.pretrained_cfg, "task": "two_way_fake"}
    one_way = tiny("pix2pix_unet128")
    one_way.pretrained_cfg = {**one_way.pretrained_cfg, "task": "one_way_fake"}
    both, single = DemoModel(two_way), DemoModel(one_way)
    assert (both.page, both.directions) == ("translation", ("AtoB", "BtoA"))
    assert single.directions == ("AtoB",) and single.page == "restoration"  # no demo_page: picked from the output
    radio = _direction_radio(build_demo(both))
    assert radio.visible and [value for _, value in radio.choices] == ["AtoB", "BtoA"]
    plugin_task("one_way_page_fake", "paired_translation")
    one_way.pretrained_cfg = {**one_way.pretrained_cfg, "task": "one_way_page_fake"}
    radio = _direction_radio(build_demo(DemoModel(one_way)))
    assert not radio.visible and [value for _, value in radio.choices] == ["AtoB"]
    # the built-in tasks keep their pages: CycleGAN offers both directions, pix2pix none to choose
    assert _direction_radio(build_demo(DemoModel(tiny("cyclegan_resnet6")))).visible
    assert not _direction_radio(build_demo(DemoModel(tiny("pix2pix_unet128")))).visible
