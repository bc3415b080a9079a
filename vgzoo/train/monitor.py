"""The GAN health monitor: reads the loss curves and says when adversarial training is failing.

The failure modes watched are those described for GANs by Goodfellow et al. (2014), Salimans et al.
(2016, "Improved Techniques for Training GANs") and Arjovsky & Bottou (2017, "Towards Principled
Methods for Training GANs"): a discriminator that wins outright (its loss near 0, so the generator's
gradients vanish), losses that oscillate ever more widely, a generator gradient norm that collapses,
mode collapse (samples that no longer vary with z), and NaN/Inf losses, which end the run.

Mixed precision with a GradScaler (fp16) skips a step on purpose when the scaled gradients overflow: that step's
gradient norms read Inf/NaN while its losses stay finite, and the scaler halves its scale. Such a row is a skipped
overflow step, counted (``amp_skipped_steps`` in health.json), not divergence; only a long unbroken run of them
(``max_skipped_steps``, by then the scale has shrunk by 2^50) or a non-finite *loss* is fatal.

Each detector is a small pure function of the recorded sequences, so it can be tested with crafted
sequences; :class:`GANHealthMonitor` feeds them step by step and writes ``RUN_DIR/health.json``.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .._hub import atomic_write_json

D_WINS_REMEDIES = [
    "lower the discriminator's learning rate (options d_lr_mult=0.5)",
    "augment what D sees with DiffAugment (options diffaugment='color,translation,cutout')",
    "use one-sided label smoothing for D's real targets",
    "give D fewer layers or channels",
]
OSCILLATION_REMEDIES = [
    "lower both learning rates",
    "use Adam's beta1 = 0.5 (the DCGAN setting) if it is higher",
    "keep an EMA of the generator for sampling (options ema=True)",
]
GRAD_COLLAPSE_REMEDIES = [
    "the discriminator is probably saturated: lower its learning rate or augment its inputs",
    "use the non-saturating or least-squares generator loss",
]
MODE_COLLAPSE_REMEDIES = [
    "add DiffAugment or a larger/fresher image pool",
    "lower the discriminator's learning rate, or train D more steps per G step",
    "check that z actually reaches the generator",
]


@dataclass
class Finding:
    """One thing the monitor noticed."""

    kind: str
    step: int
    message: str
    severity: str = "warning"  # "warning" or "fatal"
    remedies: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        text = f"[step {self.step}] {self.kind}: {self.message}"
        if self.remedies:
            text += " Remedies: " + "; ".join(self.remedies) + "."
        return text


# ------------------------------------------------------------------------------- pure detectors
def nonfinite(values: dict[str, float]) -> list[str]:
    """Names of the values that are NaN or infinite."""
    return [k for k, v in values.items() if isinstance(v, (int, float)) and not math.isfinite(v)]


def is_grad_norm_key(key: str) -> bool:
    """A log key that holds a gradient norm (``grad_norm``, ``G_grad_norm``, ``D_A_grad_norm``...)."""
    return key == "grad_norm" or key.endswith("_grad_norm")


def skipped_overflow(values: dict[str, float]) -> bool:
    """The row of a step a GradScaler skipped: every non-finite value is a gradient norm, and there is one."""
    bad = nonfinite(values)
    return bool(bad) and all(is_grad_norm_key(k) for k in bad)


def discriminator_wins(d_losses: list[float], threshold: float, patience: int) -> bool:
    """The last ``patience`` discriminator losses are all below ``threshold``."""
    if len(d_losses) < patience:
        return False
    return all(v < threshold for v in d_losses[-patience:])


def _amplitude(xs: list[float]) -> float:
    """Mean absolute step-to-step change: the size of the oscillation, insensitive to slow drift."""
    if len(xs) < 2:
        return 0.0
    return statistics.fmean(abs(b - a) for a, b in zip(xs, xs[1:], strict=False))


def growing_oscillation(losses: list[float], window: int, growth: float, min_amplitude: float) -> float | None:
    """Ratio by which the oscillation of the last ``window`` values exceeds the ``window`` before, if > ``growth``."""
    if len(losses) < 2 * window:
        return None
    before = _amplitude(losses[-2 * window : -window])
    recent = _amplitude(losses[-window:])
    if recent < min_amplitude:
        return None
    ratio = recent / max(before, 1e-12)
    return ratio if ratio > growth else None


def gradient_collapse(grad_norms: list[float], window: int, ratio: float) -> float | None:
    """Ratio of the recent median gradient norm to the first window's median, if below ``ratio``."""
    if len(grad_norms) < 2 * window:
        return None
    reference = statistics.median(grad_norms[:window])
    recent = statistics.median(grad_norms[-window:])
    if reference <= 0:
        return None
    r = recent / reference
    return r if r < ratio else None


