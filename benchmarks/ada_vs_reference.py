"""vgzoo's ADA pipe against the reference's own ``AugmentPipe`` (NVlabs/stylegan2-ada-pytorch), same random draws.

Usage::

    git clone https://github.com/NVlabs/stylegan2-ada-pytorch /tmp/sg2ada   # needs scipy, as the reference does
    python benchmarks/ada_vs_reference.py /tmp/sg2ada

Both pipes run the ``bgc`` set on the same images after the same ``torch.manual_seed``; vgzoo draws its random
numbers in the reference's order, so the outputs must agree to float rounding. The reference runs its pure-PyTorch
path (its CUDA plugins are not built). Prints the largest absolute difference per case and fails above 1e-4.
"""

from __future__ import annotations

import argparse
import sys

import torch


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reference", help="a checkout of NVlabs/stylegan2-ada-pytorch")
    args = parser.parse_args(argv)
    sys.path.insert(0, args.reference)
    from torch_utils.ops import upfirdn2d  # the reference's modules

    upfirdn2d._inited, upfirdn2d._plugin = True, None  # its reference path, no compiled plugin
    from training.augment import AugmentPipe as Reference
    from vgzoo_stylegan2.augment import PIPES, AugmentPipe

    worst = 0.0
    for pipe in ("blit", "geom", "color", "bgc"):
        for channels in (3, 1):
            for p in (0.0, 0.3, 1.0):
                x = torch.rand(8, channels, 32, 32, generator=torch.Generator().manual_seed(channels)) * 2 - 1
                ref = Reference(**PIPES[pipe])
                ref.p.fill_(p)
                ours = AugmentPipe.from_name(pipe, p=p)
                torch.manual_seed(123)
                a = ref(x)
                torch.manual_seed(123)
                b = ours(x)
                diff = float((a - b).abs().max())
                worst = max(worst, diff)
                print(f"{pipe:5s} channels {channels} p {p:.1f}: max |reference - vgzoo| = {diff:.2e}")
    print(f"largest difference {worst:.2e}")
    if worst > 1e-4:
        raise SystemExit("vgzoo's pipe differs from the reference's")


if __name__ == "__main__":
    main()
