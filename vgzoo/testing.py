"""The conformance checks every vgzoo model, built-in or plugin, must pass.

Plugin authors call :func:`check_model` in their own test suites::

    def test_conformance():
        vgzoo.testing.check_model("my_model")

Each check raises an ``AssertionError`` that says which part of the model protocol failed.
"""

from __future__ import annotations

import tempfile
from typing import Any

from ._registry import REQUIRED_CFG_FIELDS, load_spec
from .protocols import GANModel, ZooModel
from .tasks import get_task, is_task, list_tasks

# Fields of model.pretrained_cfg every built model carries (create() fills the last three).
BUILT_CFG_FIELDS = (*REQUIRED_CFG_FIELDS, "architecture", "family", "task")


def check_model(name: str, **small_kwargs: Any) -> None:
    """Run every conformance check on ``name``, built from its ``test_kwargs`` updated by ``small_kwargs``.

    Checks: the default config's required fields; deterministic construction under a fixed seed;
    ``example_inputs`` through ``forward`` gives finite output of the task's shape; every trainable
    parameter receives a gradient (classifiers through ``forward``; GAN models through
    ``generator_loss``/``discriminator_loss`` on ``example_batch``); ``save_pretrained`` then
    ``create("local-dir:...")`` rebuilds the same ``model.config``, a bitwise-equal state dict and the
    same eval-mode outputs.
    """
    import torch

    from ._factory import create

    spec = load_spec(name)
    kwargs = {**spec.test_kwargs, **small_kwargs}
    assert is_task(spec.task), f"{name}: task {spec.task!r} is not one of {list_tasks()}"
    task = get_task(spec.task)

    torch.manual_seed(0)
    model = create(name, **kwargs)
    torch.manual_seed(0)
    twin = create(name, **kwargs)
    assert isinstance(model, ZooModel), f"{name}: models must subclass vgzoo.protocols.ZooModel"
    check_config(name, model)
    check_deterministic(name, model, twin)
    missing = task.missing_protocols(model)
    if spec.inference_only:  # a published generator alone serves the task's commands; training needs the GAN
        missing = [cls for cls in missing if cls is not GANModel]
    assert not missing, (f"{name}: a model of task {task.name!r} must subclass "
                         f"{', '.join(c.__module__ + '.' + c.__name__ for c in missing)}")
    check_forward(name, model, spec.task)
    if isinstance(model, GANModel):
        check_gan_gradients(name, model)
    else:
        check_classifier_gradients(name, model)
    check_save_load_roundtrip(name, model)


def check_config(name: str, model) -> None:
    """``model.pretrained_cfg`` carries the required fields with sensible types."""
    cfg = getattr(model, "pretrained_cfg", None)
    assert isinstance(cfg, dict), f"{name}: model.pretrained_cfg must be a dict, got {type(cfg).__name__}"
    missing = [k for k in BUILT_CFG_FIELDS if k not in cfg]
    assert not missing, f"{name}: pretrained_cfg lacks {missing}"
    assert len(cfg["input_size"]) == 3, f"{name}: input_size must be (C, H, W), got {cfg['input_size']}"
    channels = cfg["input_size"][0]
    assert len(cfg["mean"]) == len(cfg["std"]) == channels, (
        f"{name}: mean {cfg['mean']} and std {cfg['std']} need one value per input channel ({channels})"
    )
    if get_task(cfg["task"]).output == "logits":
        assert isinstance(cfg.get("num_classes"), int), f"{name}: a classifier's cfg needs num_classes"


def check_deterministic(name: str, model, twin) -> None:
    """Two builds under the same seed hold identical tensors."""
    a, b = model.state_dict(), twin.state_dict()
    assert a.keys() == b.keys(), f"{name}: two builds have different state-dict keys"
    differing = [k for k in a if not _tensors_equal(a[k], b[k])]
    assert not differing, f"{name}: construction under a fixed seed is not deterministic: {differing[:5]}"


def check_forward(name: str, model, task: str) -> None:
    """``forward(*example_inputs())`` is finite and of the task's documented shape."""
    import torch

    inputs = model.example_inputs(batch_size=2)
    assert isinstance(inputs, tuple), f"{name}: example_inputs must return a tuple"
    model.eval()
    with torch.no_grad():
        out = model(*inputs)
    assert isinstance(out, torch.Tensor), f"{name}: forward must return a tensor, got {type(out).__name__}"
    assert torch.isfinite(out).all(), f"{name}: forward output has NaN or Inf"
    cfg = model.pretrained_cfg
    assert out.shape[0] == 2, f"{name}: output batch {out.shape[0]} != input batch 2"
    output = get_task(task).output
    if output == "logits":
        expected = (2, cfg["num_classes"])
    elif output == "sample":
        expected = (2, *cfg["input_size"])
    else:  # translation and restoration map an image to an image of the same size
        channels = cfg.get("out_chans", inputs[0].shape[1])
        expected = (2, channels, *inputs[0].shape[2:])
    assert tuple(out.shape) == tuple(expected), f"{name}: output shape {tuple(out.shape)}, expected {expected}"


