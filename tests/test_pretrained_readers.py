"""A tag published as several files in a foreign layout: fetched through the download layer, read by its reader.

The tag ``tiny_reader_net.pair`` names two files on a loopback server (through ``VGZOO_MIRROR``): the stem in a
safetensors file with foreign key names and the head as JSON, the layout a plugin's upstream might publish. Its
reader is :func:`read_pair` below, a pure function of the files as the plugin contract asks. ``vgzoo convert``
finds a converter for the same reader through a ``vgzoo.converters`` entry point.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from _http import http_server  # noqa: F401  (fixture)
from _hub_server import HubStandIn, _Repo
from _tiny import TinyNet
from click.testing import CliRunner
from safetensors.torch import load_file, save, save_file

import vgzoo
from vgzoo import _registry, conversion, converters
from vgzoo._plugins import EntryPointRecord
from vgzoo.cli import cli
from vgzoo.download import sha256_file
from vgzoo.errors import DownloadError, OfflineError, WeightsError

NAME = "tiny_reader_net"
STEM_URL = "http://weights.example.org/tiny/stem.safetensors"
HEAD_URL = "http://weights.example.org/tiny/head.json"
READER = f"{__name__}:read_pair"
WIDTH = 6
ABSURD = 10**7  # a width whose real weights would take about 1 GB: only ever built on the meta device


def read_pair(files: dict[str, Path], cfg) -> vgzoo.ConvertedWeights:
    """The stem in ``conv/w``, ``conv/b`` (safetensors) and the head as nested lists (JSON) -> TinyNet's keys."""
    stem = load_file(str(files["stem"]))
    head = json.loads(files["head"].read_text())
    width = stem["conv/w"].shape[0]
    return vgzoo.ConvertedWeights(
        config={"width": width, "num_classes": len(head["bias"])},
        state_dict={"stem.weight": stem["conv/w"], "stem.bias": stem["conv/b"],
                    "head.weight": torch.tensor(head["weight"]), "head.bias": torch.tensor(head["bias"])},
    )


def read_absurd(files: dict[str, Path], cfg) -> vgzoo.ConvertedWeights:
    """A reader whose config asks for a huge width that its tensors do not have."""
    good = read_pair(files, cfg)
    return vgzoo.ConvertedWeights(config={**good.config, "width": ABSURD}, state_dict=good.state_dict)


