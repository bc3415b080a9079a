"""BigGAN-deep (Brock, Donahue & Simonyan 2019, "Large Scale GAN Training for High Fidelity Natural Image
Synthesis", arXiv:1809.11096), exact to the published ImageNet generators, and trainable at small scale.

Generator (BigGAN-deep)::

    class vector (B, K) one-hot or soft -> shared embedding Linear(K, E, no bias) ----------+
    z (B, Z) ---------------------------------------------------------------- concat -> cond (B, Z + E)
    cond -> SN Linear -> 4 x 4 x (layers[0][1] * ch)          (the published weights are in TF's NHWC order)
         -> GeneratorBlock x len(layers), self-attention before block ``attention_position``
         -> TruncationBatchNorm -> ReLU -> SN conv3x3 -> first ``in_chans`` channels -> tanh

Every block's batch norms are conditional on ``cond``; their inference statistics are stored for ``n_stats``
truncation values and looked up at the requested truncation (:class:`~vgzoo_biggan.layers.TruncationBatchNorm`).

Discriminator (BigGAN's, for training): residual down-sampling blocks with spectral norm, ReLU, sum pooling, a
linear logit plus the projection (Miyato & Koyama 2018) of a class embedding onto the pooled features.

Models: :class:`BigGANDeep` is the generator alone (what the published tags build); :class:`BigGAN` adds the
discriminator and BigGAN's losses (hinge, orthogonal regularisation of the generator) for ``vgzoo train``.
"""

from __future__ import annotations

import difflib
import functools
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from vgzoo import ModelFamily, PretrainedCfg, register_model
from vgzoo.layers import validate_labels
from vgzoo.protocols import ConditionalSampler, GANModel, LossLogs, SeededSampler, ZooModel

from .layers import (
    DiscriminatorBlock,
    GeneratorBlock,
    SelfAttention,
    TruncationBatchNorm,
    sn,
    standing_statistics,
    stats_position,
)

__all__ = ["BigGANDeep", "BigGAN", "BigGANDeepGenerator", "BigGANDiscriminator", "truncated_noise",
           "imagenet_class_names", "class_index", "biggan", "biggan_deep"]

PAPER = ("Brock, Donahue & Simonyan 2019, Large Scale GAN Training for High Fidelity Natural Image Synthesis, "
         "ICLR (arXiv:1809.11096)")
CLASS_NAME_SOURCES = ("imagenet-1k",)

# The published generators' blocks: (upsample, input width, output width) in multiples of channel_width.
DEEP_128 = [[False, 16, 16], [True, 16, 16], [False, 16, 16], [True, 16, 8], [False, 8, 8], [True, 8, 4],
            [False, 4, 4], [True, 4, 2], [False, 2, 2], [True, 2, 1]]
DEEP_256 = [*DEEP_128[:5], [True, 8, 8], [False, 8, 8], [True, 8, 4], *DEEP_128[6:]]
DEEP_512 = [*DEEP_256, [False, 1, 1], [True, 1, 1]]
# A small generator for 32 px: 4 -> 8 -> 16 -> 32, attention at 16 x 16.
SMALL_32 = [[False, 4, 4], [True, 4, 4], [False, 4, 2], [True, 2, 2], [False, 2, 1], [True, 1, 1]]
# BigGAN's discriminators: (downsample, output width in multiples of d_channel_width) per block.
D_SMALL_32 = [[True, 1], [True, 2], [True, 4], [False, 4]]
D_128 = [[True, 1], [True, 2], [True, 4], [True, 8], [True, 16], [False, 16]]


# ------------------------------------------------------------------------------------------ noise and classes
def truncated_noise(seeds: list[int], z_dim: int, truncation: float) -> torch.Tensor:
    """``truncated_noise_sample(batch_size=1, dim_z, truncation, seed)`` of the reference, one row per seed.

    scipy's truncated normal on [-2, 2] drawn from ``numpy.random.RandomState(seed)``, in float32, times
    ``truncation``: the same numbers as the reference for the same seed (kept library: scipy draws them).
    """
    import numpy as np
    from scipy.stats import truncnorm

    rows = []
    for seed in seeds:
        values = truncnorm.rvs(-2, 2, size=(1, z_dim), random_state=np.random.RandomState(int(seed)))
        rows.append(truncation * values.astype(np.float32))
    return torch.from_numpy(np.concatenate(rows, axis=0))


