"""pix2pix and CycleGAN: networks equal to the reference in structure and size, losses, batched passes, protocol."""

from __future__ import annotations

import copy
import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import vgzoo
import vgzoo.testing
from vgzoo._hub import load_state_dict, save_state_dict
from vgzoo.errors import InputSizeError, VgzooError
from vgzoo.layers import ReflectionPad2d, ReplicationPad2d, UnetGenerator
from vgzoo.layers.patchgan import PatchDiscriminator
from vgzoo.layers.resnet_generator import ResnetGenerator

NAMES = ["pix2pix_unet", "pix2pix_unet128", "cyclegan_resnet", "cyclegan_resnet6"]


def n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


@pytest.mark.parametrize(
    "build, expected",
    [
        (lambda: ResnetGenerator(3, 3, 64, 9, "instance"), 11_378_179),
        (lambda: ResnetGenerator(3, 3, 64, 6, "instance"), 7_837_699),
        (lambda: UnetGenerator(3, 3, 8, 64, "batch", dropout=True), 54_413_955),
        (lambda: UnetGenerator(3, 3, 7, 64, "batch", dropout=True), 41_828_995),
        (lambda: PatchDiscriminator(3, 64, 3, "instance"), 2_764_737),
        (lambda: PatchDiscriminator(6, 64, 3, "batch"), 2_768_705),
    ],
)
def test_reference_parameter_counts(build, expected):
    with torch.device("meta"):
        assert n_params(build()) == expected


def test_registered_models_use_the_reference_networks():
    with torch.device("meta"):
        cg = vgzoo.create("cyclegan_resnet")
        p2p = vgzoo.create("pix2pix_unet")
        cg6 = vgzoo.create("cyclegan_resnet6")
    assert n_params(cg.G_AB) == n_params(cg.G_BA) == 11_378_179
    assert n_params(cg.D_A) == n_params(cg.D_B) == 2_764_737
    assert n_params(cg6.G_AB) == 7_837_699
    assert n_params(p2p.generator) == 54_413_955 and n_params(p2p.discriminator) == 2_768_705
    assert cg.pretrained_cfg["crop_size"] == 256 and cg.pretrained_cfg["load_size"] == 286
    assert cg6.pretrained_cfg["input_size"] == (3, 128, 128) and cg6.pretrained_cfg["load_size"] == 143
    info = vgzoo.model_info("pix2pix_unet128")
    assert info.family == "pix2pix" and info.task == "paired_translation"
    assert vgzoo.model_info("cyclegan_resnet").task == "unpaired_translation"


def test_structure_details():
    unet = UnetGenerator(3, 3, 8, 4, "batch", dropout=True)
    blocks = unet.blocks()
    assert [b.position for b in blocks] == ["outermost"] + ["middle"] * 6 + ["innermost"]
    assert sum(isinstance(m, nn.Dropout) for m in unet.modules()) == 3  # 8ngf blocks between innermost and 4ngf
    assert isinstance(blocks[-1].down_norm, nn.Identity)  # no norm on the innermost down path
    assert blocks[0].down_conv.bias is None and blocks[0].up_conv.bias is not None  # last conv always has a bias
    inst = UnetGenerator(3, 3, 7, 4, "instance")
    assert all(b.down_conv.bias is not None for b in inst.blocks())
    res = ResnetGenerator(3, 3, 4, 2, "batch")
    assert res.stem.conv.bias is None and res.head.conv.bias is not None
    assert isinstance(res.up[0].conv, nn.ConvTranspose2d) and res.up[0].conv.output_padding == (1, 1)
    assert PatchDiscriminator(6, 4, 3, "batch")(torch.zeros(1, 6, 256, 256)).shape == (1, 1, 30, 30)
    bn = PatchDiscriminator(3, 4, 3, "batch").body[0][1]
    assert isinstance(bn, nn.BatchNorm2d) and bn.affine and bn.track_running_stats
    inorm = PatchDiscriminator(3, 4, 3, "instance").body[0][1]
    assert isinstance(inorm, nn.InstanceNorm2d) and not inorm.affine and not inorm.track_running_stats