def published_files(seed: int = 0) -> tuple[bytes, bytes, dict[str, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    sd = {"stem.weight": torch.randn(WIDTH, 3, 3, 3, generator=g), "stem.bias": torch.randn(WIDTH, generator=g),
          "head.weight": torch.randn(4, WIDTH, generator=g), "head.bias": torch.randn(4, generator=g)}
    stem = save({"conv/w": sd["stem.weight"], "conv/b": sd["stem.bias"]})
    head = json.dumps({"weight": sd["head.weight"].tolist(), "bias": sd["head.bias"].tolist()}).encode()
    return stem, head, sd


class RecordingNet(TinyNet):
    """TinyNet that records the device and width of every construction (to see what was allocated)."""

    built: list[tuple[int, str]] = []

    def __init__(self, in_chans: int = 3, num_classes: int = 5, width: int = 4) -> None:
        super().__init__(in_chans, num_classes, width)
        RecordingNet.built.append((width, self.stem.weight.device.type))


def register_tags() -> None:
    """Register ``tiny_reader_net`` with its reader tags (at run time: no entry point, no installed package)."""
    base = {"input_size": (3, 8, 8), "mean": (0.5,) * 3, "std": (0.5,) * 3, "paper": "none: a test fixture"}
    files = {"stem": STEM_URL, "head": HEAD_URL}
    cfgs = {
        "": _registry.make_cfg(**base),
        "pair": _registry.make_cfg(**base, reader=READER, files=files, description="two published files"),
        "absurd": _registry.make_cfg(**base, reader=f"{__name__}:read_absurd", files=files),
        "hub": _registry.make_cfg(**base, reader=READER, hf_hub_id="org/tiny-pair",
                                  hf_hub_files={"stem": "weights/stem.safetensors", "head": "head.json"}),
    }
    vgzoo.register_model(NAME, RecordingNet, family="tiny", task="classification", cfgs=cfgs)


@pytest.fixture
def tiny_tags():
    register_tags()
    RecordingNet.built = []
    yield
    _registry._specs.pop(NAME, None)


@pytest.fixture
def cache(tmp_path, monkeypatch, http_server):  # noqa: F811
    monkeypatch.setenv("VGZOO_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("VGZOO_MIRROR", http_server.url)
    monkeypatch.delenv("VGZOO_OFFLINE", raising=False)
    return tmp_path / "cache"


def _cached_files(root: Path) -> list[str]:
    """The files in the cache, less the download layer's lock files (``.locks/``: OS locks, not data)."""
    if not root.exists():
        return []
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and not p.name.endswith(".lock"))


def test_config_validation_names_what_is_wrong():
    base = {"input_size": (3, 8, 8), "mean": (0.5,) * 3, "std": (0.5,) * 3, "paper": "p"}
    with pytest.raises(ValueError, match="needs reader="):
        _registry.make_cfg(**base, files={"a": STEM_URL})
    with pytest.raises(ValueError, match="both url= and files="):
        _registry.make_cfg(**base, reader=READER, url=STEM_URL, files={"a": STEM_URL})
    with pytest.raises(ValueError, match="without hf_hub_id="):
        _registry.make_cfg(**base, reader=READER, hf_hub_files={"a": "a.bin"})
    with pytest.raises(ValueError, match="package.module:function"):
        _registry.make_cfg(**base, reader="no_colon", url=STEM_URL)
    single = _registry.make_cfg(**base, reader=READER, url=STEM_URL)
    assert single.has_weights and not single.files


def test_two_files_through_the_mirror_converted_once_then_offline(tiny_tags, cache, http_server, monkeypatch):  # noqa: F811
    stem, head, sd = published_files()
    http_server.add("/tiny/stem.safetensors", stem)
    http_server.add("/tiny/head.json", head)
    model = vgzoo.create(f"{NAME}.pair", pretrained=True)
    for key, value in sd.items():
        assert torch.equal(model.state_dict()[key], value), key
    assert model.config["width"] == WIDTH and model.config["num_classes"] == 4  # the reader's config
    assert STEM_URL in model.pretrained_cfg["weight_source"] and HEAD_URL in model.pretrained_cfg["weight_source"]
    folder = cache / "models" / f"{NAME}.pair"
    assert {"downloads/tiny/stem.safetensors", "downloads/tiny/head.json", f"models/{NAME}.pair/model.safetensors",
            f"models/{NAME}.pair/config.json", f"models/{NAME}.pair/model.safetensors.sha256"
            } <= set(_cached_files(cache))
    assert RecordingNet.built[0] == (WIDTH, "meta")  # checked before anything was allocated

    http_server.stop()
    monkeypatch.setenv("VGZOO_OFFLINE", "1")
    monkeypatch.setattr(conversion, "read_files", lambda *a, **k: pytest.fail("the files were read again"))
    again = vgzoo.create(f"{NAME}.pair", pretrained=True)
    assert all(torch.equal(again.state_dict()[k], v) for k, v in sd.items())
    assert http_server.requests.count("/tiny/stem.safetensors") == 1
    assert http_server.requests.count("/tiny/head.json") == 1

    # a converted folder changed behind vgzoo's back is noticed and converted again from the checked downloads
    monkeypatch.undo()
    monkeypatch.setenv("VGZOO_CACHE", str(cache))
    monkeypatch.setenv("VGZOO_OFFLINE", "1")
    tampered = {k: torch.zeros_like(v) for k, v in sd.items()}
    (folder / "model.safetensors").write_bytes(save(tampered))
    with pytest.warns(UserWarning, match="changed since it was converted"):
        healed = vgzoo.create(f"{NAME}.pair", pretrained=True)
    assert torch.equal(healed.state_dict()["head.bias"], sd["head.bias"])


def _flip_last_byte(path: Path) -> None:
    """Damage a safetensors file the quiet way: its header still parses, one number of the last tensor changes."""
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))