@functools.cache
def imagenet_class_names() -> tuple[str, ...]:
    """ImageNet-1k's class names by index (the first name of each class in timm's ImageNet info)."""
    from timm.data import ImageNetInfo

    return tuple(d.split(", ")[0] for d in ImageNetInfo("imagenet-1k").label_descriptions())


@functools.cache
def _imagenet_synonyms() -> dict[str, int]:
    """Every name of every ImageNet-1k class (timm's descriptions list several), lower-cased -> the first index."""
    from timm.data import ImageNetInfo

    names: dict[str, int] = {}
    for index, description in enumerate(ImageNetInfo("imagenet-1k").label_descriptions()):
        for name in description.split(", "):
            names.setdefault(name.lower(), index)
    return names


def class_index(name: str | int, source: str = "imagenet-1k") -> int:
    """The class index of ``name`` (any of a class's names, any case) or of an index given as an int or digits.

    Raises:
        ValueError: an unknown name; the message suggests the closest names with their indices.
    """
    if isinstance(name, int) or str(name).strip().isdigit():
        return int(name)
    if source not in CLASS_NAME_SOURCES:
        raise ValueError(f"unknown class-name source {source!r}; known: {', '.join(CLASS_NAME_SOURCES)}.")
    names = _imagenet_synonyms()
    key = str(name).strip().lower()
    if key in names:
        return names[key]
    close = difflib.get_close_matches(key, list(names), n=5, cutoff=0.6)
    hint = "; closest: " + ", ".join(f"{c!r} ({names[c]})" for c in close) if close else ""
    raise ValueError(f"unknown ImageNet-1k class name {name!r}{hint}. Pass a class index (0-999) or one of the "
                     "names of timm's ImageNet-1k descriptions (timm.data.ImageNetInfo).")


# ------------------------------------------------------------------------------------------------ networks
def _check_layers(layers: list, img_size: int, what: str) -> list[tuple[bool, int, int]]:
    try:
        out = [(bool(up), int(cin), int(cout)) for up, cin, cout in layers]
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what}: layers must be a list of [upsample, in_mult, out_mult]; got {layers!r}.") from exc
    side = 4 * 2 ** sum(up for up, _, _ in out)
    if side != img_size:
        raise ValueError(f"{what}: layers upsample 4 x 4 to {side} x {side}, not img_size={img_size}; add or remove "
                         "upsampling blocks, or set img_size to match.")
    for (_, _, prev), (_, cin, _) in zip(out, out[1:], strict=False):
        if prev != cin:
            raise ValueError(f"{what}: a block's input width must be the previous block's output ({layers!r}).")
    return out