def test_init_is_normal_002():
    torch.manual_seed(0)
    g = UnetGenerator(3, 3, 7, 64, "batch")
    w = g.block.submodule.down_conv.weight
    assert abs(w.std().item() - 0.02) < 0.002 and abs(w.mean().item()) < 0.002
    bn = g.block.submodule.down_norm
    assert abs(bn.weight.mean().item() - 1.0) < 0.01 and bn.bias.abs().max() == 0


def test_wrong_input_size_is_a_clear_error():
    with pytest.raises(InputSizeError, match="divisible by 4") as info:
        ResnetGenerator(3, 3, 4, 1)(torch.zeros(1, 3, 30, 32))
    assert isinstance(info.value, ValueError) and isinstance(info.value, VgzooError)
    with pytest.raises(InputSizeError, match="divisible by 128"):
        UnetGenerator(3, 3, 7, 2)(torch.zeros(1, 3, 64, 64))
    with pytest.raises(ValueError, match="norm"):
        ResnetGenerator(norm="group")


@pytest.mark.parametrize("name", NAMES)
def test_conformance(name):
    vgzoo.testing.check_model(name)


def tiny_cyclegan(**kw) -> nn.Module:
    torch.manual_seed(0)
    return vgzoo.create("cyclegan_resnet", **{"ngf": 4, "ndf": 4, "n_blocks": 2, "img_size": 32, **kw})


def count_calls(*modules: nn.Module) -> list[int]:
    calls = [0]
    for m in modules:
        m.register_forward_hook(lambda *_: calls.__setitem__(0, calls[0] + 1))
    return calls


def _step(model, batch):
    model.zero_grad(set_to_none=True)
    g_loss, g_logs = model.generator_loss(batch)
    g_loss.backward()
    d_loss, d_logs = model.discriminator_loss(batch)
    d_loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    return g_logs, d_logs, grads


def test_cyclegan_batched_passes_equal_the_unbatched_form():
    model = tiny_cyclegan()
    model.train()
    assert model.batched_passes is None  # auto: batched on accelerators, separate passes on the CPU
    model.batched_passes = True
    torch.manual_seed(1)
    batch = model.example_batch(batch_size=2)
    twin = copy.deepcopy(model)
    twin.batched_passes = False
    g_calls = count_calls(model.G_AB, model.G_BA)
    twin_calls = count_calls(twin.G_AB, twin.G_BA)
    g1, d1, grads1 = _step(model, batch)
    g2, d2, grads2 = _step(twin, batch)
    assert g_calls[0] == 3 and twin_calls[0] == 6  # three batched generator calls instead of six
    assert set(g1) == set(g2) == {"G_adv_AB", "G_adv_BA", "G_cycle_A", "G_cycle_B", "G_idt_A", "G_idt_B", "G_total"}
    for k in g1:
        torch.testing.assert_close(g1[k], g2[k], rtol=1e-5, atol=1e-6, msg=k)
    for k in d1:
        torch.testing.assert_close(d1[k], d2[k], rtol=1e-5, atol=1e-6, msg=k)

    assert grads1.keys() == grads2.keys() and len(grads1) == len(list(model.parameters()))
    for k in grads1:  # relative to the tensor's scale (biases before instance norm have ~0 gradient)
        scale = grads2[k].abs().max().item()
        assert (grads1[k] - grads2[k]).abs().max().item() <= 1e-4 * scale + 1e-6, k


def test_cyclegan_batch_norm_falls_back_to_separate_passes():
    model = tiny_cyclegan(norm="batch")
    model.batched_passes = True  # asked for, but batch norm must not share batches
    calls = count_calls(model.G_AB, model.G_BA)
    d_calls = count_calls(model.D_A, model.D_B)
    model.generator_loss(model.example_batch(2))
    assert calls[0] == 6
    model.discriminator_loss(model.example_batch(2))  # another batch: no stash, fakes made without a graph
    assert calls[0] == 8 and d_calls[0] == 2 + 4


def test_cyclegan_default_runs_separate_passes_on_the_cpu():
    model = tiny_cyclegan()
    calls = count_calls(model.G_AB, model.G_BA)
    model.generator_loss(model.example_batch(2))
    assert calls[0] == 6  # batching measured no faster on CPUs (benchmarks/RESULTS.md, translation)


