"""BigGAN-deep image generation: vgzoo against the reference implementation (pytorch-pretrained-biggan), same weights.

Run: python benchmarks/bench_biggan.py [--sizes 128,256] [--batch 1,8] [--repeats 5] [--threads N] [--no-write]
     python benchmarks/bench_biggan.py --tiny --no-write        (a smoke test on the tiny fixture, seconds)

The reference is the PyPI package ``pytorch-pretrained-biggan`` (``pip install pytorch-pretrained-biggan boto3``;
it imports boto3 at import time); it is only imported here, never by vgzoo. Both generators get the same weights:
vgzoo's ``BigGANDeep`` with its random initialisation, copied key by key (``vgzoo_to_published``) into the
reference's ``BigGAN`` built from the published config of that size, so no download is needed. ``--tiny`` uses the
tiny published-format fixture of ``shared/reference/biggan`` instead (64 px), for a quick check of the script.

Each call generates ``batch`` images as the reference's README does: ``model(z, class_vector, truncation=0.4)`` with
``z = truncated_noise_sample(batch, 128, 0.4, seed=0)`` and one-hot class vectors, in eval mode under no_grad.
Timings alternate between the contenders on every repeat (one warm-up each) so machine noise hits them alike;
medians and ratios go to the "biggan" section of RESULTS.md, with the outputs' max abs difference.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch
from _results import iqr, machine, median, write_section
from vgzoo_biggan.convert import config_from_published, read, vgzoo_to_published
from vgzoo_biggan.model import BigGANDeep

REFERENCE = Path(os.environ.get("VGZOO_REFERENCE_DIR", Path(__file__).resolve().parents[2] / "shared" / "reference"))
TRUNCATION = 0.4


def reference_package():
    try:
        import pytorch_pretrained_biggan as ref
    except ImportError as exc:
        raise SystemExit("the reference is the PyPI package pytorch-pretrained-biggan (it also needs boto3): "
                         f"pip install pytorch-pretrained-biggan boto3 ({exc})") from exc
    return ref


def pair(ref, size: int | None) -> tuple[BigGANDeep, torch.nn.Module]:
    """vgzoo's generator and the reference's with the same weights (``size`` None: the tiny fixture)."""
    if size is None:
        published = json.loads((REFERENCE / "biggan" / "tiny" / "config.json").read_text())
        converted = read({"config": REFERENCE / "biggan" / "tiny" / "config.json",
                          "weights": REFERENCE / "biggan" / "tiny" / "pytorch_model.bin"})
        ours = BigGANDeep(**converted.config)
        ours.load_state_dict(converted.state_dict)
    else:
        published = json.loads((REFERENCE / "biggan" / "published_shapes.json").read_text())[
            f"biggan-deep-{size}"]["config"]
        torch.manual_seed(0)
        ours = BigGANDeep(**config_from_published(published))
    theirs = ref.BigGAN(ref.BigGANConfig.from_dict(published))
    target = theirs.state_dict()  # tensors sharing the module's storage: copied into in place
    weights = vgzoo_to_published(ours.state_dict(), ours.generator.attention_position)
    if set(weights) != set(target):
        raise SystemExit(f"key sets differ: {sorted(set(weights) ^ set(target))[:6]}")
    with torch.no_grad():
        for key, value in weights.items():
            target[key].copy_(value)
    return ours.eval(), theirs.eval()


def timed(fn) -> float:
    start = time.perf_counter()
    with torch.no_grad():
        fn()
    return time.perf_counter() - start


def bench_case(ref, size: int | None, batch: int, repeats: int) -> dict:
    ours, theirs = pair(ref, size)
    z_dim, classes = ours.generator.z_dim, ours.num_classes
    z = torch.from_numpy(ref.truncated_noise_sample(batch_size=batch, dim_z=z_dim, truncation=TRUNCATION, seed=0))
    labels = torch.arange(batch) * 37 % classes
    onehot = torch.nn.functional.one_hot(labels, classes).float()
    contenders = {"vgzoo": lambda: ours(z, onehot, TRUNCATION), "reference": lambda: theirs(z, onehot, TRUNCATION)}
    with torch.no_grad():
        diff = float((contenders["vgzoo"]() - contenders["reference"]()).abs().max())
    times: dict[str, list[float]] = {k: [] for k in contenders}
    for fn in contenders.values():  # warm-up
        timed(fn)
    for _ in range(repeats):
        for key, fn in contenders.items():
            times[key].append(timed(fn))
    return {"times": times, "diff": diff}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="128,256", help="image sizes (comma list of 128, 256, 512)")
    parser.add_argument("--batch", default="1,8", help="images per call (comma list)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--tiny", action="store_true", help="the tiny fixture only (a smoke test of this script)")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--no-write", action="store_true", help="print only, do not update RESULTS.md")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    ref = reference_package()
    start, load_start = time.time(), os.getloadavg()[0]
    from importlib.metadata import version

    lines = [
        "## biggan: BigGAN-deep generation, vgzoo vs the reference implementation (CPU)",
        "",
        f"`python benchmarks/bench_biggan.py` on {machine()}, {torch.get_num_threads()} intra-op threads; reference "
        f"pytorch-pretrained-biggan {version('pytorch-pretrained-biggan')}. Same random weights in both (copied key "
        f"by key), truncation {TRUNCATION}, one-hot classes, eval mode, no_grad.",
        "",
        "| image | batch | vgzoo ms | reference ms | vgzoo speed-up | max abs diff |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    sizes = [None] if args.tiny else [int(s) for s in args.sizes.split(",")]
    for size in sizes:
        for batch in (int(b) for b in args.batch.split(",")):
            row = bench_case(ref, size, batch, args.repeats)
            t = {k: (median(v) * 1e3, iqr(v) * 1e3) for k, v in row["times"].items()}
            shown = "64x64 (tiny fixture)" if size is None else f"{size}x{size}"
            lines.append(f"| {shown} | {batch} | {t['vgzoo'][0]:.0f} ± {t['vgzoo'][1]:.0f} "
                         f"| {t['reference'][0]:.0f} ± {t['reference'][1]:.0f} "
                         f"| {t['reference'][0] / t['vgzoo'][0]:.2f}x | {row['diff']:.1e} |")
    lines += ["", f"Median ± IQR over {args.repeats} repeats, contenders alternating. Whole run: "
              f"{time.time() - start:.0f} s. 1-minute load average at start / end: {load_start:.1f} / "
              f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores."]
    body = "\n".join(lines)
    print(body)
    if not args.no_write:
        write_section("biggan", body)


if __name__ == "__main__":
    main()