class BigGANDeepGenerator(nn.Module):
    """The BigGAN-deep generator: ``forward(z, class_vector, truncation)`` -> images in [-1, 1].

    Arguments as :class:`BigGANDeep`'s (minus the sampling ones).
    """

    def __init__(self, img_size: int, in_chans: int, num_classes: int, z_dim: int, class_embed_dim: int,
                 channel_width: int, layers: list, attention_position: int | None, eps: float, n_stats: int,
                 to_rgb_chans: int | None) -> None:
        super().__init__()
        blocks = _check_layers(layers, img_size, "BigGANDeep")
        ch, cond_dim = channel_width, z_dim + class_embed_dim
        self.in_chans, self.num_classes, self.z_dim = in_chans, num_classes, z_dim
        self.first_width = blocks[0][1] * ch
        self.class_embed = nn.Linear(num_classes, class_embed_dim, bias=False)  # shared by every block
        self.project = sn(nn.Linear(cond_dim, 4 * 4 * self.first_width), eps)
        self.blocks = nn.ModuleList(GeneratorBlock(cin * ch, cout * ch, cond_dim, up, n_stats=n_stats, eps=eps)
                                    for up, cin, cout in blocks)
        self.attention_position = attention_position
        if attention_position is not None:
            if not 0 <= attention_position < len(blocks):
                raise ValueError(f"attention_position={attention_position} is not a block index (0-{len(blocks) - 1})")
            self.attention = SelfAttention(blocks[attention_position][1] * ch, eps)
        last = blocks[-1][2] * ch
        self.final_norm = TruncationBatchNorm(last, None, n_stats, eps)
        self.to_rgb = sn(nn.Conv2d(last, to_rgb_chans or in_chans, 3, padding=1), eps)

    def embed(self, class_vector: torch.Tensor) -> torch.Tensor:
        """``class_vector`` (B, num_classes), one-hot or soft, or (B,) integer labels -> the class embedding."""
        if not class_vector.is_floating_point():
            labels = validate_labels(class_vector, self.num_classes)
            class_vector = F.one_hot(labels, self.num_classes).to(self.class_embed.weight.dtype)
        elif class_vector.ndim != 2 or class_vector.shape[1] != self.num_classes:
            raise ValueError(f"class_vector must be (batch, {self.num_classes}) floats (one-hot or soft) or (batch,) "
                             f"integer labels; got shape {tuple(class_vector.shape)} {class_vector.dtype}.")
        return self.class_embed(class_vector)

    def forward(self, z: torch.Tensor, class_vector: torch.Tensor, truncation: float) -> torch.Tensor:
        if z.ndim != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"z must have shape (batch, {self.z_dim}); got {tuple(z.shape)}.")
        cond = torch.cat([z, self.embed(class_vector)], dim=1)
        # the published weights come from TensorFlow: the projection's output is laid out (4, 4, C)
        h = self.project(cond).view(-1, 4, 4, self.first_width).permute(0, 3, 1, 2)
        for i, block in enumerate(self.blocks):
            if i == self.attention_position:
                h = self.attention(h)
            h = block(h, cond, truncation)
        h = F.relu(self.final_norm(h, truncation), inplace=True)
        return torch.tanh(self.to_rgb(h)[:, :self.in_chans])


class BigGANDiscriminator(nn.Module):
    """BigGAN's discriminator: residual blocks, ReLU, sum pooling, a logit plus the class projection."""

    def __init__(self, in_chans: int, num_classes: int, channel_width: int, layers: list, eps: float) -> None:
        super().__init__()
        blocks, cin = [], in_chans
        for i, (down, mult) in enumerate(layers):
            blocks.append(DiscriminatorBlock(cin, mult * channel_width, bool(down), preactivation=i > 0, eps=eps))
            cin = mult * channel_width
        self.blocks = nn.Sequential(*blocks)
        self.num_classes = num_classes
        self.linear = sn(nn.Linear(cin, 1), eps)
        self.class_embed = sn(nn.Embedding(num_classes, cin), eps)

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.blocks(x)).sum(dim=(2, 3))
        return self.linear(h).squeeze(1) + (self.class_embed(labels) * h).sum(1)


