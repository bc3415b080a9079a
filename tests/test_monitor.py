"""The GAN health monitor: each detector on crafted sequences, and on deliberately broken runs."""

from __future__ import annotations

import json

import pytest
import torch
from test_train import Blobs, TinyCGAN

from vgzoo.train import GANHealthMonitor, MonitorConfig, TrainingError, fit
from vgzoo.train import monitor as mon


def test_discriminator_wins_needs_k_consecutive_low_losses():
    assert mon.discriminator_wins([0.6] * 10 + [0.01] * 5, threshold=0.02, patience=5)
    assert not mon.discriminator_wins([0.6] * 10 + [0.01] * 4 + [0.5], threshold=0.02, patience=5)
    assert not mon.discriminator_wins([0.01] * 4, threshold=0.02, patience=5)


def test_growing_oscillation():
    calm = [0.7 + (0.05 if i % 2 else -0.05) for i in range(40)]
    wild = calm[:20] + [0.7 + (0.8 if i % 2 else -0.8) for i in range(20)]
    assert mon.growing_oscillation(calm, window=20, growth=4.0, min_amplitude=0.05) is None
    ratio = mon.growing_oscillation(wild, window=20, growth=4.0, min_amplitude=0.05)
    assert ratio is not None and ratio > 10
    drifting = [1.0 - 0.02 * i for i in range(40)]  # a smooth decline is not an oscillation
    assert mon.growing_oscillation(drifting, window=20, growth=4.0, min_amplitude=0.05) is None


def test_gradient_collapse_and_mode_collapse():
    assert mon.gradient_collapse([1.0] * 10 + [1e-5] * 10, window=10, ratio=1e-3) == pytest.approx(1e-5)
    assert mon.gradient_collapse([1.0] * 10 + [0.5] * 10, window=10, ratio=1e-3) is None
    assert mon.mode_collapse(0.1, 1.0, 0.5) == pytest.approx(0.1)
    assert mon.mode_collapse(0.8, 1.0, 0.5) is None
    assert mon.nonfinite({"a": 1.0, "b": float("nan"), "c": float("inf")}) == ["b", "c"]


def test_monitor_reports_once_writes_health_json_and_round_trips(tmp_path):
    messages = []
    cfg = MonitorConfig(d_loss_threshold=0.05, d_loss_patience=3, oscillation_window=5, grad_window=3,
                        diversity_warmup_steps=5)
    m = GANHealthMonitor(cfg, path=tmp_path / "health.json", log=messages.append)
    for step in range(1, 7):
        m.update(step, {"D_loss": 0.01, "G_loss": 3.0, "G_grad_norm": 1.0})
    assert [f.kind for f in m.findings] == ["discriminator_wins"]  # reported when it starts, not every step
    assert "generator's gradients vanish" in messages[0] and "DiffAugment" in messages[0]
    for step in range(7, 10):
        m.update(step, {"D_loss": 0.5, "G_loss": 1.0, "G_grad_norm": 1e-7})
    assert "gradient_collapse" in [f.kind for f in m.findings]
    assert m.check_diversity(4, fake_diversity=0.01, real_diversity=0.2) == []  # still warming up
    m.check_diversity(10, fake_diversity=0.01, real_diversity=0.2)
    health = json.loads((tmp_path / "health.json").read_text())
    assert health["status"] == "warning"
    assert {f["kind"] for f in health["findings"]} == {"discriminator_wins", "gradient_collapse", "mode_collapse"}
    assert health["diversity"]["ratio"] == pytest.approx(0.05)
    twin = GANHealthMonitor(cfg, log=None)
    twin.load_state_dict(json.loads(json.dumps(m.state_dict())))
    assert twin.report()["findings"] == m.report()["findings"] and twin.d_losses == m.d_losses
    fatal = m.update(11, {"D_loss": float("nan")})
    assert fatal[0].severity == "fatal" and m.status == "failed"


def test_broken_run_discriminator_lr_100x_is_diagnosed(tmp_path):
    monitor = {"d_loss_threshold": 0.05, "d_loss_patience": 10}
    results = {}
    for mult in (1.0, 100.0):
        torch.manual_seed(0)
        out = tmp_path / f"d{mult:g}"
        results[mult] = fit(TinyCGAN(), Blobs(48), out, steps=40, batch_size=8, progress=False,
                            options={"d_lr_mult": mult, "monitor": monitor})
        results[mult].health_json = json.loads((out / "health.json").read_text())
    assert results[1.0].health == "healthy"
    broken = results[100.0].health_json
    assert broken["status"] == "warning"
    assert [f["kind"] for f in broken["findings"]] == ["discriminator_wins"]
    assert any("learning rate" in r for r in broken["findings"][0]["remedies"])


