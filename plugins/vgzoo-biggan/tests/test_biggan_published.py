"""The published tags end to end against loopback servers (``VGZOO_MIRROR``, ``HF_ENDPOINT``).

Files are served in the exact upstream format: ``config.json`` and a ``torch.save`` of a plain state dict with the
reference's keys. The mirror test serves the full-size 128 px generator (random values, the published shapes); the
Hub test serves the tiny fixture, whose images the result must reproduce.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from _biggan_fixtures import REFERENCE
from _http import http_server  # noqa: F401  (fixture)
from vgzoo_biggan.convert import published_to_vgzoo
from vgzoo_biggan.model import BigGANDeep

import vgzoo
from vgzoo.errors import VgzooError

needs_reference = pytest.mark.skipif(not REFERENCE.is_dir(), reason=f"{REFERENCE} (beside the clone) is absent")
S3 = "/models.huggingface.co/biggan/biggan-deep-128-"


def published_128(seed: int = 0) -> tuple[bytes, bytes, dict[str, torch.Tensor]]:
    """``config.json`` and ``pytorch_model.bin`` of biggan-deep-128 in the published format, random values."""
    shapes = json.loads((REFERENCE / "published_shapes.json").read_text())["biggan-deep-128"]
    g = torch.Generator().manual_seed(seed)
    sd = {}
    for key, shape in shapes["state_dict"].items():
        if key.endswith("running_vars"):
            sd[key] = torch.rand(shape, generator=g) + 0.5
        elif not key.endswith(("weight_u", "weight_v")):
            sd[key] = torch.randn(shape, generator=g) * 0.02
    for key in [k for k in sd if k.endswith("weight_orig")]:  # u and v converged, as in a trained network
        w, v = sd[key].flatten(1), torch.ones(sd[key][0].numel())
        for _ in range(10):
            u = torch.nn.functional.normalize(w @ v, dim=0, eps=1e-12)
            v = torch.nn.functional.normalize(w.t() @ u, dim=0, eps=1e-12)
        sd[key[:-len("orig")] + "u"], sd[key[:-len("orig")] + "v"] = u, v
    sd = {k: sd[k] for k in shapes["state_dict"]}  # the published order
    buf = io.BytesIO()
    torch.save(sd, buf)
    return json.dumps(shapes["config"]).encode(), buf.getvalue(), sd


@pytest.fixture
def cache(tmp_path, monkeypatch, http_server):  # noqa: F811
    monkeypatch.setenv("VGZOO_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("VGZOO_MIRROR", http_server.url)
    monkeypatch.delenv("VGZOO_OFFLINE", raising=False)
    return tmp_path / "cache"


@needs_reference
@pytest.mark.slow
def test_mirror_serves_the_128_px_files_converted_once_then_offline(cache, http_server, monkeypatch):  # noqa: F811
    config, weights, sd = published_128()
    http_server.add(S3 + "config.json", config)
    http_server.add(S3 + "pytorch_model.bin", weights)
    model = vgzoo.create("biggan_deep.128", pretrained=True).eval()
    assert isinstance(model, BigGANDeep) and model.img_size == 128 and model.num_classes == 1000
    expected = published_to_vgzoo(sd, 8)
    state = model.state_dict()
    assert state.keys() == expected.keys() and all(torch.equal(state[k], v) for k, v in expected.items())
    assert model.pretrained_cfg["license"] == "Apache-2.0" and model.class_names[207] == "golden retriever"
    z = model.latents_for_seeds([0], 0.4)
    with torch.no_grad():
        first = model.generate_images(z, torch.tensor([207]), 0.4)
    assert first.shape == (1, 3, 128, 128) and torch.isfinite(first).all()
    folder = cache / "models" / "biggan_deep_generator.128"
    assert (folder / "model.safetensors").is_file()
    assert http_server.requests.count(S3 + "pytorch_model.bin") == 1

    http_server.stop()
    monkeypatch.setenv("VGZOO_OFFLINE", "1")
    monkeypatch.setattr(torch, "load", lambda *a, **k: pytest.fail("the pickle was read again"))
    again = vgzoo.create("biggan_deep.128", pretrained=True).eval()
    assert all(torch.equal(again.state_dict()[k], v) for k, v in state.items())
    with torch.no_grad():
        assert torch.equal(again.generate_images(z, torch.tensor([207]), 0.4), first)


@needs_reference
def test_a_missing_or_cut_file_is_a_clear_error_and_nothing_is_kept(cache, http_server):  # noqa: F811
    tiny_config = (REFERENCE / "tiny" / "config.json").read_bytes()
    http_server.add(S3 + "config.json", tiny_config)
    with pytest.raises(VgzooError) as info:  # the weights answer 404
        vgzoo.create("biggan_deep.128", pretrained=True)
    assert "404" in str(info.value) and "biggan-deep-128-pytorch_model.bin" in str(info.value)

    weights = (REFERENCE / "tiny" / "pytorch_model.bin").read_bytes()
    http_server.truncate(S3 + "pytorch_model.bin", weights, keep=len(weights) // 3)
    with pytest.raises(VgzooError) as info:
        vgzoo.create("biggan_deep.128", pretrained=True)
    assert "biggan-deep-128-pytorch_model.bin" in str(info.value)
    assert not (cache / "models" / "biggan_deep_generator.128" / "model.safetensors").exists()

    # whole files of another generator (the tiny one) are refused for the tag, and dropped from the cache
    http_server.truncated.clear()
    http_server.add(S3 + "pytorch_model.bin", weights)
    with pytest.raises(VgzooError, match=r"another generator than this tag's: img_size=64 \(the tag has 128\), "
                                         r"num_classes=20"):
        vgzoo.create("biggan_deep.128", pretrained=True)
    assert not (cache / "models" / "biggan_deep_generator.128").exists()
    assert not list((cache / "downloads").rglob("*pytorch_model.bin"))


HUB_SCRIPT = """
import torch, vgzoo
from safetensors.torch import load_file
from vgzoo import _registry
from vgzoo_biggan.model import PAPER, BigGANDeep
cfg = _registry.make_cfg(input_size=(3, 64, 64), mean=(0.5,) * 3, std=(0.5,) * 3, paper=PAPER,
                         reader="vgzoo_biggan.convert:read", hf_hub_id="org/biggan-tiny",
                         hf_hub_files={"config": "config.json", "weights": "pytorch_model.bin"})
