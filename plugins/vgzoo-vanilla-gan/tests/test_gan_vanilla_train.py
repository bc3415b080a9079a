"""gan_vanilla trains with vgzoo's generation recipe, unchanged (a few steps on the built-in digits)."""

from __future__ import annotations

import json
import math

import vgzoo


def test_trains_with_the_generation_recipe(tmp_path):
    from vgzoo.train import fit

    result = fit("gan_vanilla", "builtin:digits", tmp_path / "run", steps=2, batch_size=8, device="cpu",
                 progress=False, log=lambda message: None, model_kwargs={"img_size": 16, "base_chans": 16, "ndf": 8})
    assert result.finished and result.step == 2
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in records if r.get("split") == "train"]
    assert [r["step"] for r in train] == [1, 2]
    for r in train:  # the recipe logged the plugin's own loss terms next to its totals
        assert {"G_loss", "D_loss", "G_adv", "D_adv"} <= set(r)
        assert all(math.isfinite(r[k]) for k in ("G_loss", "D_loss"))
    assert list((tmp_path / "run" / "samples").glob("*.png"))
    final = vgzoo.create(f"local-dir:{tmp_path / 'run' / 'final'}")
    assert final.pretrained_cfg["architecture"] == "gan_vanilla"
    assert tuple(final.pretrained_cfg["input_size"]) == (1, 16, 16)
