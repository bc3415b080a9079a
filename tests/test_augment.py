"""Tests of vgzoo.augment: config resolution, every family's pipeline, MixUp/CutMix targets, DiffAugment."""

from __future__ import annotations

import pytest
import torch

import vgzoo
from vgzoo.augment import (
    AugmentInputError,
    ClassificationEvalTransform,
    ClassificationTrainTransform,
    DiffAugment,
    GenerationTransform,
    PairedTransform,
    UnpairedTransform,
    create_transform,
    diff_augment,
    resolve_config,
)
from vgzoo.augment.diffaugment import rand_cutout, rand_translation

CLS = {"task": "classification", "input_size": (3, 32, 32), "mean": (0.485, 0.456, 0.406),
       "std": (0.229, 0.224, 0.225), "num_classes": 10}
PAIRED = {"task": "paired_translation", "input_size": (3, 32, 32), "mean": (0.5,) * 3, "std": (0.5,) * 3,
          "load_size": 36, "crop_size": 32, "out_chans": 3}
UNPAIRED = {**PAIRED, "task": "unpaired_translation"}


# ---------------------------------------------------------------- config + factory


def test_resolve_config_defaults_and_overrides():
    cfg = resolve_config({"task": "classification", "input_size": (3, 32, 32), "num_classes": 5})
    assert cfg["mean"] == (0.485, 0.456, 0.406) and cfg["crop_pct"] == 0.875 and cfg["interpolation"] == "bicubic"
    cfg = resolve_config(CLS, input_size=48, crop_pct=1.0, mean=(0.5, 0.5, 0.5))
    assert cfg["input_size"] == (3, 48, 48) and cfg["crop_pct"] == 1.0 and cfg["mean"] == (0.5, 0.5, 0.5)
    gan = resolve_config({"task": "paired_translation", "input_size": (1, 16, 16)})
    assert gan["mean"] == (0.5,) and gan["load_size"] == gan["crop_size"] == 16


@pytest.mark.parametrize("bad, match", [
    ({"input_size": (3, 8, 8)}, "no task"),
    ({"task": "segmentation", "input_size": (3, 8, 8)}, "unknown task"),
    ({"task": "classification"}, "input_size"),
    ({**PAIRED, "load_size": 16}, "load_size"),
])
def test_resolve_config_errors(bad, match):
    with pytest.raises(ValueError, match=match):
        resolve_config(bad)


@pytest.mark.parametrize("cfg, train, cls", [
    (CLS, True, ClassificationTrainTransform),
    (CLS, False, ClassificationEvalTransform),
    (PAIRED, True, PairedTransform),
    (UNPAIRED, True, UnpairedTransform),
    ({"task": "conditional_generation", "input_size": (1, 16, 16)}, True, GenerationTransform),
    ({"task": "generation", "input_size": (3, 16, 16)}, True, GenerationTransform),
    ({"task": "restoration", "input_size": (3, 16, 16)}, False, GenerationTransform),
])
def test_create_transform_dispatches_on_task(cfg, train, cls):
    t = create_transform(cfg, train=train)
    assert type(t) is cls
    assert t.data_config["task"] == cfg["task"]


def test_create_transform_rejects_unknown_option_naming_the_accepted_ones():
    with pytest.raises(TypeError, match="auto_augment"):
        create_transform(CLS, auto_agument="randaugment")


def test_create_transform_rejects_non_model():
    with pytest.raises(TypeError, match="pretrained_cfg"):
        create_transform(torch.nn.Linear(2, 2))


# ---------------------------------------------------------------- input checks


@pytest.mark.parametrize("x, match", [
    (torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8), "uint8"),
    (torch.rand(2, 3, 32, 32) * 255, "0-255"),
    (torch.rand(2, 3, 32, 32) * 2 - 1, "normalised"),
    (torch.rand(3, 32, 32), r"\(B, C, H, W\)"),
])
def test_bad_inputs_are_refused_with_clear_errors(x, match):
    for t, call in [(create_transform(CLS), lambda t: t(x)), (create_transform(CLS, train=False), lambda t: t(x)),
                    (create_transform(PAIRED), lambda t: t(x, x)), (create_transform(UNPAIRED), lambda t: t(x))]:
        with pytest.raises(AugmentInputError, match=match) as info:
            call(t)
        assert isinstance(info.value, ValueError) and isinstance(info.value, vgzoo.VgzooError)


