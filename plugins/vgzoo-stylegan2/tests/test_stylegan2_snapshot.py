"""Reading reference snapshots as data: the tiny fixtures reproduce the reference's outputs; nothing is run."""

from __future__ import annotations

import os
import pickle
import pickletools
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from _sg2_fixtures import REF, needs_ref
from safetensors.torch import load_file
from vgzoo_stylegan2.model import StyleGAN2, StyleGAN2Conditional, model_class
from vgzoo_stylegan2.snapshot import (
    PersistentRecord,
    UnsafeSnapshotError,
    convert_snapshot,
    load_snapshot,
)

from vgzoo.errors import WeightsError

pytestmark = needs_ref
MARKER = Path("/tmp/vgzoo-untrusted-code-ran")
# The fixtures' images and logits were computed with the reference's float16 blocks (num_fp16_res > 0), which
# vgzoo runs in float32 off CUDA; the reference's own code gives the same float32 result as vgzoo (to 1e-6)
# with force_fp32=True. So images and logits are compared within float16's resolution of the fixture: the
# largest difference within 2**-8 of the largest value, the mean difference within 2**-9 of the mean value.
# The latents (computed in float32 by the reference) are compared within 1e-4.
FP16_MAX, FP16_MEAN = 2.0**-8, 2.0**-9


def load(name: str):
    config, state_dict = convert_snapshot(REF / f"{name}.pkl")
    model = model_class(config)(**config).eval()
    model.load_state_dict(state_dict, strict=True)
    return model, load_file(REF / f"{name}.io.safetensors")


def assert_within_fp16(ours: torch.Tensor, ref: torch.Tensor, what: str) -> None:
    diff = (ours - ref).abs()
    assert ours.shape == ref.shape, what
    assert diff.max() <= FP16_MAX * ref.abs().max(), f"{what}: max |diff| {diff.max():.3g}"
    assert diff.mean() <= FP16_MEAN * ref.abs().mean(), f"{what}: mean |diff| {diff.mean():.3g}"


@pytest.mark.parametrize("name, cls", [("tiny_uncond", StyleGAN2), ("tiny_cond", StyleGAN2Conditional)])
def test_tiny_snapshots_reproduce_the_reference(name, cls):
    model, io = load(name)
    assert type(model) is cls
    z, c = io["z"], io["c"]
    G = model.G_ema
    with torch.no_grad():
        for tag, psi in (("psi1", 1.0), ("psi05", 0.5)):
            ws = G.mapping(z, c, truncation_psi=psi)
            assert (ws - io[f"ws_{tag}"]).abs().max() <= 1e-4, f"ws_{tag}"
            assert_within_fp16(G.synthesis(io[f"ws_{tag}"], noise_mode="const"), io[f"img_{tag}"], f"img_{tag}")
            whole = G(z, c, truncation_psi=psi, noise_mode="const")
            assert_within_fp16(whole, io[f"img_{tag}_whole"], f"img_{tag}_whole")
            assert_within_fp16(model.D(io[f"img_{tag}"], c), io[f"D_{tag}"], f"D_{tag}")
        assert_within_fp16(G(z, c, noise_mode="none"), io["img_psi1_nonoise"], "img_psi1_nonoise")
        # the noise matters: without it the image is not the fixture's const-noise image
        assert (G(z, c, noise_mode="none") - io["img_psi1"]).abs().max() > 10 * FP16_MAX * io["img_psi1"].abs().max()


def test_records_hold_the_constructor_arguments_and_the_source_as_text():
    snapshot = load_snapshot(REF / "tiny_uncond.pkl")
    assert set(snapshot) >= {"G", "D", "G_ema", "augment_pipe"}
    record = snapshot["G_ema"]
    assert isinstance(record, PersistentRecord) and record.class_name == "Generator"
    assert record.init_kwargs["mapping_kwargs"] == {"num_layers": 2}
    assert "class Generator" in record.module_src  # kept as text, never compiled
    assert record.tensors()["synthesis.b4.const"].shape == (32, 4, 4)


