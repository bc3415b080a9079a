"""Feature-extraction throughput of vgzoo eval on CPU (images/s), and what the per-folder cache saves.

Run: python benchmarks/bench_eval.py [--repeats 3] [--device cpu] [--write-results]

- digits features (the shipped 16x16 classifier): 1,797 built-in digits from memory (uint8 tensors), and the same
  images as PNG files in a folder (decode + features, cache off), and the cached re-read of that folder.
- inception features (the standard FID Inception-v3, 2048-d, inputs resized to 299x299): only when its weights are
  in torch hub's cache or can be downloaded; otherwise the row says why and no number is given. A second row times
  the same architecture with random weights, labelled as such: it measures speed only (scores from it mean nothing).

Medians over repeats; prints a Markdown table and writes the "eval" section of RESULTS.md with --write-results.
"""

from __future__ import annotations

import argparse
import os
import socket
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from _results import machine, median, write_section
from PIL import Image

from vgzoo.data.digits import DigitsDataset
from vgzoo.metrics import features as feat_mod
from vgzoo.metrics.features import extract_features, folder_features, get_features


def timed(fn, repeats: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return median(times), out


def random_inception(device: torch.device):
    """The FID Inception architecture with random weights (speed only), built without any download."""
    import torch_fidelity.feature_extractor_inceptionv3 as tfi
    from torchmetrics.image.fid import NoTrainInceptionV3

    orig_url, orig_load = tfi.load_state_dict_from_url, tfi.FeatureExtractorInceptionV3.load_state_dict
    tfi.load_state_dict_from_url = lambda *a, **k: {}
    tfi.FeatureExtractorInceptionV3.load_state_dict = lambda self, sd, *a, **k: None
    try:
        net = NoTrainInceptionV3(name="inception-v3-compat", features_list=["2048"]).to(device)
    finally:
        tfi.load_state_dict_from_url, tfi.FeatureExtractorInceptionV3.load_state_dict = orig_url, orig_load
    return feat_mod.FeatureExtractor("inception (random weights, speed only)", "random", 3, (299, 299), 2048,
                                     lambda x: net(x), device, net)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--inception-images", type=int, default=64)
    ap.add_argument("--write-results", action="store_true", help="Rewrite the 'eval' section of RESULTS.md.")
    args = ap.parse_args()
    device = torch.device(args.device)
    rows: list[tuple[str, str, str]] = []
    ds = DigitsDataset(split="all")
    images = (ds.images * 255).round().to(torch.uint8)
    n = len(images)

    digits = get_features("digits", device)
    s, _ = timed(lambda: extract_features(images.split(256), digits, progress=False), args.repeats)
    rows.append(("digits, from memory (batch 256)", f"{n / s:,.0f}", f"{n} images in {s:.3f} s"))

    with tempfile.TemporaryDirectory() as tmp:
        os.environ["VGZOO_CACHE"] = str(Path(tmp) / "cache")
        folder = Path(tmp) / "digits"
        folder.mkdir()
        for i, x in enumerate(images):
            Image.fromarray(x[0].numpy()).save(folder / f"{i:04d}.png")
        s, _ = timed(lambda: folder_features(folder, digits, batch_size=256, cache=False, progress=False),
                     args.repeats)
        rows.append(("digits, PNG folder (decode + features, no cache)", f"{n / s:,.0f}", f"{n} images in {s:.3f} s"))
        folder_features(folder, digits, batch_size=256, cache=True, progress=False)
        s, hit = timed(lambda: folder_features(folder, digits, cache=True, progress=False), args.repeats)
        assert hit.cache_hit
        rows.append(("digits, PNG folder, cached re-read", f"{n / s:,.0f}", f"{n} images in {s:.3f} s (cache hit)"))

        rng = np.random.default_rng(0)
        small = torch.from_numpy(rng.integers(0, 256, (args.inception_images, 3, 64, 64), dtype=np.uint8))
        socket.setdefaulttimeout(30)
        try:
            inception = get_features("inception", device)
            s, _ = timed(lambda: extract_features(small.split(32), inception, progress=False), args.repeats)
            rows.append(("inception (64x64 RGB -> 299, batch 32)", f"{len(small) / s:,.1f}",
                         f"{len(small)} images in {s:.2f} s"))
        except Exception as exc:  # the weights cannot be had here: say so, give no number
            reason = " ".join(str(exc).split())[:160]
            rows.append(("inception (standard FID weights)", "not measured", f"weights unavailable: {reason}"))
        rand = random_inception(device)
        s, _ = timed(lambda: extract_features(small.split(32), rand, progress=False), args.repeats)
        rows.append(("Inception-v3 architecture, random weights (speed only)", f"{len(small) / s:,.1f}",
                     f"{len(small)} images 64x64 RGB -> 299 (PIL bicubic) in {s:.2f} s, batch 32"))

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    lines = [
        f"Machine: {machine()}; device {device}; torch threads {torch.get_num_threads()}; "
        f"load average at the end {load:.1f}. Medians of {args.repeats} repeats. "
        "Command: `python benchmarks/bench_eval.py`.",
        "",
        "| features | images/s | detail |",
        "| --- | ---: | --- |",
        *[f"| {a} | {b} | {c} |" for a, b, c in rows],
    ]
    body = "\n".join(lines)
    print(body)
    if args.write_results:
        print(f"wrote {write_section('eval', body)}")


if __name__ == "__main__":
    main()