# ---------------------------------------------------------------- classification


def test_classification_train_shapes_and_normalisation():
    t = create_transform(CLS, input_size=24, auto_augment="randaugment", re_prob=0.5)
    x = torch.rand(6, 3, 40, 40)
    out = t(x)
    assert out.shape == (6, 3, 24, 24) and torch.isfinite(out).all()
    # normalised: 0 maps to -mean/std, so values go below zero although the input is in [0, 1]
    assert out.min() < -1.5 and out.max() <= (1 - 0.406) / 0.225 + 1e-4


def test_classification_one_channel_skips_saturation_and_runs_randaugment():
    cfg = {"task": "classification", "input_size": (1, 16, 16), "mean": (0.5,), "std": (0.5,), "num_classes": 3}
    t = create_transform(cfg, auto_augment="randaugment", color_jitter=0.4)
    assert float(t.color.saturation) == 0.0 and float(t.color.brightness) == 0.4  # ColorJiggle refuses 1-ch saturation
    for _ in range(15):  # RandAugment picks ops per batch; colour ops must not refuse 1 channel
        assert t(torch.rand(4, 1, 20, 20)).shape == (4, 1, 16, 16)


def test_classification_channel_mismatch_is_refused():
    with pytest.raises(AugmentInputError, match="channel"):
        create_transform(CLS)(torch.rand(2, 1, 32, 32))


def _ramp(batch: int, size: int) -> torch.Tensor:
    """Channel 0 = column / (size - 1), channel 1 = row / (size - 1): a crop's pixels tell where it came from."""
    ramp = torch.arange(size, dtype=torch.float32) / (size - 1)
    return torch.stack([ramp.expand(size, size), ramp[:, None].expand(size, size),
                        torch.zeros(size, size)]).expand(batch, 3, size, size).contiguous()


def test_classification_train_crop_is_a_random_resized_crop_of_the_right_scale_across_chunks():
    src, out_size, n = 128, 16, 20
    t = create_transform(CLS, input_size=out_size, interpolation="bilinear", mean=(0,) * 3, std=(1,) * 3,
                         hflip=0.0, color_jitter=0.0, re_prob=0.0, chunk_size=3, seed=5)
    out = t(_ramp(n, src))
    assert out.shape == (n, 3, out_size, out_size) and out.is_contiguous()
    boxes = set()
    for img in out:
        # bilinear, align_corners=False, downscaling: samples span (1 - 1/out) of the crop's width in pixels
        cw = float(img[0].max() - img[0].min()) * (src - 1) / (1 - 1 / out_size)
        ch = float(img[1].max() - img[1].min()) * (src - 1) / (1 - 1 / out_size)
        assert 0.08 * src * src - 2 * src <= cw * ch <= src * src + 1e-3, (cw, ch)
        assert 3 / 4 - 0.05 <= cw / ch <= 4 / 3 + 0.05, (cw, ch)
        # rows are constant in channel 0 and columns in channel 1: a crop, not a rotation or a shear
        assert torch.allclose(img[0], img[0, :1].expand_as(img[0]), atol=1e-5)
        assert torch.allclose(img[1], img[1, :, :1].expand_as(img[1]), atol=1e-5)
        boxes.add((round(cw), round(ch), round(float(img[0].min()) * (src - 1))))
    assert len(boxes) > n // 2  # every image, in every chunk, draws its own box


def test_classification_train_colour_jitter_uses_torchvisions_formulas():
    tvf = pytest.importorskip("torchvision.transforms.v2.functional")
    t = create_transform(CLS, input_size=32, interpolation="bilinear", mean=(0,) * 3, std=(1,) * 3, scale=(1, 1),
                         ratio=(1, 1), hflip=0.0, re_prob=0.0, color_jitter=0.4, seed=2)
    x = torch.rand(4, 3, 32, 32)
    out = t(x)
    params = t.color._params
    steps = {0: ("brightness", tvf.adjust_brightness), 1: ("contrast", tvf.adjust_contrast),
             2: ("saturation", tvf.adjust_saturation)}
    for i in range(4):
        expected = x[i]
        for step in params["order"].tolist():
            if step in steps:
                name, fn = steps[step]
                expected = fn(expected, float(params[f"{name}_factor"][i]))
        assert torch.allclose(out[i], expected, atol=1e-3), i  # grey weights differ in the 4th digit
    assert not torch.allclose(out, x, atol=1e-3)