# -------------------------------------------------------------------------------------------------- models
class _Sampling(ConditionalSampler, SeededSampler):
    """What the generator-only and the trainable model share: class names, seeds, truncation, sampling."""

    truncation_name = "truncation"
    generator: BigGANDeepGenerator

    def _setup_sampling(self, img_size: int, in_chans: int, num_classes: int, class_names: str | None,
                        default_truncation: float) -> None:
        stats_position(default_truncation, 51)  # the same (0, 1] check as at sampling time
        if class_names is not None and class_names not in CLASS_NAME_SOURCES:
            raise ValueError(f"class_names={class_names!r}: expected None or one of {CLASS_NAME_SOURCES}.")
        if class_names is not None and num_classes != 1000:
            raise ValueError(f"class_names={class_names!r} names 1000 classes; this model has {num_classes}.")
        self.img_size, self.in_chans, self.num_classes = img_size, in_chans, num_classes
        self.default_truncation = float(default_truncation)
        self.class_source = class_names
        self.pretrained_cfg = {"input_size": (in_chans, img_size, img_size), "mean": (0.5,) * in_chans,
                               "std": (0.5,) * in_chans, "num_classes": num_classes,
                               "train_task": "biggan_conditional_generation"}

    @property
    def class_names(self) -> tuple[str, ...] | None:
        """A name per class index (ImageNet-1k's for the published generators), or None."""
        return imagenet_class_names() if self.class_source == "imagenet-1k" else None

    def class_index(self, name: str | int) -> int:
        """The index of a class given by name (any of its names) or by index; suggests close names if unknown."""
        if self.class_source is None and not (isinstance(name, int) or str(name).strip().isdigit()):
            raise ValueError(f"this model's classes have no names; pass an index in [0, {self.num_classes}).")
        index = class_index(name, self.class_source or "imagenet-1k")
        validate_labels([index], self.num_classes, what="class")
        return index

    # -- the reference's seeds and truncation
    def latents_for_seeds(self, seeds: list[int], truncation: float) -> torch.Tensor:
        """The reference's ``truncated_noise_sample(1, z_dim, truncation, seed)`` for every seed, stacked."""
        stats_position(truncation, 51)
        return truncated_noise(seeds, self.generator.z_dim, truncation).to(self._device())

    def generate_images(self, z: torch.Tensor, labels: torch.Tensor | None, truncation: float) -> torch.Tensor:
        """Images in [-1, 1] for latents and classes (int labels, or float class vectors) at ``truncation``."""
        if labels is None:
            raise ValueError("BigGAN is class-conditional: pass a class per latent (--class INDEX or NAME).")
        return self.generator(z, labels.to(z.device), truncation)

    # -- ConditionalSampler
    def sample_z(self, batch_size: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Truncated normal latents on [-2, 2] times ``default_truncation`` (as the reference samples)."""
        draw_on = generator.device if generator is not None else self._device()
        z = torch.empty(batch_size, self.generator.z_dim, device=draw_on)
        nn.init.trunc_normal_(z, 0.0, 1.0, -2.0, 2.0, generator=generator)
        return (z * self.default_truncation).to(self._device())

    def sample(self, labels, generator: torch.Generator | None = None) -> torch.Tensor:
        """Images of the classes ``labels`` at ``default_truncation``."""
        labels = validate_labels(labels, self.num_classes).to(self._device())
        return self.generator(self.sample_z(labels.shape[0], generator), labels, self.default_truncation)

    def forward(self, z: torch.Tensor, class_vector: torch.Tensor, truncation: float | None = None) -> torch.Tensor:
        """Images in [-1, 1]: ``z`` (B, z_dim), ``class_vector`` (B, num_classes) floats or (B,) int labels."""
        return self.generator(z, class_vector, self.default_truncation if truncation is None else truncation)

    def example_inputs(self, batch_size: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
        """``(z, one-hot class vectors)``: what the exported graph takes."""
        z = self.sample_z(batch_size, torch.Generator().manual_seed(0))
        labels = torch.arange(batch_size, device=z.device) % self.num_classes
        return z, F.one_hot(labels, self.num_classes).float()

    # -- standing statistics
    def standing_statistics(self, rows: list[int] | None = None, batches: int = 4, batch_size: int = 64,
                            seed: int = 0) -> None:
        """Recompute the generator's per-truncation batch-norm statistics from its own samples (all 51 rows by
        default), seeded so the same weights give the same statistics; the global RNGs are not touched."""
        g = torch.Generator().manual_seed(seed)
        device = self._device()

        def draw(n: int, truncation: float) -> tuple[torch.Tensor, torch.Tensor]:
            z = nn.init.trunc_normal_(torch.empty(n, self.generator.z_dim), 0.0, 1.0, -2.0, 2.0, generator=g)
            labels = torch.randint(self.num_classes, (n,), generator=g)
            return (z * truncation).to(device), labels.to(device)

        standing_statistics(self.generator, draw, rows, batches, batch_size)


class BigGANDeep(_Sampling, ZooModel):
    """The BigGAN-deep generator alone: what the published ImageNet tags build (no discriminator was published).

    Args:
        img_size: output side (4 * 2 ** number of upsampling blocks).
        in_chans: image channels.
        num_classes: classes of the class vector.
        z_dim: latent size.
        class_embed_dim: size of the shared class embedding.
        channel_width: the width unit ``ch``; ``layers`` give multiples of it.
        layers: ``[upsample, in_mult, out_mult]`` per generator block.
        attention_position: the block before which the self-attention runs (None: no attention).
        eps: batch-norm and spectral-norm epsilon.
        n_stats: truncation values the batch-norm statistics are stored for (evenly spaced in [0, 1]).
        to_rgb_chans: output channels of the last conv, of which the first ``in_chans`` are the image (the
            published files have ``channel_width``); None: ``in_chans``.
        class_names: ``"imagenet-1k"`` to name the classes by ImageNet's names, or None.
        default_truncation: the truncation when none is given (sampling, ``forward``, export).
    """

    def __init__(self, img_size: int = 128, in_chans: int = 3, num_classes: int = 1000, z_dim: int = 128,
                 class_embed_dim: int = 128, channel_width: int = 128, layers: list | None = None,
                 attention_position: int | None = 8, eps: float = 1e-4, n_stats: int = 51,
                 to_rgb_chans: int | None = None, class_names: str | None = None,
                 default_truncation: float = 1.0) -> None:
        super().__init__()
        self._setup_sampling(img_size, in_chans, num_classes, class_names, default_truncation)
        self.generator = BigGANDeepGenerator(img_size, in_chans, num_classes, z_dim, class_embed_dim, channel_width,
                                             DEEP_128 if layers is None else layers, attention_position, eps,
                                             n_stats, to_rgb_chans)
        # torch's default initialisation: this model is for published weights (BigGAN trains with init_weights)


class BigGAN(_Sampling, GANModel):
    """BigGAN-deep's generator with BigGAN's discriminator and losses: class-conditional training.

    Generator arguments as :class:`BigGANDeep`; besides:

    Args:
        d_channel_width: the discriminator's width unit.
        d_layers: ``[downsample, out_mult]`` per discriminator block.
        ortho_weight: weight of the orthogonal regularisation of the generator's weights (BigGAN's 1e-4).
    """

    def __init__(self, img_size: int = 32, in_chans: int = 1, num_classes: int = 10, z_dim: int = 32,
                 class_embed_dim: int = 32, channel_width: int = 16, layers: list | None = None,
                 attention_position: int | None = 4, eps: float = 1e-4, n_stats: int = 51,
                 to_rgb_chans: int | None = None, class_names: str | None = None, default_truncation: float = 1.0,
                 d_channel_width: int = 16, d_layers: list | None = None, ortho_weight: float = 1e-4) -> None:
        super().__init__()
        self._setup_sampling(img_size, in_chans, num_classes, class_names, default_truncation)
        self.ortho_weight = ortho_weight
        self.generator = BigGANDeepGenerator(img_size, in_chans, num_classes, z_dim, class_embed_dim, channel_width,
                                             SMALL_32 if layers is None else layers, attention_position, eps,
                                             n_stats, to_rgb_chans)
        self.discriminator = BigGANDiscriminator(in_chans, num_classes, d_channel_width,
                                                 D_SMALL_32 if d_layers is None else d_layers, eps)
        init_weights(self)
        self._stale = False  # weights changed since the inference statistics were computed

    def train(self, mode: bool = True) -> BigGAN:
        """Entering eval mode after training steps refreshes the statistics at ``default_truncation`` (seeded), so
        pictures and scores taken during training sample the current weights the way a finished model does."""
        if not mode and self.training and self._stale:
            index, coef = stats_position(self.default_truncation, self.generator.final_norm.n_stats)
            self.standing_statistics(rows=[index] if coef == 0.0 else [index, index + 1])
            self._stale = False
        return super().train(mode)

    def standing_statistics(self, rows: list[int] | None = None, batches: int = 4, batch_size: int = 64,
                            seed: int = 0) -> None:
        super().standing_statistics(rows, batches, batch_size, seed)
        if rows is None:
            self._stale = False

    def generators(self) -> dict[str, nn.Module]:
        return {"generator": self.generator}

    def discriminators(self) -> dict[str, nn.Module]:
        return {"discriminator": self.discriminator}

    def example_batch(self, batch_size: int = 2) -> dict[str, torch.Tensor]:
        g = torch.Generator().manual_seed(0)
        image = torch.rand(batch_size, self.in_chans, self.img_size, self.img_size, generator=g) * 2 - 1
        return {"image": image.to(self._device()), "label": (torch.arange(batch_size) % self.num_classes).to(
            self._device())}

    def _unpack(self, batch: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        if not isinstance(batch, dict) or "image" not in batch or "label" not in batch:
            keys = sorted(batch) if isinstance(batch, dict) else type(batch).__name__
            raise ValueError(f"biggan expects a batch {{'image': x in [-1, 1], 'label': y}}; got {keys}.")
        image = batch["image"]
        labels = validate_labels(batch["label"], self.num_classes, image.shape[0], what="batch['label']")
        return image, labels.to(image.device)

    def _fake(self, labels: torch.Tensor) -> torch.Tensor:
        """Samples for ``labels`` from z ~ N(0, I): BigGAN trains without truncation."""
        if self.training:
            self._stale = True
        z = torch.randn(labels.shape[0], self.generator.z_dim, device=labels.device)
        return self.generator(z, labels, 1.0)

    def orthogonal_penalty(self) -> torch.Tensor:
        """BigGAN's orthogonal regularisation: ``sum_W ||W W^T * (1 - I)||_F^2`` over the generator's weights.

        ``W`` is each weight (the spectral norm's unnormalised ``original``) as (outputs, inputs); the shared class
        embedding is left out, as in the paper's code.
        """
        total = torch.zeros((), device=self._device())
        for name, p in self.generator.named_parameters():
            if p.ndim < 2 or name.startswith("class_embed."):
                continue
            w = p.flatten(1)
            gram = w @ w.t()
            total = total + (gram * (1 - torch.eye(gram.shape[0], device=gram.device))).pow(2).sum()
        return total

    def generator_loss(self, batch: dict[str, Any]) -> tuple[torch.Tensor, LossLogs]:
        """Hinge generator loss ``-mean D(G(z, y), y)`` plus ``ortho_weight`` times the orthogonal penalty."""
        _, labels = self._unpack(batch)
        fake_logits = self.discriminator(self._fake(labels), labels)
        adv = -fake_logits.mean()
        ortho = self.orthogonal_penalty() if self.ortho_weight else torch.zeros((), device=adv.device)
        loss = adv + self.ortho_weight * ortho
        return loss, {"G_adv": adv.detach(), "G_ortho": ortho.detach(), "G_fake_logit": fake_logits.detach().mean()}

    def discriminator_loss(self, batch: dict[str, Any]) -> tuple[torch.Tensor, LossLogs]:
        """Hinge loss ``mean relu(1 - D(x, y)) + mean relu(1 + D(G(z, y), y))`` (BigGAN's sum of the two terms)."""
        image, labels = self._unpack(batch)
        with torch.no_grad():
            fake = self._fake(labels)
        real_logits = self.discriminator(image, labels)
        fake_logits = self.discriminator(fake, labels)
        real_term, fake_term = F.relu(1 - real_logits).mean(), F.relu(1 + fake_logits).mean()
        loss = real_term + fake_term
        return loss, {"D_adv": loss.detach(), "D_real": real_term.detach(), "D_fake": fake_term.detach(),
                      "D_real_logit": real_logits.detach().mean(), "D_fake_logit": fake_logits.detach().mean()}


def init_weights(model: nn.Module) -> None:
    """BigGAN's initialisation: orthogonal conv, linear and embedding weights, zero biases."""
    for m in model.modules():
        weight = getattr(getattr(m, "parametrizations", None), "weight", None)
        weight = weight.original if weight is not None else getattr(m, "weight", None)
        if not isinstance(m, (nn.Conv2d, nn.Linear, nn.Embedding)) or weight is None or weight.is_meta:
            continue
        nn.init.orthogonal_(weight)
        if getattr(m, "bias", None) is not None and isinstance(m.bias, nn.Parameter):
            nn.init.zeros_(m.bias)


# ------------------------------------------------------------------------------------------------ registry
def _published_cfg(side: int, hub: bool = False) -> PretrainedCfg:
    """The tag of the published BigGAN-deep generator at ``side`` px (DeepMind's TF-Hub module as converted by
    Hugging Face): from its S3 files, or (``hub``) from the Hub repository that holds the same two files."""
    base = "https://s3.amazonaws.com/models.huggingface.co/biggan/biggan-deep-"
    layers = {128: DEEP_128, 256: DEEP_256, 512: DEEP_512}[side]
    names = {"config": "config.json", "weights": "pytorch_model.bin"}
    source = (dict(hf_hub_id=f"huggingface/biggan-deep-{side}", hf_hub_files=names) if hub else
              dict(files={name: f"{base}{side}-{file}" for name, file in names.items()}))
    return PretrainedCfg(
        input_size=(3, side, side), mean=(0.5,) * 3, std=(0.5,) * 3, paper=PAPER, num_classes=1000,
        description=f"The published BigGAN-deep ImageNet generator, {side} x {side}, 1000 classes (generator only"
                    f"{', from the Hugging Face Hub' if hub else ''}).",
        reader="vgzoo_biggan.convert:read", license="Apache-2.0", dataset="ImageNet-1k",
        model_args=dict(img_size=side, in_chans=3, num_classes=1000, z_dim=128, class_embed_dim=128,
                        channel_width=128, layers=layers, attention_position=8, to_rgb_chans=128,
                        class_names="imagenet-1k"),
        notes="pytorch-pretrained-biggan's config.json + pytorch_model.bin, read with torch.load(weights_only=True) "
              "and mapped key by key.", **source)


TINY = dict(img_size=16, in_chans=3, num_classes=5, z_dim=8, class_embed_dim=8, channel_width=4,
            layers=[[False, 4, 4], [True, 4, 2], [True, 2, 1]], attention_position=1, d_channel_width=4,
            d_layers=[[True, 1], [True, 2], [False, 2]], class_names=None)  # 5 classes: not ImageNet's names

_family = ModelFamily("biggan", BigGAN, task="conditional_generation", test_kwargs=TINY)

biggan = _family.variant(
    "biggan",
    PretrainedCfg(input_size=(1, 32, 32), mean=(0.5,), std=(0.5,), paper=PAPER, num_classes=10,
                  description="BigGAN-deep generator and BigGAN discriminator sized for 32 px, 10 classes (CPU "
                              "training, e.g. builtin:digits)."))
# The published generators build BigGANDeep (no discriminator was published): a name of their own, whose tags
# biggan_deep.TAG keeps naming (aliases). Its untagged config has no model_args, so `vgzoo convert biggan-deep`
# takes every size from the user's config.json.
_PUBLISHED_TAGS = {**{str(side): _published_cfg(side) for side in (128, 256, 512)},
                   **{f"{side}_hub": _published_cfg(side, hub=True) for side in (128, 256, 512)}}
biggan_deep_generator = register_model(
    "biggan_deep_generator", BigGANDeep, family="biggan", task="conditional_generation",
    cfgs={"": PretrainedCfg(input_size=(3, 128, 128), mean=(0.5,) * 3, std=(0.5,) * 3, paper=PAPER, num_classes=1000,
                            description="The BigGAN-deep generator alone, in pytorch-pretrained-biggan's layout (what "
                                        "vgzoo convert biggan-deep writes; the files set its size); the tags .128, "
                                        ".256, .512 are the published ImageNet generators."),
          **_PUBLISHED_TAGS},
    test_kwargs={k: v for k, v in TINY.items() if not k.startswith("d_")}, inference_only=True)
biggan_deep = _family.variant(
    "biggan_deep",
    PretrainedCfg(input_size=(3, 128, 128), mean=(0.5,) * 3, std=(0.5,) * 3, paper=PAPER, num_classes=1000,
                  description="BigGAN-deep 128 px (ImageNet's architecture) with BigGAN's discriminator, to train; the "
                              "tags .128, .256, .512 are the published generators (biggan_deep_generator's)."),
    dict(img_size=128, in_chans=3, num_classes=1000, z_dim=128, class_embed_dim=128, channel_width=128,
         layers=DEEP_128, attention_position=8, to_rgb_chans=128, class_names="imagenet-1k",
         d_channel_width=128, d_layers=D_128),
    aliases={"generator": "biggan_deep_generator",
             **{tag: f"biggan_deep_generator.{tag}" for tag in _PUBLISHED_TAGS}})
