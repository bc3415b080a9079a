"""Model cards written by save_pretrained: front matter the Hub reads, a body per family, a user's README kept."""

from __future__ import annotations

import json
import re
import warnings

import pytest
import yaml

import vgzoo
from vgzoo.share.card import build_model_card, find_run_dir, is_generated_card, write_model_card


def front_matter(text: str) -> dict:
    m = re.match(r"\A---\n(.*?)\n---\n", text, re.S)
    assert m, "the card must start with YAML front matter between --- lines"
    meta = yaml.safe_load(m.group(1))
    assert isinstance(meta, dict)
    return meta


def tiny(name: str):
    return vgzoo.create(name, **vgzoo.model_info(name).test_kwargs)


@pytest.mark.parametrize(
    "name, family, task_tag, pipeline_tag, snippet",
    [
        ("vit_ti16_scratch", "vit", "classification", "image-classification", "vgzoo attention-map hf-hub:ORG/REPO"),
        ("pix2pix_unet128", "pix2pix", "paired-translation", "image-to-image", "vgzoo translate hf-hub:ORG/REPO"),
        ("cyclegan_resnet6", "cyclegan", "unpaired-translation", "image-to-image", "--direction BtoA"),
        ("cgan_embed", "cgan", "conditional-generation", None, "vgzoo generate hf-hub:ORG/REPO"),
        ("gan_vanilla", "gan_vanilla", "generation", "unconditional-image-generation", "model.sample(16)"),
        ("restoration_unet", "restoration", "restoration", "image-to-image", "model.degrade(clean)"),
    ],
)
def test_card_fields_per_family(tmp_path, name, family, task_tag, pipeline_tag, snippet):
    model = tiny(name)
    vgzoo.save_pretrained(model, tmp_path)
    text = (tmp_path / "README.md").read_text(encoding="utf-8")
    meta = front_matter(text)
    assert meta["library_name"] == "vgzoo"
    assert meta["license"] == "apache-2.0"
    assert {"vgzoo", family, task_tag, name} <= set(meta["tags"])
    assert ("vision-transformer" if family == "vit" else "gan") in meta["tags"]
    assert meta.get("pipeline_tag") == pipeline_tag
    assert "base_model" not in meta and "datasets" not in meta  # random weights, no data: nothing to claim
    n = sum(p.numel() for p in model.parameters())
    assert f"{n:,}" in text
    assert 'vgzoo.create("hf-hub:ORG/REPO")' in text and snippet in text
    assert "vgzoo demo hf-hub:ORG/REPO" in text
    assert str(model.pretrained_cfg["paper"]).split(",")[0] in text
    assert is_generated_card(text)
    assert vgzoo.create(f"local-dir:{tmp_path}").pretrained_cfg["architecture"] == name  # the card changes nothing


def test_input_size_and_range_are_stated(tmp_path):
    model = tiny("vit_ti16_scratch")
    text, _ = build_model_card(model, repo_id="me/tiny-vit")
    assert "3 x 32 x 32" in text and "[-1, 1]" in text
    assert 'vgzoo.create("hf-hub:me/tiny-vit")' in text and "ORG/REPO" not in text
    assert text.splitlines()[text.splitlines().index("---", 1) + 2] == "# tiny-vit"


def test_pretrained_digits_card(tmp_path):
    model = vgzoo.create("cgan_embed_digits", pretrained=True)
    vgzoo.save_pretrained(model, tmp_path)
    text = (tmp_path / "README.md").read_text(encoding="utf-8")
    assert "a latent vector of 100 and a class label" in text or "a latent vector" in text
    assert "1 x 16 x 16" in text and "| classes | 10 |" in text
    assert "`builtin:digits`" in text  # the built-in data is named in the body ...
    assert "datasets" not in front_matter(text)  # ... but is no Hub dataset id
    assert front_matter(text)["license"] == "apache-2.0"  # the Hub's id, whatever case the config uses


def test_a_licence_outside_the_hubs_list_is_other_with_its_name_and_link():
    model = tiny("gan_vanilla")
    model.pretrained_cfg = {**model.pretrained_cfg, "license": "NVIDIA Source Code License-NC",
                            "license_link": "https://example.org/license.html"}
    meta = front_matter(build_model_card(model)[0])
    assert meta["license"] == "other" and meta["license_name"] == "nvidia-source-code-license-nc"
    assert meta["license_link"] == "https://example.org/license.html"
    unnamed = tiny("gan_vanilla")
    unnamed.pretrained_cfg = {k: v for k, v in unnamed.pretrained_cfg.items() if k != "license"}
    again = front_matter(build_model_card(unnamed, previous=meta)[0])  # a refreshed card keeps the old licence
    assert {k: again[k] for k in ("license", "license_name", "license_link")} == {
        k: meta[k] for k in ("license", "license_name", "license_link")}
    mine = front_matter(build_model_card(model, license="My Lab Licence 1.0")[0])  # another licence: not that link
    assert mine["license"] == "other" and mine["license_name"] == "my-lab-licence-1.0" and "license_link" not in mine
    assert front_matter(build_model_card(model, license="CC-BY-NC-4.0")[0])["license"] == "cc-by-nc-4.0"


def test_user_readme_is_kept_unless_overwrite(tmp_path):
    model = tiny("cgan_embed")
    mine = "# My model\n\nNotes I wrote myself.\n"
    (tmp_path / "README.md").write_text(mine, encoding="utf-8")
    with pytest.warns(UserWarning, match="overwrite_card=True"):
        vgzoo.save_pretrained(model, tmp_path)
    assert (tmp_path / "README.md").read_text(encoding="utf-8") == mine
    assert (tmp_path / "model.safetensors").is_file()  # the weights are still saved
    vgzoo.save_pretrained(model, tmp_path, overwrite_card=True)
    assert front_matter((tmp_path / "README.md").read_text(encoding="utf-8"))["library_name"] == "vgzoo"


