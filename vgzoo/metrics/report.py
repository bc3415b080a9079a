"""Plain-text summaries of the ``vgzoo eval`` results (the JSON documents hold everything)."""

from __future__ import annotations

from typing import Any

__all__ = ["format_result"]


def _fid_lines(r: dict[str, Any]) -> list[str]:
    return [
        f"FID {r['fid']:.4f}   KID {r['kid_mean']:.5f} ± {r['kid_std']:.5f} "
        f"({r['kid_subsets']} subsets of {r['kid_subset_size']}, seed {r['seed']})",
        f"features {r['features']} ({r['feature_dim']}-d, input {'x'.join(map(str, r['input_size']))}); "
        f"{r['n_real']} real, {r['n_fake']} fake images",
    ]


def format_result(r: dict[str, Any]) -> str:
    """A few lines for the terminal: the scores, what they were computed on, and any notes."""
    lines: list[str] = []
    if "fid" in r:
        lines += _fid_lines(r)
        if "per_class" in r:
            lines.append(f"per-class mean: FID {r['class_fid_mean']:.4f}   KID {r['class_kid_mean']:.5f}")
            lines += [f"  class {c}: FID {v['fid']:.4f}  KID {v['kid_mean']:.5f} ({v['n_real']} real, "
                      f"{v['n_fake']} fake)" for c, v in r["per_class"].items()]
    if "is_mean" in r:
        lines.append(f"IS {r['is_mean']:.4f} ± {r['is_std']:.4f} ({r['is_splits']} splits of {r['is_num_images']} "
                     f"images, logits {r['is_logits']})")
    if r.get("accuracy") is not None:
        lines.append(f"class-conditional accuracy (digits classifier) {r['accuracy']:.4f}")
    if "psnr" in r:
        lp = "n/a (--no-lpips)" if r.get("lpips") is None else f"{r['lpips']:.4f}"
        lines.append(f"PSNR {r['psnr']:.3f} dB   SSIM {r['ssim']:.4f}   LPIPS {lp}   L1 {r['l1']:.4f} "
                     f"over {r['num_images']} pairs ({r['split']}, {r['direction']})")
    elif "top1" in r:
        t5 = "n/a (< 5 classes)" if r.get("top5") is None else f"{r['top5']:.4f}"
        lines.append(f"top-1 {r['top1']:.4f}   top-5 {t5}   over {r['num_images']} images, {len(r['classes'])} classes")
        if r.get("confusion_png"):
            lines.append(f"wrote {r['confusion_png']}")
    if r.get("inference"):
        from ..inference import describe_inference

        lines.append(describe_inference(r["inference"]) + (" (features)" if "fid" in r else ""))
    if r.get("translate_inference"):
        from ..inference import describe_inference

        lines.append(describe_inference(r["translate_inference"]) + " (translation)")
    for note in r.get("notes", []):
        lines.append(f"note: {note}")
    return "\n".join(lines)
