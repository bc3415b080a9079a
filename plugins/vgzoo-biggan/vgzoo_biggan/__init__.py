"""vgzoo-biggan: BigGAN-deep (Brock et al. 2019) as a vgzoo plugin.

vgzoo finds the models (``biggan``, ``biggan_deep`` with the published tags ``.128``, ``.256``, ``.512`` and their
``_hub`` twins) and the ``biggan_conditional_generation`` training task through this distribution's entry points;
importing this package is not needed to use them.
"""

__version__ = "0.1.0"
