"""The StyleGAN2-ADA recipe: each loss term against a hand computation, the optimiser settings, G_ema, ADA's p inside a
run, and a run resumed bit for bit (tiny networks, CPU, a few steps)."""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn

training = pytest.importorskip("vgzoo_stylegan2.training")
model_module = pytest.importorskip("vgzoo_stylegan2.model")

TINY = {**model_module.TINY, "img_channels": 1}


def _model(**kw):
    torch.manual_seed(0)
    return model_module.StyleGAN2(**{**TINY, **kw})


def _recipe(model, **options):
    recipe = training.StyleGAN2Recipe(model, None, lr=None, batch_size=4, options={"augment": "none", **options},
                                      device=torch.device("cpu"))
    recipe.build(horizon=100, steps_per_epoch=10)
    return recipe


class LinearD(nn.Module):
    """D(x) = <w, x>: its input gradient is w for every image."""

    def __init__(self, shape):
        super().__init__()
        self.w = nn.Parameter(torch.randn(shape, generator=torch.Generator().manual_seed(3)))

    def forward(self, img, c):
        return (img * self.w).flatten(1).sum(1, keepdim=True)


def test_r1_is_half_gamma_times_the_squared_input_gradient():
    model = _model(r1_gamma=0.7)
    model.D = LinearD((1, 16, 16))
    recipe = _recipe(model)
    real = torch.rand(4, 1, 16, 16) * 2 - 1
    z = torch.randn(4, 16)
    loss, logs = recipe.phases("D_reg", real, None, z, None)
    w = model.D.w.detach()
    assert float(logs["D_r1_penalty"]) == pytest.approx(float(w.square().sum()), rel=1e-5)
    assert float(loss.detach()) == pytest.approx(0.7 / 2 * float(w.square().sum()), rel=1e-5)
    # the phase scales by the interval (16) and takes one Adam step with the lazily corrected lr: the first step of
    # Adam with beta1 = 0 moves every weight by lr against the sign of its gradient (16 * gamma * w)
    before = w.clone()
    recipe._phase("D", "reg", 16, real, None, z, None)
    step = recipe.lr * 16 / 17
    assert torch.allclose(model.D.w.detach(), before - step * before.sign(), atol=1e-6)


def test_r1_penalty_of_a_quadratic_discriminator():
    x = torch.randn(3, 2, 4, 4, requires_grad=True)
    logits = x.square().flatten(1).sum(1)  # gradient 2x
    assert torch.allclose(training.r1_penalty(logits, x), (2 * x.detach()).square().flatten(1).sum(1))


def test_path_length_penalty_and_its_running_mean():
    g = torch.Generator().manual_seed(1)
    mixing = torch.randn(8, 2 * 4 * 4, generator=g)  # images = (ws summed over layers) @ mixing

    def synth(ws):
        return (ws.sum(1) @ mixing).view(-1, 2, 4, 4)

    ws = torch.randn(3, 5, 8, generator=g).requires_grad_(True)
    pl = training.PathLengthPenalty(decay=0.01)
    torch.manual_seed(7)
    penalty, lengths = pl(synth(ws), ws)
    torch.manual_seed(7)
    y = torch.randn(3, 2, 4, 4) / math.sqrt(16)
    grad = (y.flatten(1) @ mixing.t()).unsqueeze(1).expand(3, 5, 8)  # J^T y, the same for every layer's w
    want_lengths = grad.square().sum(2).mean(1).sqrt()
    a1 = 0.0 + 0.01 * (float(want_lengths.mean()) - 0.0)
    assert torch.allclose(lengths, want_lengths, rtol=1e-5)
    assert float(pl.mean) == pytest.approx(a1, rel=1e-5)
    assert torch.allclose(penalty, (want_lengths - a1).square(), rtol=1e-5)
    torch.manual_seed(8)
    _, lengths2 = pl(synth(ws), ws)
    assert float(pl.mean) == pytest.approx(a1 + 0.01 * (float(lengths2.mean()) - a1), rel=1e-5)