def mode_collapse(fake_diversity: float, real_diversity: float, min_ratio: float) -> float | None:
    """The diversity ratio (fake / real) when it is below ``min_ratio``."""
    if real_diversity <= 0:
        return None
    r = fake_diversity / real_diversity
    return r if r < min_ratio else None


# --------------------------------------------------------------------------------------- monitor
@dataclass
class MonitorConfig:
    """Thresholds of the detectors (all overridable through the recipe options ``monitor_<name>``)."""

    d_loss_threshold: float = 0.02
    d_loss_patience: int = 100
    oscillation_window: int = 100
    oscillation_growth: float = 4.0
    oscillation_min_amplitude: float = 0.05
    grad_window: int = 50
    grad_collapse_ratio: float = 1e-3
    mode_collapse_ratio: float = 0.5
    diversity_warmup_steps: int = 200  # an untrained generator has little variety; judge it after this
    history: int = 1000
    max_skipped_steps: int = 50  # consecutive GradScaler-skipped steps before the run counts as diverged


class GANHealthMonitor:
    """Feeds the detectors step by step, remembers what it found and writes ``health.json``.

    Args:
        config: the thresholds.
        d_key: the log key of the discriminator's total loss.
        g_key: the log key of the generator's total loss.
        grad_key: the log key of the generator's gradient norm.
        path: where ``health.json`` goes (None: nowhere).
        log: a callable for messages (``print`` by default).
        grad_scaler: the run uses a GradScaler (fp16 mixed precision), so a step whose only non-finite values
            are gradient norms was skipped by the scaler, not diverged. The trainer passes
            ``scaler.is_enabled()``; off by default, where any non-finite value is fatal.
    """

    def __init__(
        self,
        config: MonitorConfig | None = None,
        *,
        d_key: str = "D_loss",
        g_key: str = "G_loss",
        grad_key: str = "G_grad_norm",
        path: str | Path | None = None,
        log=print,
        grad_scaler: bool = False,
    ) -> None:
        self.config = config or MonitorConfig()
        self.d_key, self.g_key, self.grad_key = d_key, g_key, grad_key
        self.path = Path(path) if path is not None else None
        self.log = log
        self.d_losses: list[float] = []
        self.g_losses: list[float] = []
        self.grad_norms: list[float] = []
        self.grad_reference: list[float] = []
        self.findings: list[Finding] = []
        self._active: set[str] = set()
        self.last_step = 0
        self.diversity: dict[str, float] | None = None
        self.grad_scaler = bool(grad_scaler)
        self.skipped_steps = 0
        self.consecutive_skips = 0

    # -- feeding
    def update(self, step: int, logs: dict[str, float]) -> list[Finding]:
        """Record one step's logs and return what is newly found (a fatal finding means: stop)."""
        c = self.config
        self.last_step = step
        new: list[Finding] = []
        if self.grad_scaler and skipped_overflow(logs):
            self.skipped_steps += 1
            self.consecutive_skips += 1
            if self.consecutive_skips < c.max_skipped_steps:
                return new  # the scaler skipped this update and lowers its scale; nothing to learn from its norms
            new.append(Finding(
                "amp_overflow", step,
                f"the GradScaler skipped {self.consecutive_skips} steps in a row (gradients overflow even at a "
                f"scale shrunk by 2^{self.consecutive_skips}); training stopped and the last good checkpoint is "
                "kept.", severity="fatal",
                remedies=["use --amp bf16 (no overflow, no scaler) where the hardware has it", "lower the learning "
                          "rates", "clip gradients (options clip_grad=1.0)", "train in fp32 (--amp off)"],
            ))
            self._record(new)
            return new
        self.consecutive_skips = 0
        bad = nonfinite(logs)
        if bad:
            new.append(Finding(
                "nonfinite", step,
                f"{', '.join(bad)} became NaN/Inf; training stopped and the last good checkpoint is kept.",
                severity="fatal",
                remedies=["lower the learning rates", "turn off --amp or use bfloat16", "clip gradients (options "
                          "clip_grad=1.0)", "resume from the last checkpoint with a smaller learning rate"],
            ))
            self._record(new)
            return new
        if self.d_key in logs:
            self.d_losses = (self.d_losses + [float(logs[self.d_key])])[-c.history:]
        if self.g_key in logs:
            self.g_losses = (self.g_losses + [float(logs[self.g_key])])[-c.history:]
        if self.grad_key in logs:
            g = float(logs[self.grad_key])
            if len(self.grad_reference) < c.grad_window:
                self.grad_reference.append(g)
            self.grad_norms = (self.grad_norms + [g])[-c.grad_window:]

        if discriminator_wins(self.d_losses, c.d_loss_threshold, c.d_loss_patience):
            new += self._once("discriminator_wins", step, (
                f"the discriminator is winning, the generator's gradients vanish: D loss < {c.d_loss_threshold} for "
                f"{c.d_loss_patience} consecutive steps (last {self.d_losses[-1]:.4g})."), D_WINS_REMEDIES)
        else:
            self._active.discard("discriminator_wins")
        for name, seq in (("D", self.d_losses), ("G", self.g_losses)):
            r = growing_oscillation(seq, c.oscillation_window, c.oscillation_growth, c.oscillation_min_amplitude)
            if r is not None:
                new += self._once(f"growing_oscillation_{name}", step, (
                    f"the {name} loss oscillates {r:.1f}x more widely over the last {c.oscillation_window} steps "
                    "than over the ones before."), OSCILLATION_REMEDIES)
            else:
                self._active.discard(f"growing_oscillation_{name}")
        if len(self.grad_reference) >= c.grad_window and len(self.grad_norms) >= c.grad_window:
            r = gradient_collapse(self.grad_reference + self.grad_norms, c.grad_window, c.grad_collapse_ratio)
            if r is not None:
                new += self._once("gradient_collapse", step, (
                    f"the generator's gradient norm collapsed to {r:.2g}x its early value: it no longer learns."),
                    GRAD_COLLAPSE_REMEDIES)
            else:
                self._active.discard("gradient_collapse")
        self._record(new)
        return new

    def check_diversity(self, step: int, fake_diversity: float, real_diversity: float) -> list[Finding]:
        """Compare the samples' diversity across z (fixed classes) with the real data's."""
        self.diversity = {"step": step, "fake": fake_diversity, "real": real_diversity,
                          "ratio": fake_diversity / real_diversity if real_diversity > 0 else float("nan")}
        new: list[Finding] = []
        if step < self.config.diversity_warmup_steps:
            return new
        r = mode_collapse(fake_diversity, real_diversity, self.config.mode_collapse_ratio)
        if r is not None:
            new = self._once("mode_collapse", step, (
                f"mode collapse: samples for a fixed class vary {r:.2f}x as much across z as real images do "
                f"(below {self.config.mode_collapse_ratio})."), MODE_COLLAPSE_REMEDIES)
        else:
            self._active.discard("mode_collapse")
        self._record(new)
        return new

    def _once(self, kind: str, step: int, message: str, remedies: list[str]) -> list[Finding]:
        """Report a condition when it starts (not again while it lasts)."""
        if kind in self._active:
            return []
        self._active.add(kind)
        return [Finding(kind, step, message, remedies=list(remedies))]

    def _record(self, new: list[Finding]) -> None:
        for f in new:
            self.findings.append(f)
            if self.log is not None:
                self.log(f"health: {f}")
        if new:
            self.write()

    # -- reporting and state
    @property
    def status(self) -> str:
        if any(f.severity == "fatal" for f in self.findings):
            return "failed"
        return "warning" if self.findings else "healthy"

    def report(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "last_step": self.last_step,
            "active": sorted(self._active),
            "findings": [asdict(f) for f in self.findings],
            "diversity": self.diversity,
            "amp_skipped_steps": self.skipped_steps,
            "thresholds": asdict(self.config),
        }

    def write(self) -> None:
        if self.path is not None:
            atomic_write_json(self.path, self.report())

    def state_dict(self) -> dict[str, Any]:
        return {
            "d_losses": self.d_losses, "g_losses": self.g_losses, "grad_norms": self.grad_norms,
            "grad_reference": self.grad_reference, "findings": [asdict(f) for f in self.findings],
            "active": sorted(self._active), "last_step": self.last_step, "diversity": self.diversity,
            "skipped_steps": self.skipped_steps, "consecutive_skips": self.consecutive_skips,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.d_losses = list(state["d_losses"])
        self.g_losses = list(state["g_losses"])
        self.grad_norms = list(state["grad_norms"])
        self.grad_reference = list(state["grad_reference"])
        self.findings = [Finding(**f) for f in state["findings"]]
        self._active = set(state["active"])
        self.last_step = int(state["last_step"])
        self.diversity = state.get("diversity")
        self.skipped_steps = int(state.get("skipped_steps", 0))  # absent in checkpoints older than the AMP fix
        self.consecutive_skips = int(state.get("consecutive_skips", 0))