def test_generated_card_is_refreshed_but_an_edited_one_is_kept(tmp_path):
    model = tiny("cgan_embed")
    vgzoo.save_pretrained(model, tmp_path)
    card = tmp_path / "README.md"
    first = card.read_text(encoding="utf-8")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # refreshing our own card is silent
        vgzoo.save_pretrained(model, tmp_path)
    assert card.read_text(encoding="utf-8") == first
    edited = first.replace("## Use it", "## Use it\n\nMy own sentence.")
    card.write_text(edited, encoding="utf-8")
    assert not is_generated_card(edited)
    with pytest.warns(UserWarning):
        assert write_model_card(model, tmp_path) is None
    assert card.read_text(encoding="utf-8") == edited


def test_base_model_and_datasets(tmp_path):
    model = tiny("vit_ti16_scratch")
    model.pretrained_cfg["weight_source"] = "hf-hub:timm/vit_tiny_patch16_224.augreg_in21k/model.safetensors"
    text, _ = build_model_card(model, datasets=["hf-dataset:me/flowers", str(tmp_path), "/home/me/data"])
    meta = front_matter(text)
    assert meta["base_model"] == "timm/vit_tiny_patch16_224.augreg_in21k"
    assert meta["datasets"] == ["me/flowers"]  # local paths never reach a public card
    assert "fine-tuned from" in text
    # pushing a model to the repo it came from is no fine-tune of itself
    meta = front_matter(build_model_card(model, repo_id="timm/vit_tiny_patch16_224.augreg_in21k")[0])
    assert "base_model" not in meta


def _fake_run(run, with_eval=True):
    from PIL import Image

    run.mkdir()
    (run / "samples").mkdir()
    (run / "config.json").write_text(json.dumps({"model": "cgan_embed", "task": "conditional_generation",
                                                  "data": "/home/someone/secret/digits", "recipe": "CGANRecipe",
                                                  "total_steps": 20, "seed": 3}))
    rows = [{"step": 10, "epoch": 0, "split": "train", "lr": 2e-4, "D_loss": 1.2, "G_loss": 0.8},
            {"step": 20, "epoch": 1, "split": "train", "lr": 2e-4, "D_loss": 1.1, "G_loss": 0.9},
            {"step": 20, "epoch": 1, "split": "val", "diversity_ratio": 0.75}]
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows) + '{"step": 21, "spl')
    (run / "health.json").write_text(json.dumps({"status": "healthy"}))
    Image.new("RGB", (8, 8), "red").save(run / "loss_curves.png")
    Image.new("RGB", (8, 8), "blue").save(run / "samples" / "final.png")
    if with_eval:
        (run / "eval.json").write_text(json.dumps({"metrics": {"fid": 12.5, "classifier_accuracy": 0.91}}))


def test_card_reads_the_run_folder(tmp_path):
    run = tmp_path / "run"
    _fake_run(run)
    vgzoo.save_pretrained(tiny("cgan_embed"), run / "final")
    assert find_run_dir(run / "final") == run.resolve()
    text = (run / "final" / "README.md").read_text(encoding="utf-8")
    assert "Trained with vgzoo's trainer" in text and "steps `20`" in text and "seed `3`" in text
    assert "secret" not in text and "/home/someone" not in text  # only the data folder's name
    assert "| G_loss | 0.9 |" in text and "| diversity_ratio | 0.75 |" in text
    assert "**healthy**" in text
    assert "| fid | 12.5 |" in text and "| classifier_accuracy | 0.91 |" in text
    assert "![loss curves](loss_curves.png)" in text and "![samples](samples.png)" in text
    assert (run / "final" / "loss_curves.png").read_bytes() == (run / "loss_curves.png").read_bytes()
    assert (run / "final" / "samples.png").is_file()
    # a plain folder beside unrelated files is no run
    (tmp_path / "other").mkdir()
    assert find_run_dir(tmp_path / "other" / "m") is None


def test_real_training_run_gets_a_card(tmp_path):
    from vgzoo.train import fit

    out = tmp_path / "run"
    fit("cgan_embed_digits", "builtin:digits", out, steps=3, batch_size=16, progress=False,
        model_kwargs={"ngf": 8, "ndf": 8, "nz": 8})
    text = (out / "final" / "README.md").read_text(encoding="utf-8")
    assert front_matter(text)["library_name"] == "vgzoo"
    assert "Trained with vgzoo's trainer" in text and "data `builtin:digits`" in text
    assert "Final metrics (last training step, step 3)" in text
    assert "![loss curves](loss_curves.png)" in text and (out / "final" / "loss_curves.png").is_file()
    assert vgzoo.create(f"local-dir:{out / 'final'}").pretrained_cfg["architecture"] == "cgan_embed_digits"


def test_base_model_survives_a_reload_and_resave(tmp_path):
    model = tiny("cgan_embed")
    model.pretrained_cfg["weight_source"] = "hf-hub:someone/cgan-base"
    vgzoo.save_pretrained(model, tmp_path)
    again = vgzoo.create(f"local-dir:{tmp_path}")  # its weight source is now the folder
    vgzoo.save_pretrained(again, tmp_path)
    assert front_matter((tmp_path / "README.md").read_text(encoding="utf-8"))["base_model"] == "someone/cgan-base"
