"""Pictures a person can read: sample grids, loss curves and attention maps, rendered from tiny runs."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import Dataset

import vgzoo
from vgzoo.train import fit, plots


def _logged(records) -> set[str]:
    """The series a run logged (CycleGAN: 18 of them, e.g. G_adv_AB, cycle_A or G_cycle_A, D_A_real_logit)."""
    return {k for k, v in records[0].items() if k not in ("step", "epoch", "split", "lr") and isinstance(v, float)}


class Unpaired(Dataset):
    def __init__(self, n: int = 4, side: int = 32) -> None:
        g = torch.Generator().manual_seed(0)
        self.a = torch.rand(n, 3, side, side, generator=g)
        self.b = torch.rand(n, 3, side, side, generator=g) * 0.5

    def __len__(self):
        return len(self.a)

    def __getitem__(self, i):
        return {"A": self.a[i], "B": self.b[i]}


@pytest.fixture(scope="module")
def cyclegan_run(tmp_path_factory):
    """A real 4-step CycleGAN run (narrow networks, 32 px) with validation every 2 steps."""
    torch.manual_seed(0)
    model = vgzoo.create("cyclegan_resnet6", ngf=4, ndf=4, n_blocks=1)
    out = tmp_path_factory.mktemp("pictures") / "cg"
    res = fit(model, Unpaired(2), out, val_data=Unpaired(2), steps=4, batch_size=1, progress=False)
    return res, [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def _lines(ax):
    return [line for line in ax.get_lines() if line.get_gid() != "health-finding"]


def test_cyclegan_loss_curves_tell_every_series_apart(cyclegan_run, tmp_path):
    import matplotlib.pyplot as plt

    res, records = cyclegan_run
    logged = _logged(records)
    assert len(logged) >= 18  # the series the picture must tell apart
    findings = [{"kind": "discriminator_wins", "step": 2, "severity": "warning"}]
    fig = plots.loss_figure(records, "cyclegan_resnet6", findings, seed=0)
    try:
        axes = [ax for ax in fig.axes if ax.get_visible() and ax.axison]
        titles = {ax.get_title(loc="left") for ax in axes}
        assert {"generator: adversarial", "generator: reconstruction / L1", "discriminator loss",
                "discriminator logits", "gradient norms"} <= titles
        assert any(t.startswith("validation:") for t in titles)  # a validation panel where validation ran
        assert "cyclegan_resnet6 | step 4 | seed 0" in fig._suptitle.get_text()
        shown: set[str] = set()
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        for ax in axes:
            styles = [(line.get_color(), str(line.get_linestyle()), line.get_marker()) for line in _lines(ax)]
            assert len(styles) == len(set(styles)), (ax.get_title(loc="left"), styles)  # no twin hides another
            legend = ax.get_legend()
            assert legend is not None
            box, frame = legend.get_window_extent(renderer), ax.get_window_extent(renderer)
            assert box.x0 >= frame.x1 - 1, "the legend must sit outside the data"
            shown |= {t.get_text().split(" (= ")[0] for t in legend.get_texts()}
            shown |= {t.get_text().split(" (= ")[1].rstrip(")") for t in legend.get_texts() if " (= " in t.get_text()}
            # the finding is marked on every panel's time axis
            assert [line.get_xdata()[0] for line in ax.get_lines() if line.get_gid() == "health-finding"] == [2]
        assert logged <= shown, logged - shown
        # series drawn in one panel have one colour per network and one style per term
        rec = next(ax for ax in axes if ax.get_title(loc="left") == "generator: reconstruction / L1")
        by = {line.get_label(): (line.get_color(), line.get_linestyle()) for line in _lines(rec)}

        def one(term, side):
            return next(v for k, v in by.items() if term in k and k.endswith("_" + side))

        assert one("cycle", "A")[0] == one("idt", "A")[0] != one("cycle", "B")[0]
        assert one("cycle", "A")[1] == one("cycle", "B")[1] != one("idt", "A")[1]
    finally:
        plt.close(fig)
    path = plots.plot_loss_curves(records, tmp_path / "curves.png", "cyclegan_resnet6", findings=findings, seed=0)
    image = Image.open(path)
    assert image.format == "PNG" and image.width >= 1200 and image.height >= 800


def test_findings_are_read_from_health_json_beside_the_plot(tmp_path):
    rows = [{"step": s, "epoch": 0, "split": "train", "D_loss": 1.0 / s, "G_loss": float(s)} for s in range(1, 9)]
    (tmp_path / "health.json").write_text(json.dumps({"findings": [
        {"kind": "mode_collapse", "step": 5, "message": "m", "severity": "warning", "remedies": []}]}))
    import matplotlib.pyplot as plt

    fig = plots.loss_figure(rows, "x", plots._load_findings(None, tmp_path / "loss_curves.png"))
    try:
        marks = [line for ax in fig.axes for line in ax.get_lines() if line.get_gid() == "health-finding"]
        assert marks and all(line.get_xdata()[0] == 5 for line in marks)
        assert "mode_collapse @ 5" in fig._suptitle.get_text()
    finally:
        plt.close(fig)


def test_identical_series_are_drawn_once_and_named_in_the_legend():
    import matplotlib.pyplot as plt

    rows = [{"step": s, "split": "train", "G_loss": 2.0 + s, "G_total": 2.0 + s, "loss": 1.0} for s in range(1, 5)]
    fig = plots.loss_figure(rows, "m")
    try:
        labels = [line.get_label() for ax in fig.axes for line in ax.get_lines()]
        assert "G_loss (= G_total)" in labels and "G_total" not in labels
    finally:
        plt.close(fig)


def test_sample_grid_has_headers_labels_title_and_upscaled_cells(cyclegan_run, tmp_path):
    res, _ = cyclegan_run
    model = res.model.eval()
    a = torch.rand(3, 3, 16, 16) * 2 - 1
    with torch.no_grad():
        fake = model.G_AB(a)
    unit = plots.to_unit
    rows = [[unit(x[i:i + 1], (0.5,) * 3, (0.5,) * 3)[0] for x in (a, fake)] for i in range(3)]
    title = plots.run_title("cyclegan_resnet6", res.step, 0, "samples")
    path = plots.save_grid(rows, tmp_path / "g.png", headers=("A", "G_AB(A)"), row_labels=("x0", "x1", "x2"),
                           title=title)
    image = Image.open(path)
    assert image.text["title"] == "cyclegan_resnet6 | samples | step 4 | seed 0"
    assert json.loads(image.text["headers"]) == ["A", "G_AB(A)"]
    assert json.loads(image.text["row_labels"]) == ["x0", "x1", "x2"]
    grid = plots.grid_image(rows, headers=("A", "G_AB(A)"), row_labels=("x0", "x1", "x2"), title=title)
    info = grid.info["grid"]
    assert info["scale"] == 6 and info["cell"] == (96, 96)  # 16 px cells upscaled 6x, nearest-neighbour
    arr = np.asarray(image.convert("RGB"))
    assert arr.shape[0] == image.height and image.size == grid.size
    top, left = info["origin"]
    assert (arr[:top] < 128).any(), "the title and header band must hold drawn text"
    assert (arr[top:, :left - 2] < 128).any(), "the row labels must be drawn left of the grid"
    cell = arr[top:top + 96, left:left + 96]
    blocks = cell.reshape(16, 6, 16, 6, 3)
    assert (blocks == blocks[:, :1, :, :1]).all(), "upscaling is nearest-neighbour (6x6 blocks of one colour)"


def test_old_save_grid_call_still_works(tmp_path):
    images = torch.rand(2, 4, 1, 8, 8)
    path = plots.save_grid(images, tmp_path / "old.png", scale=2)
    image = Image.open(path)
    assert image.size == (4 * (96 + 2) + 2, 2 * (96 + 2) + 2) and not image.text
    with pytest.raises(ValueError, match="one header per column"):
        plots.save_grid(images, tmp_path / "bad.png", headers=["a"])


def test_attention_map_shows_image_overlay_colour_bar_and_prediction(tmp_path):
    import matplotlib.pyplot as plt

    from vgzoo.viz import attention_figure, save_attention_map

    img = Image.fromarray((torch.rand(40, 60, 3) * 255).to(torch.uint8).numpy())
    img.save(tmp_path / "img.png")
    torch.manual_seed(0)
    model = vgzoo.create("vit_ti16_scratch", num_classes=5, img_size=16, patch_size=4, depth=1)
    model.pretrained_cfg["label_names"] = ["a", "b", "c", "d", "e"]
    info = save_attention_map(model, tmp_path / "img.png", tmp_path / "map.png")
    drawn = Image.open(tmp_path / "map.png")
    assert drawn.format == "PNG" and drawn.width > 2 * 60 and drawn.width > drawn.height
    fig = attention_figure(img, torch.rand(4, 4).numpy(), info, title="vit_ti16_scratch")
    try:
        images = [ax for ax in fig.axes if ax.get_images()]
        assert len(images) == 2  # the image beside the overlay
        assert len(fig.axes) == 3  # and a colour bar
        head = fig._suptitle.get_text()
        name = "abcde"[info["top_class"]]
        assert f"predicted class {info['top_class']} '{name}' (p={info['top_prob']:.3f})" in head
    finally:
        plt.close(fig)


@pytest.mark.parametrize(("name", "kwargs", "data", "headers", "row_label"), [
    ("cyclegan_resnet6", {"ngf": 4, "ndf": 4, "n_blocks": 1, "img_size": 32}, "unaligned",
     ["A", "G_AB(A)", "G_BA(G_AB(A))", "B", "G_BA(B)", "G_AB(G_BA(B))"], None),
    ("cgan_embed_digits", {"nz": 8, "ngf": 8, "ndf": 8}, "builtin:digits", None, "class 3"),
])
def test_training_runs_write_grids_a_person_can_read(tmp_path, name, kwargs, data, headers, row_label):
    """The trainer's sample grids carry their column headers, row labels and a title with model, step and seed."""
    import json

    from PIL import Image

    from vgzoo.train import fit

    if data == "unaligned":
        for side in ("trainA", "trainB"):
            (tmp_path / "data" / side).mkdir(parents=True)
            for i in range(4):
                Image.new("RGB", (36, 36), (40 * i, 90, 200 - 40 * i)).save(tmp_path / "data" / side / f"{i}.png")
        data = str(tmp_path / "data")
        options = {"data": {"load_size": 36, "crop_size": 32}, "augment": {"crop_size": 32}}
    else:
        options = {}
    out = tmp_path / "run"
    fit(name, data, out, steps=2, batch_size=2, progress=False, log=lambda m: None, seed=7, model_kwargs=kwargs,
        options=options)
    text = Image.open(out / "samples" / "final.png").text
    assert name in text["title"] and "step 2" in text["title"] and "seed 7" in text["title"]
    if headers:
        assert json.loads(text["headers"]) == headers
    if row_label:
        assert row_label in json.loads(text["row_labels"])