vgzoo.register_model("biggan_hub_test", BigGANDeep, family="biggan", task="conditional_generation",
                     cfgs={"": _registry.make_cfg(input_size=(3, 64, 64), mean=(0.5,) * 3, std=(0.5,) * 3,
                                                  paper=PAPER), "hub": cfg})
model = vgzoo.create("biggan_hub_test.hub", pretrained=True).eval()
io = load_file(REFERENCE_IO)
with torch.no_grad():
    image = model(io["z_04"], io["class_vector_04"], 0.4)
assert (image - io["image_04"]).abs().max() < 1e-4, (image - io["image_04"]).abs().max()
print(model.pretrained_cfg["weight_source"])
"""


@needs_reference
def test_hub_files_through_hf_endpoint(tmp_path):
    from _hub_server import HubStandIn, _Repo

    script = HUB_SCRIPT.replace("REFERENCE_IO", repr(str(REFERENCE / "tiny.io.safetensors")))
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "VGZOO_OFFLINE", "VGZOO_MIRROR")
           and "proxy" not in k.lower()}
    env.update(HF_HUB_CACHE=str(tmp_path / "hf"), VGZOO_CACHE=str(tmp_path / "cache"), HF_HUB_DISABLE_TELEMETRY="1")
    with HubStandIn() as hub:
        repo = hub.repos["org/biggan-tiny"] = _Repo(private=False)
        repo.commits[repo.branches["main"]].update({
            "config.json": (REFERENCE / "tiny" / "config.json").read_bytes(),
            "pytorch_model.bin": (REFERENCE / "tiny" / "pytorch_model.bin").read_bytes()})
        proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                              env={**env, "HF_ENDPOINT": hub.url}, cwd=Path(__file__).parent)
        fetched = [path for method, path, _ in hub.requests if method == "GET" and "/resolve/" in path]
    assert proc.returncode == 0, proc.stderr
    assert "hf-hub:org/biggan-tiny" in proc.stdout
    assert any(p.endswith("pytorch_model.bin") for p in fetched) and any(p.endswith("config.json") for p in fetched)
    # converted once: with the Hub gone and VGZOO_OFFLINE set, it still loads
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                          env={**env, "HF_ENDPOINT": "http://127.0.0.1:9", "VGZOO_OFFLINE": "1"})
    assert proc.returncode == 0, proc.stderr
