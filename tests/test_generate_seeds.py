"""vgzoo generate for seeded generators (vgzoo.protocols.SeededSampler): seeds, truncation, classes, files, grid.

The model is a tiny SeededSampler defined here and registered at run time: a seed's latent is numpy's
``RandomState(seed).randn`` (StyleGAN's rule), truncation scales it, a fixed linear map makes the image.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image
from torch import nn

from vgzoo import _registry, register_model
from vgzoo.cli import cli
from vgzoo.generate import generate_seeds, parse_seeds, reference_uint8
from vgzoo.protocols import SeededSampler, ZooModel

NAME = "tiny_seeded_gan"


class TinySeeded(ZooModel, SeededSampler):
    """Latent -> 6x5 RGB image through one linear layer and tanh; conditional when ``num_classes`` > 0."""

    default_truncation = 0.7
    truncation_name = "psi"

    def __init__(self, z_dim: int = 4, num_classes: int = 0) -> None:
        super().__init__()
        self.z_dim = z_dim
        self.num_classes = num_classes or None
        self.class_names = ("cat", "dog", "golden retriever") if num_classes == 3 else None
        self.embed = nn.Embedding(max(num_classes, 1), z_dim)
        self.to_image = nn.Linear(z_dim, 3 * 6 * 5)
        self.pretrained_cfg = {"input_size": (3, 6, 5), "task": "generation"}

    def latents_for_seeds(self, seeds: list[int], truncation: float) -> torch.Tensor:
        z = np.stack([np.random.RandomState(s).randn(self.z_dim) for s in seeds])
        return torch.from_numpy(z).float() * truncation

    def generate_images(self, z: torch.Tensor, labels: torch.Tensor | None, truncation: float) -> torch.Tensor:
        if labels is not None:
            z = z + self.embed(labels)
        return torch.tanh(2 * self.to_image(z)).view(-1, 3, 6, 5)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.generate_images(z, None, 1.0)

    def example_inputs(self, batch_size: int = 2) -> tuple[torch.Tensor]:
        return (torch.randn(batch_size, self.z_dim),)


@pytest.fixture
def tiny_seeded():
    register_model(NAME, TinySeeded, family="tiny", task="generation",
                   cfgs={"input_size": (3, 6, 5), "mean": (0.5,) * 3, "std": (0.5,) * 3, "paper": "a test fixture"})
    yield NAME
    _registry._specs.pop(NAME, None)


def _expected(model: TinySeeded, seed: int, psi: float, label: int | None = None) -> np.ndarray:
    """The image the reference scripts would write for ``seed``: computed here without vgzoo.generate."""
    z = torch.from_numpy(np.random.RandomState(seed).randn(model.z_dim)[None]).float() * psi
    with torch.no_grad():
        img = model.generate_images(z, None if label is None else torch.tensor([label]), psi)
    return (img.permute(0, 2, 3, 1) * 127.5 + 128).clamp(0, 255).to(torch.uint8)[0].numpy()


def _pixels(path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im).copy()


def _run(*args):
    return CliRunner().invoke(cli, ["generate", *map(str, args)])


def test_parse_seeds():
    assert parse_seeds("0-7") == list(range(8))
    assert parse_seeds(" 1, 5,10-12 ") == [1, 5, 10, 11, 12]
    assert parse_seeds("4294967295") == [2**32 - 1]
    for bad, message in [("7-3", "backwards"), ("a", "not a seed"), ("-1", "not a seed"), ("", "no seed"),
                         ("1,1", "more than once"), ("0-2,2", "more than once"), ("4294967296", "2\\*\\*32")]:
        with pytest.raises(ValueError, match=message):
            parse_seeds(bad)


def test_reference_uint8_matches_the_reference_formula():
    x = torch.tensor([-1.5, -1.0, -0.0039, 0.0, 0.5, 0.999, 1.0, 2.0]).view(1, 1, 1, 8)
    got = reference_uint8(x).flatten().tolist()
    assert got == [0, 0, 127, 128, 191, 255, 255, 255]  # truncated, not rounded; clamped at both ends


def test_cli_unconditional_seeds_files_and_grid(tiny_seeded, tmp_path):
    out, grid = tmp_path / "imgs", tmp_path / "grid.png"
    result = _run(NAME, "--seeds", "0-2,9", "--psi", "0.5", "--out", out, "--grid", grid, "--scale", "1",
                  "--precision", "fp32")
    assert result.exit_code == 0, result.output
    assert "psi 0.5" in result.output and "random weights" in result.output
    assert sorted(p.name for p in out.iterdir()) == ["seed0000.png", "seed0001.png", "seed0002.png", "seed0009.png"]
    torch.manual_seed(0)
    model = TinySeeded()
    # the CLI built its own model (random init): compare against the files' own model through the library
    lib = generate_seeds(model, seeds=[0, 1, 2, 9], truncation=0.5, out_dir=tmp_path / "lib", grid=tmp_path / "g.png",
                         scale=1, precision="fp32")
    for seed, path in zip([0, 1, 2, 9], lib.images, strict=True):
        assert path.name == f"seed{seed:04d}.png"
        assert (_pixels(path) == _expected(model, seed, 0.5)).all()
    assert lib.truncation == 0.5 and lib.truncation_name == "psi" and lib.classes is None
    # four unconditional seeds: a 2x2 grid of 6x5 cells, 2 px apart; cell (1, 1) is seed 9
    g = _pixels(tmp_path / "g.png")
    assert g.shape == (2 + 2 * 8, 2 + 2 * 7, 3)
    assert (g[2 + 8 : 2 + 8 + 6, 2 + 7 : 2 + 7 + 5] == _expected(model, 9, 0.5)).all()
    assert _pixels(grid).shape == g.shape


def test_default_truncation_and_psi_alias(tiny_seeded, tmp_path):
    model = TinySeeded()
    a = generate_seeds(model, seeds=[3], out_dir=tmp_path / "a", precision="fp32")
    assert a.truncation == 0.7  # the model's default_truncation
    assert (_pixels(a.images[0]) == _expected(model, 3, 0.7)).all()
    assert not (_pixels(a.images[0]) == _expected(model, 3, 1.0)).all()
    for flag in ("--truncation", "--psi"):
        result = _run(NAME, "--seeds", "3", "--out", tmp_path / flag.strip("-"), flag, "0.25")
        assert result.exit_code == 0 and "psi 0.25" in result.output, result.output


def test_classes_by_index_and_name(tiny_seeded, tmp_path):
    torch.manual_seed(0)
    model = TinySeeded(num_classes=3)
    res = generate_seeds(model, seeds=[0, 4], classes=["Golden Retriever", 0], truncation=1.0,
                         out_dir=tmp_path / "out", grid=tmp_path / "grid.png", scale=1, precision="fp32")
    assert res.classes == [2, 0]
    names = [p.name for p in res.images]
    assert names == ["class0002-seed0000.png", "class0002-seed0004.png", "class0000-seed0000.png",
                     "class0000-seed0004.png"]
    assert (_pixels(res.images[1]) == _expected(model, 4, 1.0, label=2)).all()
    assert (_pixels(res.images[2]) == _expected(model, 0, 1.0, label=0)).all()
    g = _pixels(res.grid)  # a row per class (in the order asked), a column per seed
    assert g.shape == (2 + 2 * 8, 2 + 2 * 7, 3)
    assert (g[2 + 8 : 2 + 8 + 6, 2 : 2 + 5] == _expected(model, 0, 1.0, label=0)).all()
    one = generate_seeds(model, seeds=[5], classes=["dog"], out_dir=tmp_path / "one", precision="fp32")
    assert [p.name for p in one.images] == ["seed0005.png"]  # one class: seed%04d.png
    assert (_pixels(one.images[0]) == _expected(model, 5, 0.7, label=1)).all()


@pytest.mark.parametrize("classes, message", [
    (["retriever golden"], "not a class name"),
    (["dgo"], "Did you mean 'dog'"),
    ([3], r"outside \[0, 3\)"),
    (["cat", 0], "more than once"),
])
def test_bad_classes_are_named(tmp_path, classes, message):
    with pytest.raises(ValueError, match=message):
        generate_seeds(TinySeeded(num_classes=3), seeds=[0], classes=classes, out_dir=tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_cli_errors(tiny_seeded, tmp_path):
    out = tmp_path / "out"
    cases = [
        (["--seeds", "3-1", "--out", out], 2, "backwards"),
        (["--seeds", "0", "--class", "1", "--out", out], 1, "unconditional"),
        (["--seeds", "0", "--labels", "1", "--out", out], 2, "--labels: this model draws from seeds"),
        (["--seeds", "0", "--per-class", "2", "--out", out], 2, "--per-class"),
        (["--seeds", "0", "--out", tmp_path / "x.png"], 1, "--grid"),
        (["--seeds", "0"], 1, "nothing to write"),
        (["--seeds", "0", "--grid", tmp_path / "g.jpg"], 1, "ending in .png"),
    ]
    for args, code, message in cases:
        result = _run(NAME, *args)
        assert result.exit_code == code and message in result.output, (args, result.output)
    assert not out.exists() and not (tmp_path / "x.png").exists()


def test_seeded_options_on_a_cgan_are_refused(tmp_path):
    result = _run("cgan_embed_digits", "--seeds", "0-3", "--out", tmp_path / "g.png")
    assert result.exit_code == 2 and "--seeds need a seeded generator" in result.output, result.output
    result = _run("cgan_embed_digits", "--per-class", "1")
    assert result.exit_code == 2 and "Missing option '--out'" in result.output
    assert not (tmp_path / "g.png").exists()


@pytest.mark.parametrize(("size", "device", "expected"), [
    ((3, 256, 256), "cpu", 1),  # one 256 px image is already a CPU batch's worth of pixels
    ((3, 128, 128), "cpu", 4),
    ((1, 32, 32), "cpu", 8),  # small images: the usual batch
    ((3, 1024, 1024), "cpu", 1),  # never fewer than one
    ((3, 256, 256), "cuda", 8),  # a GPU takes the usual batch at any size
    (None, "cpu", 8),  # a model that does not say its size
])
def test_seed_batch_size_keeps_a_cpu_batch_within_its_pixels(size, device, expected):
    from vgzoo.generate import seed_batch_size

    model = TinySeeded()
    model.pretrained_cfg = {} if size is None else {"input_size": size}
    assert seed_batch_size(model, torch.device(device)) == expected


def test_a_seeded_family_sets_its_own_cpu_batch_pixels():
    from vgzoo.generate import seed_batch_size

    model = TinySeeded()
    model.pretrained_cfg = {"input_size": (3, 256, 256)}
    model.cpu_batch_pixels = 3 * 256 * 256
    assert seed_batch_size(model, torch.device("cpu")) == 3
    assert seed_batch_size(model, torch.device("cuda")) == 8  # a CPU budget only


def test_generate_seeds_batches_by_image_size_unless_told(tiny_seeded, tmp_path, monkeypatch):
    import vgzoo.generate as gen

    model = TinySeeded()
    batches = []
    draw = model.generate_images
    monkeypatch.setattr(model, "generate_images", lambda z, labels, psi: batches.append(len(z)) or draw(z, labels, psi))
    monkeypatch.setattr(gen, "CPU_BATCH_PIXELS", 2 * 6 * 5)  # two of these 6 x 5 images a batch on the CPU
    generate_seeds(model, seeds=list(range(5)), out_dir=tmp_path / "a", device="cpu", precision="fp32")
    assert batches == [2, 2, 1]
    batches.clear()
    generate_seeds(model, seeds=list(range(5)), out_dir=tmp_path / "b", device="cpu", precision="fp32", batch_size=4)
    assert batches == [4, 1]  # an explicit batch size wins
    for seed in range(5):  # the batching changes no pixel
        assert np.array_equal(_pixels(tmp_path / "a" / f"seed{seed:04d}.png"), _expected(model, seed, 0.7))


def test_a_failing_batch_leaves_no_file_of_the_earlier_ones(tmp_path, monkeypatch):
    model = TinySeeded()
    draw = model.generate_images
    calls = []

    def nan_in_the_third_batch(z, labels, psi):
        calls.append(len(z))
        images = draw(z, labels, psi)
        return images * float("nan") if len(calls) == 3 else images

    monkeypatch.setattr(model, "generate_images", nan_in_the_third_batch)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "seed0000.png").write_bytes(b"the user's file")
    with pytest.raises(ValueError, match="non-finite"):
        generate_seeds(model, seeds=list(range(6)), out_dir=tmp_path / "out", grid=tmp_path / "grid.png",
                       batch_size=2, precision="fp32")
    assert calls == [2, 2, 2]  # two good batches, then the failing one
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["seed0000.png"]  # no temporary file either
    assert (tmp_path / "out" / "seed0000.png").read_bytes() == b"the user's file"
    assert not (tmp_path / "grid.png").exists()
    monkeypatch.undo()  # the same run with every batch finite: every file, the grid, the seeds' own pixels
    generate_seeds(model, seeds=list(range(6)), out_dir=tmp_path / "out", grid=tmp_path / "grid.png", batch_size=2,
                   precision="fp32")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [f"seed{s:04d}.png" for s in range(6)]
    for seed in range(6):
        assert np.array_equal(_pixels(tmp_path / "out" / f"seed{seed:04d}.png"), _expected(model, seed, 0.7))
    assert (tmp_path / "grid.png").exists()


def test_non_finite_images_are_explained_by_what_the_model_records(tmp_path):
    model = TinySeeded()
    with torch.no_grad():
        model.to_image.bias.fill_(float("nan"))
    with pytest.raises(ValueError, match="non-finite") as random_weights:  # built without weights: say so first
        generate_seeds(model, seeds=[0, 1], out_dir=tmp_path / "a", precision="fp32")
    assert "records no trained weights" in str(random_weights.value) and "--pretrained" in str(random_weights.value)
    model.pretrained_cfg["weight_source"] = str(tmp_path / "trained")  # weights from a folder: a diverged run
    with pytest.raises(ValueError, match="non-finite") as trained:
        generate_seeds(model, seeds=[0, 1], out_dir=tmp_path / "b", precision="fp32")
    assert "records no trained weights" not in str(trained.value) and "diverged run" in str(trained.value)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