def check_classifier_gradients(name: str, model) -> None:
    """Every trainable parameter gets a finite gradient through ``forward``."""
    model.train()
    model.zero_grad(set_to_none=True)
    out = model(*model.example_inputs(batch_size=2))
    out.float().square().mean().backward()
    _assert_grads(name, "forward", list(model.named_parameters()))


def check_gan_gradients(name: str, model) -> None:
    """``generator_loss`` reaches every generator parameter, ``discriminator_loss`` every discriminator one."""
    names = {id(p): n for n, p in model.named_parameters()}
    g_params = [p for p in model.generator_parameters() if p.requires_grad]
    d_params = [p for p in model.discriminator_parameters() if p.requires_grad]
    g_ids, d_ids = {id(p) for p in g_params}, {id(p) for p in d_params}
    assert not g_ids & d_ids, f"{name}: generator and discriminator parameters overlap"
    uncovered = [
        n for p_id, n in names.items() if p_id not in g_ids | d_ids and dict(model.named_parameters())[n].requires_grad
    ]
    assert not uncovered, (
        f"{name}: parameters in neither generator_parameters() nor discriminator_parameters(): {uncovered[:5]}"
    )

    model.train()
    batch = model.example_batch(batch_size=2)
    for loss_fn, params, role in (
        (model.generator_loss, g_params, "generator_loss"),
        (model.discriminator_loss, d_params, "discriminator_loss"),
    ):
        model.zero_grad(set_to_none=True)
        loss, logs = loss_fn(batch)
        assert loss.ndim == 0 and bool(loss.isfinite()), f"{name}: {role} must return a finite scalar loss"
        assert isinstance(logs, dict) and all(_is_log_value(v) for v in logs.values()), (
            f"{name}: {role} must return (loss, logs) with logs a dict of detached 0-dim tensors or floats (a log "
            f"tensor that holds its graph keeps the step's activations alive until it is read), got {logs!r}"
        )
        loss.backward()
        _assert_grads(name, role, [(names[id(p)], p) for p in params])


def _is_log_value(value) -> bool:
    import torch

    if isinstance(value, torch.Tensor):
        return value.numel() == 1 and not value.requires_grad
    return isinstance(value, float | int) and not isinstance(value, bool)


def _assert_grads(name: str, via: str, named_params) -> None:
    import torch

    no_grad = [n for n, p in named_params if p.requires_grad and p.grad is None]
    assert not no_grad, f"{name}: no gradient reaches {no_grad[:5]} through {via}"
    bad = [n for n, p in named_params if p.grad is not None and not torch.isfinite(p.grad).all()]
    assert not bad, f"{name}: NaN/Inf gradients in {bad[:5]} through {via}"


def check_save_load_roundtrip(name: str, model) -> None:
    """save_pretrained then create('local-dir:...'): same config, bitwise-equal weights, identical outputs."""
    import torch

    from ._factory import create
    from .share.card import save_pretrained

    model.eval()
    inputs = model.example_inputs(batch_size=2)
    with tempfile.TemporaryDirectory() as tmp:
        save_pretrained(model, tmp)
        loaded = create(f"local-dir:{tmp}").eval()
    arch = model.pretrained_cfg["architecture"]
    assert loaded.pretrained_cfg["architecture"] == arch, f"{name}: reloaded as {loaded.pretrained_cfg['architecture']}"
    assert loaded.config == model.config, f"{name}: config {loaded.config} after the round trip, was {model.config}"
    a_sd, b_sd = model.state_dict(), loaded.state_dict()
    assert a_sd.keys() == b_sd.keys(), f"{name}: state-dict keys differ after the round trip"
    differing = [k for k in a_sd if not _tensors_equal(a_sd[k], b_sd[k])]
    assert not differing, f"{name}: weights differ after the round trip: {differing[:5]}"
    with torch.no_grad():
        a, b = model(*inputs), loaded(*inputs)
    assert _tensors_equal(a, b), f"{name}: outputs differ after save_pretrained + create('local-dir:...')"


def _tensors_equal(a, b) -> bool:
    import torch

    return a.shape == b.shape and a.dtype == b.dtype and bool(torch.equal(a, b))