def test_a_damaged_converted_file_that_cannot_be_converted_again_is_named(tiny_tags, cache, http_server,  # noqa: F811
                                                                           monkeypatch):
    stem, head, _ = published_files()
    http_server.add("/tiny/stem.safetensors", stem)
    http_server.add("/tiny/head.json", head)
    vgzoo.create(f"{NAME}.pair", pretrained=True)
    folder = cache / "models" / f"{NAME}.pair"
    weights = folder / "model.safetensors"
    _flip_last_byte(weights)
    shutil.rmtree(cache / "downloads")  # the published files are no longer in the cache,
    monkeypatch.setenv("VGZOO_OFFLINE", "1")  # and cannot be fetched again
    with pytest.warns(UserWarning, match="changed since it was converted"), pytest.raises(WeightsError) as info:
        vgzoo.create(f"{NAME}.pair", pretrained=True)
    message = str(info.value)
    assert f"{str(weights)!r} changed since it was converted" in message and "damaged or replaced" in message
    assert "converting the published files again failed" in message and "VGZOO_OFFLINE" in message
    assert f"Delete {str(folder)!r}" in message


def test_a_converted_folder_without_a_record_gets_one_and_is_checked_from_then_on(tiny_tags, cache,
                                                                                 http_server):  # noqa: F811
    stem, head, sd = published_files()
    http_server.add("/tiny/stem.safetensors", stem)
    http_server.add("/tiny/head.json", head)
    vgzoo.create(f"{NAME}.pair", pretrained=True)
    weights = cache / "models" / f"{NAME}.pair" / "model.safetensors"
    record = weights.with_name("model.safetensors.sha256")
    recorded = record.read_text()
    record.unlink()  # as a folder converted by hand, or by a version that kept no record
    vgzoo.create(f"{NAME}.pair", pretrained=True)
    assert record.read_text() == recorded
    _flip_last_byte(weights)
    with pytest.warns(UserWarning, match="changed since it was converted"):
        healed = vgzoo.create(f"{NAME}.pair", pretrained=True)
    assert all(torch.equal(healed.state_dict()[k], v) for k, v in sd.items())
    # the new file's hash is recorded (not byte-equal to the first: safetensors orders its metadata at random)
    assert record.read_text().split()[0] == sha256_file(weights)


def test_a_404_on_the_second_file_leaves_no_model(tiny_tags, cache, http_server):  # noqa: F811
    stem, _, _ = published_files()
    http_server.add("/tiny/stem.safetensors", stem)
    with pytest.raises(DownloadError, match="404"):
        vgzoo.create(f"{NAME}.pair", pretrained=True)
    files = _cached_files(cache)
    assert not any(f.startswith("models/") for f in files)  # no converted folder
    assert not any(f.endswith(".part") for f in files) and "downloads/tiny/head.json" not in files


def test_offline_without_the_files_names_the_url_and_the_place(tiny_tags, cache, monkeypatch):
    monkeypatch.setenv("VGZOO_OFFLINE", "1")
    with pytest.raises(OfflineError) as info:
        vgzoo.create(f"{NAME}.pair", pretrained=True)
    assert STEM_URL in str(info.value) and str(cache / "downloads" / "tiny" / "stem.safetensors") in str(info.value)


def test_shapes_that_do_not_fit_are_refused_before_allocating_and_removed(tiny_tags, cache, http_server):  # noqa: F811
    stem, head, _ = published_files()
    http_server.add("/tiny/stem.safetensors", stem)
    http_server.add("/tiny/head.json", head)
    with pytest.raises(WeightsError) as info:
        vgzoo.create(f"{NAME}.absurd", pretrained=True)
    message = str(info.value)
    assert f"stem.weight: checkpoint ({WIDTH}, 3, 3, 3) vs model ({ABSURD}, 3, 3, 3)" in message
    assert "removed from the cache" in message
    assert RecordingNet.built == [(ABSURD, "meta")]  # never built for real at the absurd width
    assert _cached_files(cache) == []  # neither the downloads nor a converted folder