def test_classification_train_never_writes_into_its_input():
    # scale = ratio = 1 on an input of the output size: the crop may hand back the input itself
    t = create_transform(CLS, input_size=32, mean=(0.5,) * 3, std=(0.5,) * 3, scale=(1, 1), ratio=(1, 1),
                         hflip=0.0, color_jitter=0.0, re_prob=0.0, interpolation="bilinear")
    x = torch.rand(5, 3, 32, 32)
    before = x.clone()
    for chunk in (2, 8):
        t.chunk_size = chunk
        assert torch.allclose(t(x), before * 2 - 1, atol=1e-5)
        assert torch.equal(x, before)


def test_classification_chunk_size_is_validated():
    with pytest.raises(ValueError, match="chunk_size"):
        create_transform(CLS, chunk_size=0)


def test_classification_eval_is_resize_by_crop_pct_then_centre_crop():
    t = create_transform(CLS, train=False, input_size=28, crop_pct=0.875, mean=(0,) * 3, std=(1,) * 3)
    x = torch.rand(2, 3, 32, 32)  # floor(28 / 0.875) = 32: no resize, centre 28 x 28
    assert torch.allclose(t(x), x[:, :, 2:30, 2:30], atol=1e-6)
    y = torch.tensor([1, 2])
    out, labels = t(x, y)
    assert labels is y
    assert t(torch.rand(2, 3, 64, 80)).shape == (2, 3, 28, 28)


def _mix_setup(**options):
    b = 8
    cfg = {"task": "classification", "input_size": (3, 16, 16), "mean": (0.0,) * 3, "std": (1.0,) * 3,
           "num_classes": b}
    t = create_transform(cfg, color_jitter=0.0, re_prob=0.0, hflip=0.0, **options)
    values = torch.arange(b, dtype=torch.float32) / b
    x = values.view(b, 1, 1, 1).expand(b, 3, 16, 16).contiguous()  # image i is constant values[i]
    return t, x, torch.arange(b), values


@pytest.mark.parametrize("options", [{"mixup": True}, {"cutmix": True}, {"mixup": True, "cutmix": True},
                                     {"mixup": True, "cutmix": True, "chunk_size": 3}])
def test_mix_soft_targets_match_the_mixed_pixels(options):
    """Image i is constant v_i and has label i: the mean of a mixed image must equal soft_i @ v."""
    t, x, y, values = _mix_setup(**options)
    mixed_rows = 0
    for step in range(6):
        torch.manual_seed(step)
        out, soft = t(x, y)
        assert soft.shape == (8, 8) and soft.dtype == torch.float32
        assert torch.allclose(soft.sum(1), torch.ones(8), atol=1e-5)
        assert torch.allclose(out.mean(dim=(1, 2, 3)), soft @ values, atol=1e-4), (options, step)
        mixed_rows += int((soft.max(1).values < 0.999).sum())
    assert mixed_rows > 0


def test_label_smoothing_and_plain_labels():
    t, x, y, _ = _mix_setup(mixup=True, label_smoothing=0.1)
    _, soft = t(x, y)
    assert soft.min() >= 0.1 / 8 - 1e-6
    plain = create_transform(CLS)
    out, labels = plain(torch.rand(2, 3, 32, 32), torch.tensor([3, 4]))
    assert labels.tolist() == [3, 4]
    with pytest.raises(ValueError, match="labels"):
        create_transform(CLS, mixup=True)(torch.rand(2, 3, 32, 32))
    with pytest.raises(ValueError, match="num_classes"):
        create_transform({**CLS, "num_classes": None}, cutmix=True)


# ---------------------------------------------------------------- paired / unpaired / generation


def test_paired_shares_geometry_across_channel_counts():
    t = create_transform(PAIRED)
    edges = torch.rand(8, 1, 40, 40)
    photo = edges.repeat(1, 3, 1, 1)  # the photo is the edge map in three channels
    a2, b2 = t(edges, photo)
    assert a2.shape == (8, 1, 32, 32) and b2.shape == (8, 3, 32, 32)
    assert torch.equal(b2, a2.expand(-1, 3, -1, -1))  # same crop and flip for A and B
    assert a2.min() >= -1 and a2.max() <= 1 and a2.min() < -0.5 and a2.max() > 0.5
    # the crops vary across the batch (the same image gives different outputs)
    same = torch.rand(1, 1, 40, 40).expand(8, 1, 40, 40).contiguous()
    out, _ = t(same, same)
    assert not all(torch.equal(out[0], out[i]) for i in range(1, 8))