def embedded_source(path: Path) -> str:
    """The ``module_src`` string of a snapshot, found by walking the pickle's opcodes (nothing is unpickled)."""
    strings = [arg for op, arg, _ in pickletools.genops(path.read_bytes()) if isinstance(arg, str)]
    return strings[strings.index("module_src") + 1]


def test_malicious_snapshot_never_runs_its_code(tmp_path):
    MARKER.unlink(missing_ok=True)
    with pytest.raises(UnsafeSnapshotError, match=r"refusing 'torch\.nn\.modules\.linear\.Linear'"):
        convert_snapshot(REF / "malicious.pkl")
    assert not MARKER.exists()

    # The proof that the check can fail: the file's embedded source, run the way the reference's loader runs
    # it (with a stand-in for its torch_utils.persistence), does write the marker.
    source = embedded_source(REF / "malicious.pkl")
    assert str(MARKER) in source
    stub = tmp_path / "torch_utils"
    stub.mkdir()
    (stub / "__init__.py").write_text("")
    (stub / "persistence.py").write_text("def persistent_class(cls):\n    return cls\n")
    runner = tmp_path / "run_embedded.py"
    runner.write_text(textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(tmp_path)!r})
        exec(compile({source!r}, "<snapshot module_src>", "exec"), {{"__name__": "snapshot_module"}})
    """))
    try:
        subprocess.run([sys.executable, str(runner)], check=True, env={**os.environ, "PYTHONPATH": ""})
        assert MARKER.exists()
    finally:
        MARKER.unlink(missing_ok=True)


class _Evil:
    def __reduce__(self):
        return (os.system, ("true",))


@pytest.mark.parametrize("payload, name", [(_Evil(), "posix.system"), (print, "builtins.print"),
                                           (torch.nn.Linear(2, 2), "torch.nn.modules.linear.Linear")])
def test_anything_else_is_refused_by_name(tmp_path, payload, name):
    path = tmp_path / "snap.pkl"
    path.write_bytes(pickle.dumps({"G": payload}))
    with pytest.raises(UnsafeSnapshotError, match=f"refusing '{name}'"):
        load_snapshot(path)


def test_not_a_snapshot_is_explained(tmp_path):
    path = tmp_path / "junk.pkl"
    path.write_bytes(b"not a pickle")
    with pytest.raises(WeightsError, match="cannot be read as a StyleGAN2-ADA network snapshot"):
        load_snapshot(path)
    path.write_bytes(pickle.dumps({"G": 1, "D": 2, "G_ema": 3}))
    with pytest.raises(WeightsError, match="'G' is a int, not a recorded network"):
        convert_snapshot(path)
    path.write_bytes(pickle.dumps({"training_set_kwargs": None}))
    with pytest.raises(WeightsError, match=r"no network 'G' \(found \['training_set_kwargs'\]\)"):
        convert_snapshot(path)


def test_fp16_blocks_compute_as_the_reference_does(monkeypatch):
    """The float16 path (used on CUDA) forced on the CPU reproduces the fixture's float16 numbers: the class-conditional
    discriminator, whose 16 px block is float16, to 1e-5 (the reference's own arithmetic, op for op), and the images
    within float16's resolution (the fixture's CPU kernels round a few values differently)."""
    from vgzoo_stylegan2 import networks

    monkeypatch.setattr(networks, "_block_dtype",
                        lambda use_fp16, force_fp32, device: torch.float16 if use_fp16 and not force_fp32 else
                        torch.float32)
    model, io = load("tiny_cond")
    assert model.D.b16.use_fp16 and model.G_ema.synthesis.b16.use_fp16
    with torch.no_grad():
        for tag in ("psi1", "psi05"):
            assert (model.D(io[f"img_{tag}"], io["c"]) - io[f"D_{tag}"]).abs().max() <= 1e-5, tag
            image = model.G_ema.synthesis(io[f"ws_{tag}"], noise_mode="const")
            assert image.dtype == torch.float32
            assert_within_fp16(image, io[f"img_{tag}"], f"img_{tag} (float16 blocks)")