def test_the_path_length_phase_uses_half_the_batch_and_the_model_weight():
    model = _model(pl_weight=3.0)
    recipe = _recipe(model)
    z = torch.randn(4, 16)
    seen = []
    model.G.synthesis.register_forward_pre_hook(lambda module, args: seen.append(args[0].shape[0]))
    model.G.requires_grad_(True)  # as the phase turns it on
    loss, logs = recipe.phases("G_reg", torch.zeros(4, 1, 16, 16), None, z, None)
    assert seen == [2] and float(loss.detach()) == pytest.approx(3.0 * float(logs["G_pl_penalty"]), rel=1e-5)


def test_ema_beta_ramps_up_and_the_average_follows():
    assert training.ema_beta(32, 10, 0, 0.05) == 0.0  # no images seen yet: G_ema copies G
    assert training.ema_beta(32, 10, 3200, 0.05) == pytest.approx(0.5 ** (32 / 160))  # half-life 3200 * 0.05
    assert training.ema_beta(32, 10, 10**7, 0.05) == pytest.approx(0.5 ** (32 / 10_000))  # capped at ema_kimg
    assert training.ema_beta(32, 10, 0, None) == pytest.approx(0.5 ** (32 / 10_000))
    g, g_ema = nn.Linear(2, 2), nn.Linear(2, 2)
    w, w_ema = g.weight.detach().clone(), g_ema.weight.detach().clone()
    training.update_ema(g_ema, g, 0.25)
    assert torch.allclose(g_ema.weight, w + 0.25 * (w_ema - w))


def test_adam_takes_the_lazy_regularisation_correction_and_cfg_defaults():
    recipe = _recipe(_model())
    lr = recipe.lr
    assert lr == 0.0025  # cfg auto below 1024 px
    g, d = recipe.optimizers["G"].param_groups[0], recipe.optimizers["D"].param_groups[0]
    assert g["lr"] == pytest.approx(lr * 4 / 5) and d["lr"] == pytest.approx(lr * 16 / 17)
    assert g["betas"] == pytest.approx((0.0, 0.99 ** (4 / 5))) and d["betas"] == pytest.approx((0.0, 0.99 ** (16 / 17)))
    assert recipe.ema_kimg == pytest.approx(4 * 10 / 32) and recipe.ema_rampup == 0.05  # auto: batch 4
    paper = _recipe(_model(), cfg="paper256")
    assert paper.lr == 0.0025 and paper.ema_kimg == 20.0 and paper.ema_rampup is None
    # the batch per process when --batch-size is not given: the configuration's batch over its reference GPUs
    batch = training.StyleGAN2Recipe.default_batch_size
    assert batch(_model(), {}, 1) == 32 and batch(_model(), {"cfg": "paper256"}, 1) == 64 // 8
    assert batch(_model(), {"cfg": "cifar"}, 1) == 64 // 2 and batch(_model(), {"cfg": "stylegan2"}, 1) == 32 // 8
    assert training.per_process_batch("auto", 256, 1) == 16 and training.per_process_batch("auto", 1024, 2) == 4
    with pytest.raises(ValueError, match="cfg='paper64'"):
        _recipe(_model(), cfg="paper64")
    with pytest.raises(ValueError, match="augment='adaptive'"):
        _recipe(_model(), augment="adaptive")


def _fit(out, steps, **kw):
    from vgzoo.train import fit

    options = {"augment": "ada", "ada_kimg": 0.32, "ada_target": 0.6, "save_every": 2, **kw.pop("options", {})}
    return fit("stylegan2_tiny", "builtin:digits", out, steps=steps, batch_size=4, device="cpu", progress=False,
               log=lambda message: None, options=options, model_kwargs={"img_channels": 1}, **kw)