def test_paired_intensity_ops_touch_only_the_photo_side():
    edges, photo = torch.rand(4, 1, 36, 36), torch.rand(4, 3, 36, 36)
    plain = create_transform(PAIRED, seed=3)
    jitter = create_transform(PAIRED, seed=3, intensity_side="B", color_jitter=0.4)
    a_plain, b_plain = plain(edges, photo)
    a_jit, b_jit = jitter(edges, photo)
    assert torch.equal(a_plain, a_jit)  # the edge map is moved, never recoloured
    assert not torch.allclose(b_plain, b_jit)
    with pytest.raises(ValueError, match="intensity_side"):
        create_transform(PAIRED, color_jitter=0.4)


def test_paired_eval_is_deterministic_resize():
    t = create_transform(PAIRED, train=False)
    a = torch.rand(2, 3, 32, 32)
    a2, b2 = t(a, a)
    assert torch.allclose(a2, a * 2 - 1, atol=1e-6) and torch.equal(a2, b2)


def test_unpaired_draws_independent_parameters():
    t = create_transform(UNPAIRED)
    x = torch.rand(8, 3, 40, 40)
    a2, b2 = t(x, x.clone())
    assert a2.shape == b2.shape == (8, 3, 32, 32)
    assert not torch.equal(a2, b2)
    # one domain alone, other channel count and batch size
    assert t(torch.rand(3, 1, 36, 36)).shape == (3, 1, 32, 32)


def test_generation_normalises_to_model_range_and_passes_labels():
    t = create_transform({"task": "conditional_generation", "input_size": (1, 16, 16)})
    x, y = torch.rand(4, 1, 16, 16), torch.tensor([0, 1, 2, 3])
    out, labels = t(x, y)
    assert torch.allclose(out, x * 2 - 1) and labels is y
    assert t(torch.rand(2, 1, 24, 24)).shape == (2, 1, 16, 16)


# ---------------------------------------------------------------- seeding


def test_seed_reproduces_the_sequence_and_leaves_the_global_rng_alone():
    x, y = torch.rand(4, 3, 40, 40), torch.arange(4)
    t1 = create_transform(CLS, seed=7, mixup=True)
    t2 = create_transform(CLS, seed=7, mixup=True)
    torch.manual_seed(0)
    expected_next = torch.rand(3)
    torch.manual_seed(0)
    first = t1(x, y)
    assert torch.equal(torch.rand(3), expected_next)  # global stream untouched
    second = t1(x, y)
    twin = t2(x, y)
    assert torch.equal(first[0], twin[0]) and torch.equal(first[1], twin[1])
    assert not torch.equal(first[0], second[0])
    # resume: a fresh transform loading t1's state continues where t1 is
    t3 = create_transform(CLS, seed=7, mixup=True)
    t3.load_state_dict(t1.state_dict())
    assert torch.equal(t3(x, y)[0], t1(x, y)[0])


def test_seeded_pipelines_repeat_exactly():
    x = torch.rand(4, 3, 40, 40)
    for cfg in (CLS, PAIRED, UNPAIRED):
        outs = []
        for _ in range(2):
            t = create_transform(cfg, seed=11)
            outs.append(t(x) if cfg is CLS else t(x, x))
        a, b = outs
        assert all(torch.equal(u, v) for u, v in zip(a, b, strict=True)) if isinstance(a, tuple) else torch.equal(a, b)


# ---------------------------------------------------------------- DiffAugment