def test_hub_files_through_hf_endpoint(tmp_path):
    """huggingface_hub reads HF_ENDPOINT when it is imported, so the client runs in a subprocess."""
    stem, head, sd = published_files(seed=3)
    save_file(sd, tmp_path / "expected.safetensors")
    script = f"""
import sys
sys.path.insert(0, {str(Path(__file__).parent)!r})
import torch, vgzoo
from safetensors.torch import load_file
import {__name__} as t
t.register_tags()
model = vgzoo.create("{NAME}.hub", pretrained=True)
expected = load_file({str(tmp_path / "expected.safetensors")!r})
assert all(torch.equal(model.state_dict()[k], v) for k, v in expected.items())
print(model.pretrained_cfg["weight_source"])
"""
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "VGZOO_OFFLINE", "VGZOO_MIRROR")
           and "proxy" not in k.lower()}
    env.update(HF_HUB_CACHE=str(tmp_path / "hf"), VGZOO_CACHE=str(tmp_path / "cache"), HF_HUB_DISABLE_TELEMETRY="1")
    with HubStandIn() as hub:
        repo = hub.repos["org/tiny-pair"] = _Repo(private=False)
        repo.commits[repo.branches["main"]].update({"weights/stem.safetensors": stem, "head.json": head})
        proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                              env={**env, "HF_ENDPOINT": hub.url})
        fetched = [path for method, path, _ in hub.requests if method == "GET" and "/resolve/" in path]
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().endswith("(hf-hub:org/tiny-pair)")
    assert any(p.endswith("weights/stem.safetensors") for p in fetched)
    assert any(p.endswith("head.json") for p in fetched)
    # converted once: offline, with the Hub gone, it still loads
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                          env={**env, "HF_ENDPOINT": hub.url, "VGZOO_OFFLINE": "1"})
    assert proc.returncode == 0, proc.stderr


# ------------------------------------------------------------------------------------------- vgzoo convert
TINY_CONVERTER = vgzoo.Converter(model=NAME, reader=READER, description="Two tiny files -> tiny_reader_net.",
                                 file_names=("stem", "head"))


@pytest.fixture
def converter_entry_point(monkeypatch):
    """A ``vgzoo.converters`` entry point as installed metadata would declare it (distribution vgzoo-tests)."""
    record = EntryPointRecord("tiny-pair", f"{__name__}:TINY_CONVERTER", "vgzoo-tests")
    monkeypatch.setitem(converters.CONVERTERS.records(), "tiny-pair", [record])


def test_vgzoo_convert_finds_a_plugin_converter(tiny_tags, converter_entry_point, tmp_path):
    stem, head, sd = published_files(seed=5)
    (tmp_path / "stem.safetensors").write_bytes(stem)
    (tmp_path / "head.json").write_bytes(head)
    runner = CliRunner()
    listed = runner.invoke(cli, ["convert", "--help"])
    assert listed.exit_code == 0 and {"tiny-pair", "timm-vit", "pix2pix-reference"} <= set(listed.output.split())
    args = ["convert", "tiny-pair", str(tmp_path / "stem.safetensors"), str(tmp_path / "head.json")]
    result = runner.invoke(cli, [*args, str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    model = vgzoo.create(f"local-dir:{tmp_path / 'out'}")
    assert all(torch.equal(model.state_dict()[k], v) for k, v in sd.items())

    before = (tmp_path / "out" / "model.safetensors").read_bytes()
    again = runner.invoke(cli, [*args, str(tmp_path / "out")])
    assert again.exit_code == 1 and "--overwrite" in again.output
    assert (tmp_path / "out" / "model.safetensors").read_bytes() == before  # nothing lost
    assert runner.invoke(cli, [*args, str(tmp_path / "out"), "--overwrite"]).exit_code == 0

    typo = runner.invoke(cli, ["convert", "tiny-pia", "a", "b"])
    assert typo.exit_code == 2
    assert "Unknown converter 'tiny-pia'" in typo.output and "tiny-pair, timm-vit" in typo.output.replace(
        "pix2pix-reference, ", "")