def test_cyclegan_loss_values_follow_the_reference_formulas():
    model = tiny_cyclegan(pool_size=0)
    model.eval()  # no randomness; instance norm behaves the same
    batch = model.example_batch(2)
    a, b = batch["A"], batch["B"]
    _, logs = model.generator_loss(batch)
    with torch.no_grad():
        fake_b, fake_a = model.G_AB(a), model.G_BA(b)
        expect = {
            "G_adv_AB": F.mse_loss(model.D_B(fake_b), torch.ones(1).expand_as(model.D_B(fake_b))).item(),
            "G_cycle_A": 10 * F.l1_loss(model.G_BA(fake_b), a).item(),
            "G_cycle_B": 10 * F.l1_loss(model.G_AB(fake_a), b).item(),
            "G_idt_A": 5 * F.l1_loss(model.G_BA(a), a).item(),
            "G_idt_B": 5 * F.l1_loss(model.G_AB(b), b).item(),
        }
        pr, pf = model.D_A(a), model.D_A(fake_a)
        d_a = 0.5 * (F.mse_loss(pr, torch.ones_like(pr)) + F.mse_loss(pf, torch.zeros_like(pf))).item()
    for k, v in expect.items():
        torch.testing.assert_close(logs[k], torch.tensor(v), rtol=1e-4, atol=0.0, msg=k)
    _, d_logs = model.discriminator_loss(batch)
    torch.testing.assert_close(d_logs["D_A"], torch.tensor(d_a), rtol=1e-4, atol=0.0)


def test_cyclegan_identity_off_when_channels_differ():
    with pytest.warns(UserWarning, match="identity loss"):
        model = tiny_cyclegan(in_chans=1, out_chans=3)
    assert model.lambda_identity == 0
    assert model.D_A.in_chans == 1 and model.D_B.in_chans == 3
    batch = model.example_batch(2)
    assert batch["A"].shape[1] == 1 and batch["B"].shape[1] == 3
    loss, logs = model.generator_loss(batch)
    assert "G_idt_A" not in logs and torch.isfinite(loss)
    loss.backward()
    assert model.G_AB(batch["A"]).shape[1] == 3 and model(batch["B"], direction="BtoA").shape[1] == 1
    with pytest.raises(ValueError, match="direction"):
        model(batch["A"], direction="AB")


def test_cyclegan_discriminator_reuses_the_generator_step_fakes_and_pools_are_state():
    model = tiny_cyclegan(pool_size=3)
    batch = model.example_batch(2)
    calls = count_calls(model.G_AB, model.G_BA)
    model.generator_loss(batch)
    n = calls[0]
    model.discriminator_loss(batch)
    assert calls[0] == n  # fakes stashed by the generator step
    model.discriminator_loss(batch)
    assert calls[0] == n + 2  # used once: a second discriminator step makes its own
    state = model.training_state()
    assert state["pool_A.images"].shape == (3, 3, 32, 32) and state["pool_B.images"].shape == (3, 3, 32, 32)
    other = tiny_cyclegan(pool_size=3)
    other.load_training_state(state)
    assert torch.equal(other.training_state()["pool_B.images"], state["pool_B.images"])
    assert not any("pool" in k for k in model.state_dict())  # pools are not weights


def test_pix2pix_one_generator_pass_per_step_in_either_order():
    torch.manual_seed(0)
    model = vgzoo.create("pix2pix_unet128", ngf=2, ndf=2)
    batch = model.example_batch(2)
    calls = count_calls(model.generator)
    # the pix2pix trainer's order: D then G
    d_loss, d_logs = model.discriminator_loss(batch)
    d_loss.backward()
    g_loss, g_logs = model.generator_loss(batch)
    assert calls[0] == 1
    model.zero_grad(set_to_none=True)
    g_loss.backward()
    assert all(p.grad is not None for p in model.generator.parameters())
    assert all(p.grad is None for p in model.discriminator.parameters())  # D frozen in the G loss
    assert set(g_logs) == {"G_adv", "G_L1", "G_total"} and "D_total" in d_logs
    # the next step on the same batch object recomputes (the stash is used once)
    model.discriminator_loss(batch)
    assert calls[0] == 2
    model.generator_loss(batch)
    assert calls[0] == 2
    # G then D also shares the pass
    model.generator_loss(batch)
    model.discriminator_loss(batch)
    assert calls[0] == 3


