"""restoration_unet trains with vgzoo's restoration recipe, unchanged (a few steps on the built-in digits)."""

from __future__ import annotations

import json
import math

import vgzoo


def test_trains_with_the_restoration_recipe(tmp_path):
    from vgzoo.train import fit

    result = fit("restoration_unet", "builtin:digits", tmp_path / "run", steps=2, batch_size=8, device="cpu",
                 progress=False, log=lambda message: None,
                 model_kwargs={"img_size": 16, "in_chans": 1, "ngf": 8, "depth": 3, "ndf": 8})
    assert result.finished and result.step == 2
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in records if r.get("split") == "train"]
    assert [r["step"] for r in train] == [1, 2]
    for r in train:
        assert {"G_loss", "D_loss", "G_pixel", "G_adv", "psnr_db", "D_adv"} <= set(r)
        assert all(math.isfinite(r[k]) for k in ("G_loss", "D_loss", "G_pixel"))
    # the recipe restores the validation split through model.degrade and measures the L1 in [0, 1] units
    assert 0 <= result.metrics["val_l1"] < 1
    assert list((tmp_path / "run" / "samples").glob("*.png"))
    final = vgzoo.create(f"local-dir:{tmp_path / 'run' / 'final'}")
    assert final.pretrained_cfg["architecture"] == "restoration_unet"
    assert final.degradation == "inpaint"