def test_nan_stops_keeps_last_good_checkpoint_and_fails(tmp_path):
    out = tmp_path / "nan"
    torch.manual_seed(0)
    with pytest.raises(TrainingError, match="diverged at step 5") as err:
        fit(TinyCGAN(nan_at=5), Blobs(48), out, steps=20, batch_size=8, progress=False, options={"save_every": 2})
    assert "step_4" in str(err.value) and "--resume" in str(err.value)
    assert (out / "checkpoints" / "latest").read_text().strip() == "step_4"
    assert not (out / "checkpoints" / "step_5").exists()
    health = json.loads((out / "health.json").read_text())
    assert health["status"] == "failed" and health["findings"][-1]["kind"] == "nonfinite"
    from vgzoo._hub import load_state_dict

    weights = load_state_dict(out / "checkpoints" / "step_4" / "model.safetensors")
    assert all(torch.isfinite(v).all() for v in weights.values())


def _grad_scaler_rows(steps: int, init_scale: float) -> list[dict[str, float]]:
    """The log rows of a real fp16-style GradScaler loop on CPU (the trainer's _backward_step, G and D)."""
    from vgzoo.train.recipes import grad_norm

    torch.manual_seed(0)
    nets = {"G": torch.nn.Linear(4, 4), "D": torch.nn.Linear(4, 1)}
    opts = {k: torch.optim.SGD(n.parameters(), lr=1e-6) for k, n in nets.items()}
    scaler = torch.amp.GradScaler("cpu", init_scale=init_scale, growth_interval=1000)
    rows = []
    for _ in range(steps):
        row = {}
        for k, net in nets.items():
            loss = net(100 * torch.randn(8, 4)).pow(2).mean()
            opts[k].zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.unscale_(opts[k])
            row[f"{k}_grad_norm"] = float(grad_norm(net.parameters()))
            scaler.step(opts[k])
            row[f"{k}_loss"] = float(loss.detach())
        scaler.update()
        rows.append(row)
    return rows


def test_grad_scaler_overflow_rows_are_skipped_steps_not_divergence(tmp_path):
    # At 2^127 the scaled gradients overflow fp32: the scaler skips and halves until they fit (a dozen steps).
    rows = _grad_scaler_rows(30, 2.0**127)
    skipped = [r for r in rows if not all(map(torch.isfinite, map(torch.tensor, r.values())))]
    assert skipped and all(mon.skipped_overflow(r) for r in skipped)
    assert all(map(torch.isfinite, map(torch.tensor, rows[-1].values())))  # the scaler recovered
    strict = GANHealthMonitor(log=None)
    assert strict.update(1, rows[0])[0].severity == "fatal"  # without a scaler, Inf is divergence (unchanged)
    m = GANHealthMonitor(path=tmp_path / "health.json", log=None, grad_scaler=True)
    for i, r in enumerate(rows, 1):
        assert not m.update(i, r), r
    assert m.status == "healthy" and m.skipped_steps == len(skipped) and m.consecutive_skips == 0
    assert all(map(torch.isfinite, map(torch.tensor, m.grad_norms)))  # skipped norms kept out of the history
    m.write()
    assert json.loads((tmp_path / "health.json").read_text())["amp_skipped_steps"] == len(skipped)
    twin = GANHealthMonitor(log=None, grad_scaler=True)
    twin.load_state_dict(json.loads(json.dumps(m.state_dict())))
    assert twin.skipped_steps == m.skipped_steps


def test_grad_scaler_run_still_fails_on_a_nan_loss_and_on_endless_overflow():
    m = GANHealthMonitor(log=None, grad_scaler=True)
    fatal = m.update(1, {"D_loss": float("nan"), "D_grad_norm": float("nan")})
    assert fatal[0].kind == "nonfinite" and fatal[0].severity == "fatal"
    m = GANHealthMonitor(MonitorConfig(max_skipped_steps=5), log=None, grad_scaler=True)
    row = {"G_loss": 0.7, "G_grad_norm": float("inf"), "D_loss": 1.3, "D_grad_norm": float("inf")}
    assert all(not m.update(i, row) for i in range(1, 5))
    fatal = m.update(5, row)
    assert fatal[0].kind == "amp_overflow" and fatal[0].severity == "fatal" and m.status == "failed"
    assert any("bf16" in r for r in fatal[0].remedies)
    # an old checkpoint's monitor state (before the AMP fix) still loads
    old = {k: v for k, v in m.state_dict().items() if k not in ("skipped_steps", "consecutive_skips")}
    GANHealthMonitor(log=None).load_state_dict(old)