def test_diffaugment_gradients_reach_the_input():
    x = (torch.rand(4, 3, 32, 32) * 2 - 1).requires_grad_()
    DiffAugment()(x).square().sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_diffaugment_color_formulas_and_no_clamping():
    gray = torch.full((64, 3, 8, 8), 0.8)
    out = diff_augment(gray, "color")
    shift = out[:, 0, 0, 0] - 0.8
    # on a constant grey image saturation and contrast are no-ops: only the brightness shift remains
    assert torch.allclose(out, (gray + shift.view(-1, 1, 1, 1)), atol=1e-5)
    assert shift.abs().max() <= 0.5 + 1e-6 and shift.std() > 0.1  # per-sample U(-0.5, 0.5)
    assert out.max() > 1.0  # valid on [-1, 1] data: no clamp to [0, 1] or [-1, 1]
    # saturation: the per-pixel channel mean is kept
    x = torch.rand(16, 3, 8, 8) * 2 - 1
    torch.manual_seed(0)
    from vgzoo.augment.diffaugment import rand_contrast, rand_saturation
    assert torch.allclose(rand_saturation(x).mean(1), x.mean(1), atol=1e-5)
    assert torch.allclose(rand_contrast(x).mean((1, 2, 3)), x.mean((1, 2, 3)), atol=1e-5)


def test_diffaugment_translation_is_integer_shift_with_zero_fill():
    x = torch.rand(6, 2, 16, 16) + 1  # strictly positive: zeros come from the fill
    out = rand_translation(x)
    for i in range(6):
        found = False
        for dy in range(-2, 3):
            for dx in range(-2, 3):
                ref = torch.zeros_like(x[i])
                ys, yd = (slice(0, 16 - dy), slice(dy, 16)) if dy >= 0 else (slice(-dy, 16), slice(0, 16 + dy))
                xs, xd = (slice(0, 16 - dx), slice(dx, 16)) if dx >= 0 else (slice(-dx, 16), slice(0, 16 + dx))
                ref[:, yd, xd] = x[i][:, ys, xs]
                found |= torch.equal(out[i], ref)
        assert found, f"sample {i} is not an integer shift of at most 1/8 side with zero fill"


def test_diffaugment_cutout_zeroes_a_half_side_square():
    x = torch.ones(200, 1, 16, 16)
    out = rand_cutout(x)
    zeros = (out == 0).sum(dim=(1, 2, 3))
    assert zeros.max() == 64 and zeros.min() > 0  # 8 x 8 at most, clipped at the border
    rows = (out[:, 0] == 0).any(2).sum(1)
    cols = (out[:, 0] == 0).any(1).sum(1)
    assert torch.equal(rows * cols, zeros)  # a rectangle


def test_diffaugment_per_sample_parameters_and_policy_errors():
    same = torch.rand(1, 3, 16, 16).expand(8, 3, 16, 16)
    out = DiffAugment("color,translation,cutout")(same)
    assert len({tuple(o.flatten()[:50].tolist()) for o in out}) > 1
    with pytest.raises(ValueError, match="unknown part"):
        DiffAugment("color,rotation")
    d1, d2 = DiffAugment(seed=1), DiffAugment(seed=1)
    assert torch.equal(d1(same), d2(same))


# ---------------------------------------------------------------- real models


def _model_or_skip(name):
    try:
        return vgzoo.create(name, **vgzoo.model_info(name).test_kwargs)
    except vgzoo.PluginError as exc:  # the family's module is not written yet
        pytest.skip(f"{name} not available: {exc}")


def test_transform_for_a_real_vit():
    model = _model_or_skip("vit_ti16_scratch")
    cfg = model.pretrained_cfg
    c, h, w = cfg["input_size"]
    t = create_transform(model, mixup=True)
    x, y = torch.rand(2, c, h + 8, w + 8), torch.tensor([0, 1]) % cfg["num_classes"]
    out, soft = t(x, y)
    assert out.shape == (2, c, h, w) and soft.shape == (2, cfg["num_classes"])
    logits = model(out)
    torch.nn.functional.cross_entropy(logits, soft).backward()
    assert create_transform(model, train=False)(x).shape == (2, c, h, w)


@pytest.mark.parametrize("name, cls", [("pix2pix_unet128", PairedTransform), ("cyclegan_resnet6", UnpairedTransform),
                                       ("cgan_embed_digits", GenerationTransform)])
def test_transform_for_real_gan_models(name, cls):
    model = _model_or_skip(name)
    t = create_transform(model)
    assert type(t) is cls
    batch = model.example_batch(2)
    if cls is GenerationTransform:
        x = batch["image"]
        out = t((x.clamp(-1, 1) + 1) / 2)
        assert out.shape == x.shape and out.min() >= -1 and out.max() <= 1
    else:
        a, b = ((batch[k].clamp(-1, 1) + 1) / 2 for k in ("A", "B"))
        a2, b2 = t(a, b)
        size = t.data_config["crop_size"]
        assert a2.shape[-2:] == b2.shape[-2:] == (size, size)
        assert a2.shape[1] == a.shape[1] and b2.shape[1] == b.shape[1]