def _rows(run):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_a_run_adjusts_p_from_the_signs_of_d_on_reals(tmp_path):
    result = _fit(tmp_path / "run", 8, options={"eval_every": 8, "eval_data": "builtin:digits"})
    assert result.finished
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["task"] == "stylegan2_generation" and config["recipe"] == "StyleGAN2Recipe"
    rows = [r for r in _rows(tmp_path / "run") if r["split"] == "train"]
    assert [r["step"] for r in rows] == list(range(1, 9))
    assert all(k in rows[0] for k in ("G_loss", "D_loss", "G_pl_penalty", "D_r1_penalty", "ada_p"))
    assert "G_pl_penalty" in rows[4] and "D_r1_penalty" not in rows[4]  # lazy: pl every 4, R1 every 16 steps
    step_size = 4 * 4 / 320  # batch * interval / (ada_kimg * 1000)
    p = 0.0
    for k in (4, 8):  # r_t by hand: the mean sign of D on every real of the interval (D main, and R1 at step 0)
        window = rows[k - 4:k]
        signs = sum(r["D_real_sign"] * 4 + r.get("D_reg_real_sign", 0) * 4 for r in window)
        count = 4 * 4 + 4 * sum("D_reg_real_sign" in r for r in window)
        rt = signs / count
        assert rows[k - 1]["ada_rt"] == pytest.approx(rt, abs=1e-6)
        p = max(0.0, p + math.copysign(step_size, rt - 0.6) if rt != 0.6 else p)
        assert rows[k - 1]["ada_p"] == pytest.approx(p, abs=1e-6)
        assert all(r["ada_p"] == pytest.approx(rows[k - 5]["ada_p"] if k > 4 else 0.0) for r in window[:-1])
    scores = [r for r in _rows(tmp_path / "run") if r["split"] == "val"]
    assert [r["step"] for r in scores] == [8] and math.isfinite(scores[0]["fid"])  # -o eval_every: G_ema's FID
    assert (tmp_path / "run" / "samples" / "final.png").is_file()
    assert (tmp_path / "run" / "loss_curves.png").is_file()


def test_compile_trains_with_r1_and_path_length_as_the_eager_run(tmp_path, monkeypatch):
    """R1 differentiates D's input gradient again, which a compiled D (aot_autograd) cannot: that phase runs D's
    own module eagerly, sharing its parameters. The backend is aot_eager (the same graph capture and aot_autograd,
    without generating kernels): the compiled run gives the eager run's numbers."""
    import torch._dynamo
    from torch._dynamo.utils import counters

    original = nn.Module.compile
    compiled = []

    def aot_eager(self, *args, **kwargs):
        compiled.append(type(self).__name__)
        return original(self, *args, **{**kwargs, "backend": "aot_eager"})

    options = {"augment": "ada", "pl_interval": 1, "r1_interval": 1, "threads": 1, "num_workers": 0}
    _fit(tmp_path / "eager", 2, options=options)
    monkeypatch.setattr(nn.Module, "compile", aot_eager)
    torch._dynamo.reset()
    counters.clear()
    try:
        result = _fit(tmp_path / "compiled", 2, options=options, compile=True)
    finally:
        torch._dynamo.reset()
    assert result.finished and "Discriminator" in compiled
    assert counters["stats"]["unique_graphs"] >= 1  # D's main phase ran through its graph
    eager, rows = _rows(tmp_path / "eager"), _rows(tmp_path / "compiled")
    assert [r["step"] for r in rows] == [1, 2] and all("D_r1_penalty" in r and "G_pl_penalty" in r for r in rows)
    for mine, theirs in zip(rows, eager, strict=True):
        for key in ("G_loss", "D_loss", "G_pl_penalty", "D_r1_penalty"):
            assert mine[key] == pytest.approx(theirs[key], rel=1e-3, abs=1e-5), key


def test_resume_is_bitwise(tmp_path):
    from safetensors.torch import load_file

    _fit(tmp_path / "whole", 6)
    _fit(tmp_path / "split", 3)
    _fit(tmp_path / "split", 6, resume=True)
    for name in ("model.safetensors", "state.safetensors", "optim.safetensors"):
        a = load_file(tmp_path / "whole" / "checkpoints" / "step_6" / name)
        b = load_file(tmp_path / "split" / "checkpoints" / "step_6" / name)
        assert a.keys() == b.keys()
        for key in a:
            if not key.startswith("rng/"):
                assert torch.equal(a[key], b[key]), (name, key)
    whole, split = _rows(tmp_path / "whole"), _rows(tmp_path / "split")
    assert [r for r in whole if r["split"] == "train"] == [r for r in split if r["split"] == "train"]


