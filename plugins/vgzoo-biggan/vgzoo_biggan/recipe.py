"""BigGAN's training recipe as a vgzoo task, ``biggan_conditional_generation``, plugged in through the ``vgzoo.tasks``
entry point; the BigGAN models name it as their ``pretrained_cfg["train_task"]`` (their task is
``conditional_generation``, so generation, evaluation, export and the demo treat them like every class-conditional
generator).

Brock et al. (2019), Appendix B and C: hinge loss, ``d_steps`` discriminator steps per generator step (each on its
own slice of the batch's real images), Adam with betas (0, 0.999) and the discriminator's learning rate four times
the generator's, orthogonal regularisation of the generator (the model's ``ortho_weight``), an exponential moving
average of the weights (the engine's ``ema``, on by this recipe's default) and standing statistics: before every
checkpoint and the final folders the generator's per-truncation batch-norm statistics are recomputed for all 51
truncation values (the EMA copy's too), so a trained model samples at any truncation the way the published ones do.
Checkpoints come every ``save_every`` (2000) steps and at the end, not at epoch ends (``-o save_epochs=1`` restores
those).

Everything else is the engine's (resume, health monitor, DDP, FID during training with ``-o eval_every``); the
pictures are a class-by-seed grid: a row per class, a column per seed, the same latent down each column.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from vgzoo.tasks import Task
from vgzoo.train import plots
from vgzoo.train.options import Option
from vgzoo.train.recipes import GAN_OPTIONS, ConditionalGANRecipe, Recipe, d_step, g_step

__all__ = ["BigGANRecipe", "biggan_conditional_generation", "class_seed_grid"]

SEEDS = tuple(range(8))


def _slice(batch: dict[str, Any], index: int, parts: int) -> dict[str, Any]:
    """The ``index``-th of ``parts`` equal slices of a batch (the last takes the remainder)."""
    n = batch["image"].shape[0]
    size = max(1, n // parts)
    start = min(index * size, n - 1)
    stop = n if index == parts - 1 else min(start + size, n)
    return {k: v[start:stop] for k, v in batch.items()}


def _d_step_on_slice(index: int, parts: int) -> Callable:
    def step(recipe: Recipe, batch: dict[str, Any]):
        return d_step(recipe, _slice(batch, index, parts))

    return step


@torch.no_grad()
def class_seed_grid(recipe: Recipe, fixed: dict[str, Any], path, title: str | None = None) -> None:
    """A row per class (at most 10), a column per seed: the same latent down each column, at the default
    truncation; the latents are the reference's for those seeds."""
    model = recipe.model
    classes = list(range(min(10, int(model.num_classes))))
    z = model.latents_for_seeds(list(SEEDS), model.default_truncation)
    rows = []
    for c in classes:
        labels = torch.full((len(SEEDS),), c, dtype=torch.long, device=z.device)
        rows.append(list(recipe.unit(model.generate_images(z, labels, model.default_truncation))))
    names = model.class_names
    plots.save_grid(rows, path, scale=2, headers=[f"seed {s}" for s in SEEDS],
                    row_labels=[names[c] if names else f"class {c}" for c in classes], title=title)


class BigGANRecipe(ConditionalGANRecipe):
    """BigGAN: ``d_steps`` D steps then a G step, Adam (0, 0.999), D at 4x the G learning rate, standing
    statistics before every save."""

    task = "biggan_conditional_generation"
    defaults = {"batch_size": 64, "lr": 1e-4, "epochs": 100}
    # The paper samples from a moving average of G (final_ema/; -o ema=false: none), begun after ema_start steps as
    # BigGAN-PyTorch does (its CIFAR runs: 1000; its ImageNet runs: 20000). Checkpoints every 2000 steps, as
    # BigGAN-PyTorch saves, rather than at epoch ends: each recomputes the standing statistics of both generators
    # (51 truncations), which on a small dataset's short epochs would cost about as much as the epoch's steps.
    engine_defaults = {"ema": True, "ema_start": 1000, "save_every": 2000, "save_epochs": 0}
    schema = (
        *(o for o in GAN_OPTIONS if o.name not in ("d_lr_mult", "beta1", "order")),
        Option("d_lr_mult", 4.0, "float", "the discriminator's LR relative to the generator's (BigGAN: 4)"),
        Option("beta1", 0.0, "float", "Adam's beta1 (BigGAN: 0)"),
        Option("order", "DG", "str", "DG: the D steps, then the G step (BigGAN's order); GD"),
        Option("d_steps", 2, "int", "discriminator steps per generator step, each on its own slice of the batch"),
        Option("standing_batches", 1, "int", "batches (of the run's batch size) per truncation value for the standing "
               "statistics"),
    )
    grid = staticmethod(class_seed_grid)

    def __init__(self, model: nn.Module, call: Callable, **kwargs: Any) -> None:
        super().__init__(model, call, **kwargs)
        if int(self.options["d_steps"]) < 1:
            raise ValueError(f"option d_steps={self.options['d_steps']!r}: expected an int >= 1.")

    def plan(self, step: int) -> tuple[Callable, ...]:
        n = int(self.options["d_steps"])
        d_steps = tuple(_d_step_on_slice(i, n) for i in range(n))
        return (*d_steps, g_step) if self.options["order"] == "DG" else (g_step, *d_steps)

    def before_save(self, ema: nn.Module | None) -> None:
        """Standing statistics for all truncation values, of the model and of its moving average."""
        batches = int(self.options["standing_batches"])
        for model in (self.model, getattr(ema, "module", None)):
            if model is not None:
                model.standing_statistics(batches=batches, batch_size=self.batch_size)


biggan_conditional_generation = Task(
    name="biggan_conditional_generation",
    summary="images of chosen classes from noise, trained with BigGAN's recipe",
    batch_keys=("image", "label"),
    dataset="vgzoo.data.labelled:LabelledImageFolder",
    transform="vgzoo.augment:images_pipeline",
    recipe="vgzoo_biggan.recipe:BigGANRecipe",
    protocols=("vgzoo.protocols:GANModel", "vgzoo.protocols:ConditionalSampler"),
    output="sample",
    distribution="vgzoo-biggan",
)