def test_transform_from_a_registered_name_reads_its_default_config():
    try:
        t = create_transform("pix2pix_unet")
    except vgzoo.PluginError as exc:
        pytest.skip(f"pix2pix_unet not available: {exc}")
    assert type(t) is PairedTransform
    assert (t.data_config["load_size"], t.data_config["crop_size"]) == (286, 256)


def test_range_check_can_be_turned_off():
    t = create_transform(CLS, check_range=False, input_size=16)
    assert t(torch.rand(2, 3, 20, 20) * 2).shape == (2, 3, 16, 16)
    with pytest.raises(AugmentInputError):  # the dtype check stays
        t(torch.zeros(2, 3, 20, 20, dtype=torch.uint8))


# ---------------------------------------------------------------- device, dtype and the GPU paths (on CPU)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_every_pipeline_keeps_device_and_dtype_and_the_global_rng(dtype):
    x, y = torch.rand(4, 3, 40, 40, dtype=dtype), torch.arange(4)
    cases = [(create_transform(CLS, seed=1, mixup=True, cutmix=True, label_smoothing=0.1), (x, y)),
             (create_transform(CLS, train=False, seed=1), (x,)),
             (create_transform(PAIRED, seed=1), (x, x)), (create_transform(UNPAIRED, seed=1), (x, x)),
             (DiffAugment(seed=1), (x * 2 - 1,))]
    for t, args in cases:
        torch.manual_seed(0)
        expected = torch.rand(3)
        torch.manual_seed(0)
        out = t(*args)
        assert torch.equal(torch.rand(3), expected), type(t).__name__  # global CPU stream untouched
        images = out[0] if isinstance(out, tuple) else out
        assert images.dtype == dtype and images.device == x.device, type(t).__name__
        assert torch.isfinite(images.float()).all()
        if isinstance(out, tuple) and out[1].dim() == 2:
            assert out[1].dtype == torch.float32  # soft targets stay fp32 for the loss
        elif isinstance(out, tuple):
            assert out[1].dtype == dtype and out[1].device == x.device


def test_batched_crop_cuts_the_boxes_kornia_draws():
    import kornia.augmentation as K

    from vgzoo.augment.paired import batched_crop

    crop = K.RandomCrop((5, 3))
    x = torch.rand(6, 2, 9, 8)
    params = crop.forward_parameters(x.shape)
    corner = params["src"][:, 0].long()
    assert torch.equal(batched_crop(x, corner[:, 1], corner[:, 0], 5, 3), crop(x, params=params))


def test_classification_batched_crop_draws_the_same_boxes_as_the_slice_crop():
    t = create_transform(CLS, seed=3)
    assert t.crop.flags["cropping_mode"] == "slice" and t.crop_batched.flags["cropping_mode"] == "resample"
    shape = (4, 3, 40, 40)
    torch.manual_seed(5)
    a = t.crop.forward_parameters(shape)
    torch.manual_seed(5)
    b = t.crop_batched.forward_parameters(shape)
    assert torch.equal(a["src"], b["src"])
    x = torch.rand(*shape)
    sliced, warped = t.crop(x, params=a), t.crop_batched(x, params=b)
    assert sliced.shape == warped.shape and (sliced - warped).abs().mean() < 0.05  # same boxes, other resampler


def test_one_hot_by_scatter_and_normalise_stats_cached_per_device():
    from vgzoo.augment import _checks
    from vgzoo.augment.classification import one_hot

    y = torch.tensor([3, 0, 9])
    assert torch.equal(one_hot(y, 10, torch.float32), torch.nn.functional.one_hot(y, 10).float())
    x = torch.rand(2, 3, 4, 4)
    _checks.normalize(x, (0.1, 0.2, 0.3), (0.5, 0.5, 0.5))
    hits = _checks._device_stats.cache_info().hits
    out = _checks.normalize(x, (0.1, 0.2, 0.3), (0.5, 0.5, 0.5))
    assert _checks._device_stats.cache_info().hits == hits + 2  # no new tensor (on a GPU: no H2D copy) per call
    assert torch.allclose(out, (x - torch.tensor([0.1, 0.2, 0.3]).view(1, 3, 1, 1)) / 0.5)