def test_a_conditional_model_trains_on_labelled_digits(tmp_path):
    from vgzoo.train import fit

    result = fit("stylegan2_cifar", "builtin:digits", tmp_path / "run", steps=2, batch_size=4, device="cpu",
                 progress=False, log=lambda message: None, model_kwargs={**TINY, "c_dim": 10})
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["task"] == "stylegan2_conditional_generation" and config["recipe"] == "ConditionalStyleGAN2Recipe"
    rows = [r for r in _rows(tmp_path / "run") if r["split"] == "train"]
    assert result.finished and all(math.isfinite(r["G_loss"]) and math.isfinite(r["D_loss"]) for r in rows)
    assert "G_pl_penalty" not in rows[0]  # the cifar configuration has no path-length term (pl_weight 0)


def test_a_published_tag_trains_on_from_its_g_d_and_g_ema(tmp_path):
    import vgzoo
    from vgzoo import _registry
    from vgzoo._hub import save_state_dict
    from vgzoo.train import fit
    from vgzoo.train.callbacks import Callback

    published = _model()
    torch.manual_seed(9)
    for p in published.parameters():  # G, D and G_ema all differ from a fresh initialisation
        p.data.normal_()
    save_state_dict(published.state_dict(), tmp_path / "snapshot.safetensors")
    cfg = {"input_size": (1, 16, 16), "mean": (0.5,), "std": (0.5,), "paper": "test", "description": "test"}
    cfgs = {"": _registry.make_cfg(**cfg),
            "mine": _registry.make_cfg(**cfg, file=str(tmp_path / "snapshot.safetensors"))}
    vgzoo.register_model("stylegan2_tagged_test", model_module.StyleGAN2, family="stylegan2", task="generation",
                         cfgs=cfgs, model_args=TINY)
    seen = {}

    class Start(Callback):
        def on_start(self, run, st):
            seen["state"] = {k: v.clone() for k, v in st.model.state_dict().items()}
            seen["recipe"] = (st.recipe.transfer, st.recipe.ada.kimg, st.recipe.ema_rampup)

    try:
        fit("stylegan2_tagged_test.mine", "builtin:digits", tmp_path / "run", steps=1, batch_size=4, device="cpu",
            progress=False, log=lambda message: None, callbacks=[Start()])
        assert seen["recipe"] == (True, 100.0, None)  # the reference's --resume settings
        for key, value in published.state_dict().items():
            assert torch.equal(seen["state"][key], value), key
        seen.clear()
        fit("stylegan2_tagged_test", "builtin:digits", tmp_path / "fresh", steps=1, batch_size=4, device="cpu",
            progress=False, log=lambda message: None, callbacks=[Start()])
        assert seen["recipe"][0] is False and seen["recipe"][1] == 500.0 and seen["recipe"][2] is not None
    finally:
        _registry._specs.pop("stylegan2_tagged_test", None)


def test_the_networks_keep_their_own_precision(tmp_path):
    from vgzoo.train import TrainingError, fit

    with pytest.raises(TrainingError, match="keeps its own mixed precision"):
        fit("stylegan2_tiny", "builtin:digits", tmp_path / "run", steps=1, batch_size=4, device="cpu", amp="bf16",
            progress=False, log=lambda message: None, model_kwargs={"img_channels": 1})


def test_vgzoo_train_takes_the_augment_mode_on_the_command_line(tmp_path):
    from click.testing import CliRunner

    from vgzoo.cli import cli

    args = ["train", "stylegan2_tiny", "--data", "builtin:digits", "-k", "img_channels=1", "-o", "augment=fixed",
            "-o", "augment_p=0.5", "--steps", "1", "--batch-size", "4", "--out", str(tmp_path / "run"),
            "--no-progress"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    (row,) = [r for r in _rows(tmp_path / "run") if r["split"] == "train"]
    assert row["ada_p"] == 0.5 and "ada_rt" not in row  # fixed: p as given, never adapted
    bad = CliRunner().invoke(cli, [*args[:8], "-o", "augment=sometimes", "--steps", "1", "--out",
                                   str(tmp_path / "bad"), "--no-progress"])
    assert bad.exit_code != 0 and "augment='sometimes'" in bad.output and "ada, fixed, none" in bad.output