def test_pix2pix_losses():
    torch.manual_seed(0)
    model = vgzoo.create("pix2pix_unet128", ngf=2, ndf=2, in_chans=1, out_chans=3).eval()
    assert model.discriminator.in_chans == 4 and model.gan_mode == "vanilla" and model.lambda_l1 == 100
    batch = model.example_batch(2)
    _, logs = model.generator_loss(batch)
    with torch.no_grad():
        fake = model.generator(batch["A"])
        pred = model.discriminator(torch.cat([batch["A"], fake], 1))
        adv = F.binary_cross_entropy_with_logits(pred, torch.ones_like(pred)).item()
        l1 = 100 * F.l1_loss(fake, batch["B"]).item()
    torch.testing.assert_close(logs["G_adv"], torch.tensor(adv), rtol=1e-5, atol=0.0)
    torch.testing.assert_close(logs["G_L1"], torch.tensor(l1), rtol=1e-5, atol=0.0)
    torch.testing.assert_close(logs["G_total"], torch.tensor(adv + l1), rtol=1e-5, atol=0.0)


def test_generators_save_and_load_alone(tmp_path):
    model = tiny_cyclegan()
    save_state_dict(model.G_AB.state_dict(), tmp_path / "G_AB.safetensors")
    other = tiny_cyclegan()
    with torch.no_grad():
        for p in other.G_AB.parameters():
            p.add_(1.0)
    other.G_AB.load_state_dict(load_state_dict(tmp_path / "G_AB.safetensors"))
    x = model.example_inputs(1)[0]
    with torch.no_grad():
        assert torch.equal(other.eval()(x), model.eval()(x))
    # both generators under the composite's names, loaded through create(strict=False)
    gens = {f"{name}.{k}": v for name, net in model.generators().items() for k, v in net.state_dict().items()}
    save_state_dict(gens, tmp_path / "gens.safetensors")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loaded = vgzoo.create("cyclegan_resnet", ngf=4, ndf=4, n_blocks=2, img_size=32,
                              checkpoint_path=tmp_path / "gens.safetensors", strict=False).eval()
    with torch.no_grad():
        assert torch.equal(loaded(x, direction="BtoA"), model(x, direction="BtoA"))


def test_input_size_error_is_a_public_vgzoo_error():

    assert vgzoo.InputSizeError is vgzoo.errors.InputSizeError
    assert issubclass(vgzoo.InputSizeError, vgzoo.VgzooError) and issubclass(vgzoo.InputSizeError, ValueError)
    with pytest.raises(vgzoo.InputSizeError, match="divisible by 4"):
        vgzoo.create("cyclegan_resnet", ngf=4, ndf=4, n_blocks=1).G_AB(torch.zeros(1, 3, 10, 12))


@pytest.mark.parametrize("pad_cls", [ReflectionPad2d, ReplicationPad2d])
def test_padding_keeps_the_input_dtype_under_autocast(pad_cls):
    x = torch.randn(1, 4, 6, 6).bfloat16()
    base = pad_cls.__mro__[1]  # torch's own class, which CPU autocast runs in fp32
    with torch.autocast("cpu", torch.bfloat16):
        ours, torchs = pad_cls(2)(x), base(2)(x)
    assert torchs.dtype == torch.float32 and ours.dtype == torch.bfloat16  # no round trip through fp32
    assert torch.equal(ours.float(), torchs)  # padding copies values: exact either way
    assert torch.equal(pad_cls(2)(x.float()), base(2)(x.float()))  # outside autocast: torch's module


def test_resnet_generator_pads_in_bf16_with_the_same_pixels():
    torch.manual_seed(0)
    G = ResnetGenerator(ngf=8, n_blocks=2).eval()
    plain = copy.deepcopy(G)
    for module in list(plain.modules()):  # the same network with torch's pads, as before
        for name, child in module.named_children():
            if isinstance(child, ReflectionPad2d):
                setattr(module, name, nn.ReflectionPad2d(child.padding))
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    with torch.no_grad(), torch.autocast("cpu", torch.bfloat16):
        assert torch.equal(G(x), plain(x))
    assert set(G.state_dict()) == set(plain.state_dict())  # checkpoints load either way
