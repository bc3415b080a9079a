"""vgzoo eval: folders, the feature cache, bad input, the Inception download path, paired/translate/classify, and the
training-time hook. Offline: digits features, tiny models, Inception weights served from 127.0.0.1."""

from __future__ import annotations

import functools
import http.server
import json
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

import vgzoo
from vgzoo.cli import cli
from vgzoo.metrics import eval_classify, eval_fid, eval_paired, eval_translate
from vgzoo.metrics import features as feat_mod
from vgzoo.metrics.features import extract_features, folder_features, get_features


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("VGZOO_CACHE", str(tmp_path / "vgzoo-cache"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    monkeypatch.setattr(feat_mod, "_EXTRACTOR_CACHE", {})


def _digits_uint8(split="val"):
    from vgzoo.data.digits import DigitsDataset

    ds = DigitsDataset(split=split)
    return (ds.images * 255).round().to(torch.uint8), ds.labels


def _write_pngs(images: torch.Tensor, folder: Path, prefix="img") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i, x in enumerate(images):
        arr = x.permute(1, 2, 0).numpy()
        Image.fromarray(arr[..., 0] if arr.shape[2] == 1 else arr).save(folder / f"{prefix}{i:04d}.png")
    return folder


@pytest.fixture
def digit_folders(tmp_path):
    real, _ = _digits_uint8("val")
    model = vgzoo.create("cgan_embed_digits", pretrained=True).eval()
    with torch.no_grad():
        fake = model.sample(torch.arange(200) % 10, generator=torch.Generator().manual_seed(0))
    fake_u8 = ((fake.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return _write_pngs(real, tmp_path / "real"), _write_pngs(fake_u8, tmp_path / "fake"), real


def test_folder_features_equal_in_memory_features_and_are_cached(digit_folders):
    real_dir, _, real = digit_folders
    ext = get_features("digits")
    from_files = folder_features(real_dir, ext, batch_size=50, progress=False)
    in_memory = extract_features(real.split(64), ext, progress=False)
    assert not from_files.cache_hit and from_files.num_images == len(real) == 359
    # batch composition moves the last float bits
    torch.testing.assert_close(from_files.features, in_memory, rtol=1e-5, atol=1e-5)
    again = folder_features(real_dir, ext, progress=False)
    assert again.cache_hit
    torch.testing.assert_close(again.features, from_files.features, rtol=0, atol=0)
    cache_files = sorted(p.suffix for p in (Path(feat_mod.cache_dir()) / "features").iterdir())
    assert cache_files == [".json", ".safetensors"]
    # touching the folder (a new file) invalidates the entry
    Image.fromarray(np.zeros((16, 16), np.uint8)).save(real_dir / "zzz.png")
    changed = folder_features(real_dir, ext, progress=False)
    assert not changed.cache_hit and changed.num_images == 360


def test_cli_fid_on_png_folders_with_digits_features(digit_folders):
    real_dir, fake_dir, _ = digit_folders
    runner = CliRunner()
    res = runner.invoke(cli, ["eval", "fid", str(real_dir), str(fake_dir), "--features", "digits", "--subsets", "10",
                              "--json", "--no-progress"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["features"] == "digits" and out["feature_dim"] == 64 and out["input_size"] == [1, 16, 16]
    assert (out["n_real"], out["n_fake"]) == (359, 200)
    assert out["kid_subset_size"] == 200 and out["kid_subsets"] == 10 and out["seed"] == 0
    assert 0 < out["fid"] < 20 and out["kid_std"] > 0
    assert out["real"]["image_sizes"] == {"16x16": 359} and out["real"]["resized"] == 0
    assert "bicubic" in out["resize_rule"]
    # the same set against itself: ~0; the second read of REAL comes from the cache
    res = runner.invoke(cli, ["eval", "fid", str(real_dir), str(real_dir), "--features", "digits", "--subsets", "2",
                              "--json", "--no-progress"])
    same = json.loads(res.stdout)
    assert abs(same["fid"]) < 1e-6 and same["real"]["cache_hit"]
    text = runner.invoke(cli, ["eval", "fid", str(real_dir), str(fake_dir), "--features", "digits", "--subsets", "3",
                               "--no-progress"])
    assert text.exit_code == 0 and "FID" in text.output and "KID" in text.output and "3 subsets of 200" in text.output


def test_bad_folders_give_one_line_errors(tmp_path, digit_folders):
    real_dir, _, _ = digit_folders
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("no images")
    one = _write_pngs(torch.zeros(1, 1, 16, 16, dtype=torch.uint8), tmp_path / "one")
    runner = CliRunner()
    res = runner.invoke(cli, ["eval", "fid", str(real_dir), str(empty), "--features", "digits"])
    assert res.exit_code == 1 and "holds no image files" in res.output
    res = runner.invoke(cli, ["eval", "fid", str(real_dir), str(one), "--features", "digits"])
    assert res.exit_code == 1 and "at least 2 images" in res.output
    res = runner.invoke(cli, ["eval", "fid", str(real_dir), str(real_dir), "--features", "no_such_model"])
    assert res.exit_code == 1 and "no_such_model" in res.output


def test_mixed_sizes_and_rgb_are_converted_by_the_stated_rule(tmp_path, digit_folders):
    real_dir, _, real = digit_folders
    mixed = tmp_path / "mixed"
    _write_pngs(real[:20], mixed, "grey")
    big = torch.nn.functional.interpolate(real[20:40].float(), size=32, mode="nearest").to(torch.uint8)
    _write_pngs(big.expand(-1, 3, -1, -1).contiguous(), mixed, "rgb")  # 32x32 RGB copies
    out = eval_fid(real_dir, mixed, features="digits", subsets=2, progress=False)
    assert out["fake"]["image_sizes"] == {"16x16": 20, "32x32": 20} and out["fake"]["resized"] == 20
    assert any("mixed image sizes" in n for n in out["notes"])
    # the RGB copies become grey by luma and 16x16 by PIL bicubic: features of exactly that conversion
    ext = get_features("digits")
    arr = [np.asarray(Image.fromarray(x.permute(1, 2, 0).numpy()).convert("L").resize((16, 16), Image.BICUBIC))
           for x in big.expand(-1, 3, -1, -1)]
    expected = extract_features([torch.from_numpy(np.stack(arr))[:, None]], ext, progress=False)
    got = folder_features(mixed, ext, progress=False).features[20:]
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)  # batch composition moves the last float bits


def test_inception_offline_without_weights_names_url_and_destination(monkeypatch):
    monkeypatch.setenv("VGZOO_OFFLINE", "1")
    with pytest.raises(vgzoo.errors.OfflineError) as info:
        get_features("inception")
    msg = str(info.value)
    assert "weights-inception-2015-12-05-6726825d.pth" in msg and "https://github.com/toshas/torch-fidelity" in msg
    assert str(feat_mod.inception_weights_path()) in msg and "VGZOO_OFFLINE" in msg


def _random_inception_state() -> dict:
    """The FID Inception's state dict with random values, in torch-fidelity's exact key layout."""
    import torch_fidelity.feature_extractor_inceptionv3 as tfi

    orig_url, orig_load = tfi.load_state_dict_from_url, tfi.FeatureExtractorInceptionV3.load_state_dict
    tfi.load_state_dict_from_url = lambda *a, **k: {}
    tfi.FeatureExtractorInceptionV3.load_state_dict = lambda self, sd, *a, **k: None
    try:
        net = tfi.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"])
    finally:
        tfi.load_state_dict_from_url, tfi.FeatureExtractorInceptionV3.load_state_dict = orig_url, orig_load
    return {k: v.clone() for k, v in net.state_dict().items()}


@pytest.mark.slow
def test_inception_weights_download_from_a_loopback_server(tmp_path, monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)  # conftest's guard; the server below is on loopback
    monkeypatch.delenv("VGZOO_OFFLINE", raising=False)
    served = tmp_path / "served"
    served.mkdir()
    name = "weights-inception-2015-12-05-6726825d.pth"
    state = _random_inception_state()
    torch.save(state, served / name)  # a plain state dict, as upstream publishes it
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    handler.log_message = lambda *a, **k: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setattr(feat_mod, "inception_weights_url",
                            lambda: f"http://127.0.0.1:{server.server_address[1]}/{name}")
        ext = get_features("inception")
    finally:
        server.shutdown()
    assert feat_mod.inception_weights_path().is_file()
    torch.testing.assert_close(ext.module.Mixed_7c.branch_pool.conv.weight, state["Mixed_7c.branch_pool.conv.weight"])
    assert (ext.dim, ext.channels, ext.size) == (2048, 3, (299, 299))
    small = tmp_path / "small"
    _write_pngs(torch.randint(0, 255, (3, 1, 16, 16), dtype=torch.uint8), small)
    f = folder_features(small, ext, progress=False)
    assert f.features.shape == (3, 2048) and f.resized == 3 and torch.isfinite(f.features).all()
    # now cached: offline works
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(feat_mod, "_EXTRACTOR_CACHE", {})
    assert get_features("inception").dim == 2048


def _tiny_vit(tmp_path, num_classes=10):
    torch.manual_seed(0)
    model = vgzoo.create("vit_ti16_scratch", img_size=16, patch_size=4, num_classes=num_classes, depth=1, in_chans=1)
    return vgzoo.save_pretrained(model, tmp_path / "vit"), model


def test_classifier_features_and_classify_on_folders(tmp_path):
    vit_dir, model = _tiny_vit(tmp_path)
    real, labels = _digits_uint8("val")
    data = tmp_path / "labelled"
    for c in range(10):
        _write_pngs(real[labels == c][:5], data / str(c))
    ext = get_features(str(vit_dir))
    assert ext.dim == 192 and ext.size == (16, 16) and ext.key.startswith("model:vit_ti16_scratch:")
    out = eval_classify(str(vit_dir), data, confusion_png=tmp_path / "cm.png", progress=False)
    x = torch.cat([real[labels == c][:5] for c in range(10)]).float() / 255
    with torch.no_grad():
        logits = model.eval()((x - 0.5) / 0.5)
    y = torch.arange(10).repeat_interleave(5)
    assert out["top1"] == pytest.approx(float((logits.argmax(1) == y).float().mean()))
    top5 = logits.topk(5, 1).indices.eq(y[:, None]).any(1).float().mean()
    assert out["top5"] == pytest.approx(float(top5))
    assert np.asarray(out["confusion_matrix"]).sum() == 50 and (tmp_path / "cm.png").read_bytes()[:4] == b"\x89PNG"
    res = CliRunner().invoke(cli, ["eval", "classify", str(vit_dir), "--data", str(data), "--confusion",
                                   str(tmp_path / "cm2.png"), "--no-progress"])
    assert res.exit_code == 0 and "top-1" in res.output and (tmp_path / "cm2.png").is_file()
    wrong = tmp_path / "three"
    for c in range(3):
        _write_pngs(real[:2], wrong / str(c))
    with pytest.raises(vgzoo.errors.DataError, match="3 class folders"):
        eval_classify(str(vit_dir), wrong, progress=False)


def test_a_generator_is_not_a_features_model():
    with pytest.raises(ValueError, match="classification"):
        get_features("cgan_embed_digits")


def _aligned(folder: Path, n=4, size=32):
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        a = rng.integers(0, 255, (size, size, 3), dtype=np.uint8)
        Image.fromarray(np.concatenate([a, 255 - a], axis=1)).save(folder / f"{i}.png")


def test_paired_scores_match_an_independent_computation(tmp_path, monkeypatch):
    from vgzoo.translate import translate_tensor

    _aligned(tmp_path / "pairs" / "val")
    torch.manual_seed(0)
    model = vgzoo.create("pix2pix_unet128", ngf=4, ndf=4)
    out = eval_paired(model, tmp_path / "pairs", split="val", lpips=False, batch_size=3, progress=False)
    assert out["num_images"] == 4 and out["lpips"] is None
    psnrs, l1s = [], []
    g = model.generator.eval()
    for p in sorted((tmp_path / "pairs" / "val").glob("*.png")):
        ab = torch.from_numpy(np.array(Image.open(p))).permute(2, 0, 1).float() / 255
        a, b = ab[:, :, :32], ab[:, :, 32:]
        with torch.no_grad():
            pred = (translate_tensor(g, a[None] * 2 - 1).clamp(-1, 1) + 1) / 2
        mse = float(((pred[0] - b) ** 2).mean())
        psnrs.append(10 * np.log10(1 / mse))
        l1s.append(float((pred[0] - b).abs().mean()))
    assert out["psnr"] == pytest.approx(np.mean(psnrs), rel=1e-4)
    assert out["l1"] == pytest.approx(np.mean(l1s), rel=1e-4)
    assert 0 < out["ssim"] < 1
    monkeypatch.setenv("VGZOO_OFFLINE", "1")  # LPIPS's AlexNet is not cached here
    with pytest.raises(vgzoo.errors.OfflineError, match="--no-lpips"):
        eval_paired(model, tmp_path / "pairs", split="val", progress=False)


def test_translate_scores_translated_test_a_against_test_b(tmp_path):
    real, _ = _digits_uint8("val")
    big = torch.nn.functional.interpolate(real[:12].float(), size=32, mode="bilinear").round().to(torch.uint8)
    _write_pngs(big.expand(-1, 3, -1, -1).contiguous()[:6], tmp_path / "d" / "testA")
    _write_pngs(big.expand(-1, 3, -1, -1).contiguous()[6:], tmp_path / "d" / "testB")
    torch.manual_seed(0)
    model = vgzoo.create("cyclegan_resnet6", ngf=4, ndf=4, n_blocks=2, img_size=32)
    out = eval_translate(model, tmp_path / "d", features="digits", out=tmp_path / "kept", subsets=3, progress=False)
    assert (out["n_real"], out["n_fake"]) == (6, 6) and out["fake"]["source"].endswith("testA")
    assert len(list((tmp_path / "kept").glob("*.png"))) == 6 and out["fid"] > 0
    assert any("fewer than 100" in n for n in out["notes"])
    with pytest.raises(vgzoo.errors.DataNotFoundError, match="valA"):
        eval_translate(model, tmp_path / "d", split="val", features="digits", progress=False)
    with pytest.raises(vgzoo.errors.DataError, match="not empty"):
        eval_translate(model, tmp_path / "d", features="digits", out=tmp_path / "kept", progress=False)


def test_cli_generate_digits_and_the_shuffled_label_control():
    runner = CliRunner()
    args = ["eval", "generate", "cgan_embed_digits", "--pretrained", "--subsets", "2", "--json", "--no-progress"]
    good = json.loads(runner.invoke(cli, args).stdout)
    shuffled = json.loads(runner.invoke(cli, [*args, "--shuffle-labels"]).stdout)
    assert good["features"] == "digits" and good["n_real"] == 359 and set(good["per_class"]) == set("0123456789")
    assert good["accuracy"] > 0.9 and shuffled["accuracy"] < 0.3
    assert good["class_fid_mean"] * 3 < shuffled["class_fid_mean"]
    assert shuffled["fid"] == pytest.approx(good["fid"], rel=0.5)  # label-blind overall score barely moves


def test_cli_generate_scores_against_a_folder_of_real_images(tmp_path):
    # issue 24: vgzoo eval generate runs/sg2/final --data my_1000_photos/ --features inception (digits here: offline)
    torch.manual_seed(0)
    vgzoo.save_pretrained(vgzoo.create("gan_vanilla"), tmp_path / "final")
    photos = _write_pngs(_digits_uint8("val")[0][:40], tmp_path / "my_photos")
    args = ["eval", "generate", str(tmp_path / "final"), "--features", "digits", "--subsets", "2",
            "--precision", "fp32", "--json", "--no-progress"]
    runs = {opt: CliRunner().invoke(cli, [*args, opt, str(photos)]) for opt in ("--data", "--real")}
    for opt, res in runs.items():
        assert res.exit_code == 0, (opt, res.output)
    data, real = (json.loads(runs[opt].stdout) for opt in ("--data", "--real"))
    assert data["real"] == str(photos) and data["n_real"] == 40 and data["n_fake"] == 40
    assert data["fid"] == real["fid"]  # --real is the same option under its older name
    assert "--data" in CliRunner().invoke(cli, ["eval", "generate", "--help"]).output


def test_evaluate_generator_on_a_tiny_cgan():
    from vgzoo.metrics.training import evaluate_generator, prepare_real_features

    real = prepare_real_features("builtin:digits", "digits")
    torch.manual_seed(0)
    model = vgzoo.create("cgan_embed_digits", nz=8, ngf=8, ndf=8).train()
    first = evaluate_generator(model, real, subsets=5)
    assert set(first) == {"fid", "kid", "kid_std"} and all(np.isfinite(v) for v in first.values())
    assert model.training  # restored
    assert evaluate_generator(model, real, subsets=5) == first  # seeded: same weights, same scores
    trained = vgzoo.create("cgan_embed_digits", pretrained=True)
    assert evaluate_generator(trained, real, subsets=5)["fid"] < first["fid"] / 3
    subset = evaluate_generator(model, real, num_samples=100, subsets=5)
    assert subset != first and np.isfinite(subset["fid"])
    assert np.isfinite(evaluate_generator(model, real, num_samples=500, subsets=2)["fid"])  # more than the real set


def test_unconditional_generator_and_cached_builtin_real_features(monkeypatch):
    from vgzoo.metrics import eval_generate, real_features

    torch.manual_seed(0)
    model = vgzoo.create("gan_vanilla")  # 32x32 grey: resized to 16x16 for the digits features
    out = eval_generate(model, num_samples=120, subsets=3, progress=False, precision="fp32")
    assert out["n_fake"] == 120 and out["n_real"] == 359 and "per_class" not in out and out["fid"] > 0
    assert out["inference"]["precision"] == "fp32"
    cached = list((Path(feat_mod.cache_dir()) / "features").glob("*.safetensors"))
    assert len(cached) == 1  # the held-out digits' features (fp32: the cache keeps precisions apart)
    fresh, _ = real_features("builtin:digits", "digits", split="val", cache=False)
    import vgzoo.metrics.evaluate as ev

    def no_network_run(*args, **kwargs):
        raise AssertionError("the cached features should have been read")

    monkeypatch.setattr(ev, "extract_features", no_network_run)
    again, labels = real_features("builtin:digits", "digits", split="val")
    torch.testing.assert_close(again, fresh, rtol=1e-5, atol=1e-5)
    assert len(labels) == 359
    with pytest.raises(AssertionError, match="cached"):
        real_features("builtin:digits", "digits", split="train")  # another split: another entry


def test_features_the_guard_moved_to_fp32_are_cached_as_fp32(tmp_path, monkeypatch, digit_folders):
    import vgzoo.inference as inf

    real_folder = digit_folders[0]
    monkeypatch.setattr(inf, "guard_score", lambda kind, ref, out: (False, "forced for the test"))
    bf16 = get_features("digits", precision="bf16")
    with pytest.warns(inf.PrecisionWarning, match="fp32 instead"):
        fell = folder_features(real_folder, bf16, batch_size=64, progress=False)
    assert bf16.mode.fell_back and not fell.cache_hit
    fp32 = folder_features(real_folder, get_features("digits", precision="fp32"), progress=False)
    assert fp32.cache_hit  # the fallback's fp32 features are the fp32 entry
    torch.testing.assert_close(fp32.features, fell.features)
    monkeypatch.setattr(feat_mod, "_EXTRACTOR_CACHE", {})
    monkeypatch.setattr(inf, "guard_score", lambda kind, ref, out: (True, "passed for the test"))
    assert not folder_features(real_folder, get_features("digits", precision="bf16"), progress=False).cache_hit
    entries = sorted(p.name for p in (Path(feat_mod.cache_dir()) / "features").glob("*.json"))
    assert len(entries) == 2  # fp32 and now bf16, each under its own key


def test_features_models_that_do_not_fit_are_refused(tmp_path):
    plain = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(256, 10))  # logits only, no pre-logit features
    plain.pretrained_cfg = {"task": "classification", "input_size": (1, 16, 16)}
    with pytest.raises(feat_mod.FeaturesError, match="forward_features"):
        get_features(plain)
    vit = vgzoo.create("vit_ti16_scratch", img_size=16, patch_size=4, num_classes=10, depth=1, in_chans=1)
    vit.pretrained_cfg.pop("input_size")
    with pytest.raises(feat_mod.FeaturesError, match="input_size"):
        get_features(vit)
    vit.pretrained_cfg["input_size"] = (1, 20, 20)  # a config that does not match the network
    with pytest.raises(vgzoo.errors.InputSizeError, match="20x20"):
        get_features(vit)


def test_reference_dataset_names_resolve_through_the_dataset_cache(tmp_path, monkeypatch):
    from vgzoo.data.reference import dataset_folder, get_reference
    from vgzoo.metrics.evaluate import data_folders, default_direction

    monkeypatch.setenv("VGZOO_OFFLINE", "1")  # nothing is fetched: the set is already in the cache
    entry = get_reference("cyclegan:horse2zebra")
    root = dataset_folder(entry)
    assert str(root).startswith(str(tmp_path / "vgzoo-cache"))
    real, _ = _digits_uint8("val")
    for i, split in enumerate(("trainA", "trainB", "testA", "testB")):
        _write_pngs(real[i * 5:(i + 1) * 5].expand(-1, 3, -1, -1).contiguous(), root / split)
    assert data_folders("cyclegan:horse2zebra", "unpaired_translation", "test") == {"A": root / "testA",
                                                                                   "B": root / "testB"}
    torch.manual_seed(0)
    model = vgzoo.create("cyclegan_resnet6", ngf=4, ndf=4, n_blocks=2, img_size=32)
    out = eval_translate(model, "cyclegan:horse2zebra", features="digits", subsets=2, progress=False)
    assert (out["n_real"], out["n_fake"]) == (5, 5) and out["direction"] == entry.direction
    assert default_direction("pix2pix:facades", None) == get_reference("pix2pix:facades").direction
    assert default_direction("pix2pix:facades", "AtoB") == "AtoB" and default_direction(tmp_path, None) == "AtoB"
    with pytest.raises(vgzoo.errors.VgzooError, match="facades"):
        data_folders("pix2pix:facades", "paired_translation", "val")  # not cached and offline: says so


def test_eval_every_in_a_short_cgan_run_writes_rows_and_a_curve(tmp_path):
    from vgzoo.train import fit

    out = tmp_path / "run"
    fit("cgan_embed_digits", "builtin:digits", out, steps=4, batch_size=16, progress=False, log=lambda m: None,
        model_kwargs={"nz": 8, "ngf": 8, "ndf": 8}, options={"eval_every": 2, "plot_every": 1})
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    scored = [r for r in rows if "fid" in r]
    assert [r["step"] for r in scored] == [2, 4]
    assert all(r["split"] == "val" and np.isfinite(r["fid"]) and np.isfinite(r["kid"]) for r in scored)
    assert (out / "loss_curves.png").is_file()


def test_eval_every_refuses_a_model_that_samples_nothing(tmp_path):
    from vgzoo.train import fit
    from vgzoo.train.callbacks import TrainingError

    with pytest.raises(TrainingError, match="generators"):
        fit("vit_ti16_scratch", "builtin:digits", tmp_path / "run", steps=1, batch_size=8, progress=False,
            log=lambda m: None, model_kwargs={"img_size": 16, "patch_size": 4, "in_chans": 1, "num_classes": 10,
                                              "depth": 1}, options={"eval_every": 1})


def _stand_in_logits(device="cpu") -> feat_mod.FeatureExtractor:
    """A stand-in for the Inception logits: 4 'classes' scored by the mean brightness of each image quadrant."""

    def forward(x: torch.Tensor) -> torch.Tensor:
        quads = x.float().unflatten(2, (2, 8)).unflatten(4, (2, 8)).mean(dim=(1, 3, 5))  # (N, 2, 2)
        return quads.flatten(1) / 16.0

    return feat_mod.FeatureExtractor("stand-in-logits", "stand-in:quadrants:4", 1, (16, 16), 4, forward,
                                     torch.device(device))


def test_generate_inception_score_is_taken_on_the_samples_fid_scores():
    from vgzoo.metrics import eval_generate, inception_score
    from vgzoo.metrics.evaluate import sample_generator

    model = vgzoo.create("cgan_embed_digits", pretrained=True)
    stand_in = _stand_in_logits()
    both = eval_generate(model, per_class=12, subsets=2, progress=False, precision="fp32",
                         metrics=["fid", "kid", "is"], is_logits=stand_in)
    labels = torch.arange(10).repeat_interleave(12)
    images = sample_generator(model, labels, len(labels), seed=0)
    expected = inception_score(extract_features([images], stand_in, progress=False), splits=10)
    assert (both["is_mean"], both["is_std"]) == pytest.approx(expected, rel=1e-9)
    assert both["is_splits"] == 10 and both["is_num_images"] == 120 and both["is_logits"] == "stand-in:quadrants:4"
    assert both["is_mean"] > 1.0 and "fid" in both and "per_class" in both
    plain = eval_generate(model, per_class=12, subsets=2, progress=False, precision="fp32")
    assert plain["fid"] == both["fid"] and "is_mean" not in plain  # IS is added to the same samples, FID unchanged
    only = eval_generate(model, per_class=12, progress=False, precision="fp32", metrics=["is"], is_logits=stand_in)
    assert only["is_mean"] == both["is_mean"] and "fid" not in only and only["accuracy"] == both["accuracy"]
    with pytest.raises(vgzoo.errors.DataError, match="unknown metric.*fid, kid, is"):
        eval_generate(model, per_class=12, progress=False, metrics=["inception"])


def test_cli_generate_metrics_is_reads_the_inception_logits(monkeypatch):
    loaded = []

    def stand_in_inception(device, layer="2048"):  # what the download layer would have handed to torch-fidelity
        loaded.append(layer)
        return _stand_in_logits(device)

    monkeypatch.setattr(feat_mod, "_load_inception", stand_in_inception)
    args = ["eval", "generate", "cgan_embed_digits", "--pretrained", "--per-class", "10", "--subsets", "2",
            "--precision", "fp32", "--metrics", "fid,kid,is", "--no-progress"]
    res = CliRunner().invoke(cli, [*args, "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert loaded == ["logits_unbiased"] and out["metrics"] == ["fid", "kid", "is"]
    assert out["is_num_images"] == 100 and np.isfinite(out["is_mean"]) and out["fid"] > 0
    assert any("IS over 100 images" in note for note in out["notes"])
    text = CliRunner().invoke(cli, args).output
    assert f"IS {out['is_mean']:.4f} ± {out['is_std']:.4f} (10 splits of 100 images" in text
    bad = CliRunner().invoke(cli, [*args, "--metrics", "fid,precision"])  # the last --metrics counts
    assert bad.exit_code != 0 and "unknown metric(s) precision" in bad.output


def test_inception_logits_come_from_the_fid_inception_weights_file():
    # random values in the published key layout, placed where the download layer keeps the file: nothing is fetched
    path = feat_mod.inception_weights_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(_random_inception_state(), path)
    logits = feat_mod.get_inception_logits()
    assert (logits.name, logits.dim, logits.size, logits.key) == ("inception-logits", 1008, (299, 299),
                                                                  "inception-v3-compat:logits_unbiased:1008")
    out = extract_features([torch.randint(0, 255, (2, 3, 32, 32), dtype=torch.uint8)], logits, progress=False)
    assert out.shape == (2, 1008) and torch.isfinite(out).all()


def test_a_plugin_task_gets_the_folder_layout_of_its_dataset_or_names_one(tmp_path, plugin_task):
    import dataclasses

    from vgzoo import tasks
    from vgzoo.errors import DataError
    from vgzoo.metrics.evaluate import _LAYOUT_TEXT, data_folders

    assert set(_LAYOUT_TEXT) == set(tasks.DATA_LAYOUTS)
    for side in ("testA", "testB", "val"):
        (tmp_path / side).mkdir()
    plugin_task("domains_fake", "unpaired_translation")  # reuses UnalignedDataset: its layout comes along
    assert data_folders(tmp_path, "domains_fake", "test") == {"A": tmp_path / "testA", "B": tmp_path / "testB"}
    plugin_task("own_dataset_fake", "classification", dataset="fake_mod:Folders", data_layout="classes")
    assert data_folders(tmp_path, "own_dataset_fake", "val") == {"root": tmp_path / "val"}
    plugin_task("no_layout_fake", "generation", dataset="fake_mod:Folders")
    with pytest.raises(DataError, match="no folder layout for task 'no_layout_fake'.*data_layout"):
        data_folders(tmp_path, "no_layout_fake", "test")
    with pytest.raises(vgzoo.errors.DataNotFoundError, match=r"trainA.*choose the split with --split"):
        data_folders(tmp_path, "domains_fake", "train")
    with pytest.raises(ValueError, match="data_layout='columns', expected one of domains, pairs, classes"):
        dataclasses.replace(tasks.BUILTIN_TASKS["generation"], data_layout="columns")
