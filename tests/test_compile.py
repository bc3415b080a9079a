"""Issue 26: ``--compile`` makes a real difference only without graph breaks. Counted on the CPU with torch._dynamo.

Every installed family's forward is traced with ``torch._dynamo.explain``; every family's training step runs through
the trainer with ``compile=True``, the compiler backend swapped for ``aot_eager`` (the same graph capture, forward and
backward, without generating kernels, so it stays cheap on the CPU), and ``counters["graph_break"]`` must stay
empty. The compiled CUDA run itself is in tests/test_cuda.py.
"""

from __future__ import annotations

import warnings

import pytest
import torch
import torch._dynamo
from test_train_runs import FAMILIES
from torch import nn
from torch._dynamo.utils import counters

import vgzoo
from vgzoo.protocols import GANModel
from vgzoo.train import fit

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def _skip_missing(name: str) -> None:
    if name not in vgzoo.list_models():
        pytest.skip(f"{name} is not installed (plugin)")


def _one_per_family() -> list[str]:
    """The first registered name of every installed family (built-in and plugins), besides FAMILIES' own."""
    from vgzoo._factory import model_info

    installed = vgzoo.list_models()
    covered = {model_info(n).family or n for n in FAMILIES if n in installed}
    first: dict[str, str] = {}
    for name in installed:
        first.setdefault(model_info(name).family or name, name)
    return sorted(name for family, name in first.items() if family not in covered)


@pytest.mark.parametrize("name", [*FAMILIES, *_one_per_family()])
def test_forward_has_no_graph_break(name):
    from vgzoo import _registry

    _skip_missing(name)
    kwargs = FAMILIES[name][0] if name in FAMILIES else _registry.load_spec(name).test_kwargs
    model = vgzoo.create(name, **kwargs).eval()
    torch._dynamo.reset()
    explained = torch._dynamo.explain(model)(*model.example_inputs(2))
    assert explained.graph_count >= 1
    assert explained.graph_break_count == 0, [str(r.reason)[:300] for r in explained.break_reasons]


@pytest.fixture
def compiled(monkeypatch):
    """Every ``nn.Module.compile`` call, recorded, with the backend swapped for aot_eager."""
    calls: list[tuple[nn.Module, dict]] = []
    original = nn.Module.compile

    def record(self, *args, **kwargs):
        calls.append((self, dict(kwargs)))
        return original(self, *args, **{**kwargs, "backend": "aot_eager"})

    monkeypatch.setattr(nn.Module, "compile", record)
    torch._dynamo.reset()
    counters.clear()
    yield calls
    torch._dynamo.reset()


@pytest.mark.parametrize("name, options", [*((n, {}) for n in FAMILIES),
                                           ("cgan_embed_digits", {"diffaugment": "color,translation,cutout",
                                                                  "ema": True})])
def test_a_compiled_training_step_has_no_graph_break(tmp_path, compiled, name, options):
    _skip_missing(name)
    kwargs, data, batch, _ = FAMILIES[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = fit(name, data() if callable(data) else data, tmp_path / "run", steps=2, batch_size=batch,
                  model_kwargs=kwargs, device="cpu", compile=True,
                  options={"threads": 1, "num_workers": 0, **options}, progress=False, log=lambda m: None)
    assert res.step == 2
    assert compiled and all(kw.get("dynamic") is False for _, kw in compiled)  # static shapes
    if not isinstance(res.model, GANModel):
        assert [m for m, _ in compiled] == [res.model]  # a classifier (the ViT) is compiled whole
    else:
        parts = {*res.model.generators().values(), *res.model.discriminators().values()}
        assert {m for m, _ in compiled} == parts
    assert counters["stats"]["unique_graphs"] >= len(compiled)  # the step did run through the compiled graphs
    assert not counters["graph_break"], dict(counters["graph_break"])


def test_the_counter_sees_a_graph_break(compiled):
    """The check can fail: a data-dependent branch in a forward is counted."""

    class Branchy(nn.Module):
        def forward(self, x):
            return x * 2 if bool((x > 0).all()) else x

    m = Branchy()
    m.compile(dynamic=False)
    m(torch.ones(3))
    assert sum(counters["graph_break"].values()) >= 1


def test_cgan_labels_are_still_checked_outside_a_trace():
    """The value check left the traced forward, not the model: eager calls still refuse an out-of-range label."""
    model = vgzoo.create("cgan_embed_digits", nz=8, ngf=8, ndf=8)
    with pytest.raises(ValueError, match=r"\[0, 10\).*\[12\]"):
        model(torch.zeros(2, 8), torch.tensor([1, 12]))
    with pytest.raises(ValueError, match=r"batch\['label'\]"):
        model.discriminator_loss({"image": torch.zeros(2, 1, 16, 16), "label": torch.tensor([0, 10])})
