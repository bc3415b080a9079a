"""``--compile`` with BigGAN: a compiled training step and compiled generation compile a few graphs, not one more
per step, per standing-statistics batch or per class, so they never reach torch.compile's recompile limit (past it
the networks silently run eagerly again). Counted on the CPU with the ``aot_eager`` backend, as tests/test_compile.py
does (the same graph capture without generating kernels)."""

from __future__ import annotations

import warnings

import pytest
import torch
import torch._dynamo
from test_biggan_train import DIGITS
from torch import nn
from torch._dynamo.eval_frame import _debug_get_cache_entry_list
from torch._dynamo.utils import counters
from vgzoo_biggan.model import TINY, BigGAN, BigGANDeepGenerator, BigGANDiscriminator

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def _graphs(fn) -> int:
    """How many compiled versions dynamo holds for ``fn``'s code (one per compile or recompile)."""
    return len(_debug_get_cache_entry_list(fn.__code__))


@pytest.fixture
def aot_eager(monkeypatch):
    original = nn.Module.compile

    def compile_cheaply(self, *args, **kwargs):
        return original(self, *args, **{**kwargs, "backend": "aot_eager"})

    monkeypatch.setattr(nn.Module, "compile", compile_cheaply)
    torch._dynamo.reset()
    counters.clear()
    yield
    torch._dynamo.reset()


@pytest.mark.slow
def test_a_compiled_training_run_compiles_each_network_a_few_times(tmp_path, aot_eager):
    from vgzoo.train import fit

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # a checkpoint every step: standing statistics (51 truncation values, of the model and of its EMA) each time
        res = fit("biggan", "builtin:digits", tmp_path / "run", steps=2, batch_size=8, device="cpu", progress=False,
                  log=lambda message: None, model_kwargs=DIGITS, compile=True,
                  options={"standing_batches": 1, "save_every": 1, "ema": True, "threads": 1, "num_workers": 0})
    assert res.step == 2
    # generator: the G step (grad, the whole batch), the D steps' fakes (no grad, a slice each), the sample grid
    # (eval mode); discriminator: the D steps (inputs without grad) and the G step (fakes with grad)
    graphs = {"generator": _graphs(BigGANDeepGenerator.forward), "discriminator": _graphs(BigGANDiscriminator.forward)}
    assert graphs == {"generator": 3, "discriminator": 2}, graphs
    assert counters["frames"]["total"] == 5, dict(counters["frames"])  # nothing else compiled, nothing failed
    assert not counters["graph_break"], dict(counters["graph_break"])


@pytest.mark.slow
def test_compiled_generation_compiles_once_per_batch_shape():
    """As ``vgzoo generate --compile`` draws: ``torch.compile(model.generate_images)``, one call per class and
    chunk of seeds; the compiled images are the eager ones."""
    model = BigGAN(**TINY).eval()
    model.standing_statistics(batches=1, batch_size=8)
    torch._dynamo.reset()
    try:
        draw = torch.compile(model.generate_images, backend="aot_eager")
        with torch.no_grad():
            for c in range(TINY["num_classes"]):
                for seeds in ([0, 1, 2], [3, 4, 5], [6]):
                    z, labels = model.latents_for_seeds(seeds, 0.5), torch.full((len(seeds),), c)
                    torch.testing.assert_close(draw(z, labels, 0.5), model.generate_images(z, labels, 0.5))
        assert _graphs(type(model).generate_images) <= 2  # three seeds a call, then one
    finally:
        torch._dynamo.reset()
