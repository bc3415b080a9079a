"""vgzoo-vanilla-gan: the unconditional GAN of Goodfellow et al. (2014), "Generative Adversarial Nets", as a plugin.

vgzoo finds the model through this distribution's ``vgzoo.models`` entry point; importing this package
is not needed to use it (``vgzoo.create("gan_vanilla")`` imports :mod:`vgzoo_vanilla_gan.model`).
"""

__version__ = "0.1.0"
