"""Collect what benchmarks/gpu_check.sh wrote into OUT/summary.json and the "gpu" section of RESULTS.md.

    python benchmarks/gpu_report.py OUT [--results benchmarks/RESULTS.md]

Reads OUT/env.json, steps.log, checks.json, the bench JSON documents (attention, model, scaling), augment.json and
train_cgan.json; whatever is missing (a step that failed or ran out of time) is reported as missing.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _results import write_section  # noqa: E402

from vgzoo._hub import atomic_write_json  # noqa: E402


def _load(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def _f(v, spec=".3g"):
    return "-" if v is None else format(v, spec)


def _bench_rows(doc, kind: str) -> list[str]:
    if not doc:
        return ["(missing: the step failed or ran out of time; see its log)"]
    out = [f"{doc['device']}, {doc['dtype']}; SDPA picks {doc.get('sdpa_backend')}; matmul peak "
           f"{_f((doc.get('matmul_peak_flops') or 0) / 1e12, '.1f')} TFLOP/s ({doc['dtype']})", ""]
    if doc.get("interrupted"):
        out += ["**Partial**: the step reached its time limit; the rows below are what it measured before.", ""]
    oom = [n for n in doc.get("notes", []) if "out of memory" in n]
    if oom:
        out += [f"- {n}" for n in oom] + [""]
    if kind == "attention":
        out += ["| operator | mode | S | ms | MiB | % of peak |", "| --- | --- | --- | --- | --- | --- |"]
        out += [f"| {r['operator']} | {r['mode']} | {r['seq_len']} | {_f(r['median_s'] * 1e3, '.2f')} | "
                f"{_f((r['peak_mem_bytes'] or 0) / 2**20, '.1f')} | {_f(r['pct_of_peak'], '.1f')} |"
                for r in doc["rows"]]
        skipped = [f"{k}: {v['reason']}" for k, v in doc.get("operators", {}).items() if not v.get("available")]
        out += [""] + [f"- skipped {s}" for s in skipped]
    elif kind == "model":
        out += ["| model | mode | batch | samples/s | ms/step | % of peak |", "| --- | --- | --- | --- | --- | --- |"]
        out += [f"| {r['model']} | {r['mode']} | {r['batch_size']} | {_f(r['samples_per_s'], '.1f')} | "
                f"{_f(r['median_s'] * 1e3, '.2f')} | {_f(r['pct_of_peak'], '.1f')} |" for r in doc["rows"]]
        if doc.get("ratio"):
            out.append(f"\nvgzoo / timm throughput: {_f(doc['ratio']['throughput_ratio'], '.3f')}")
    else:
        out += ["| model | px | img/s | attn % FLOP | attn % time | MiB | % of peak |",
                "| --- | --- | --- | --- | --- | --- | --- |"]
        out += [
            f"| {r['model']} | {r['img_size']} | {_f(r['images_per_s'], '.1f')} | "
            f"{_f(100 * r['attention_flop_share'] if r.get('attention_flop_share') is not None else None, '.1f')} | "
            f"{_f(100 * r['attention_time_share'] if r.get('attention_time_share') is not None else None, '.1f')} | "
            f"{_f((r['peak_mem_bytes'] or 0) / 2**20, '.1f')} | {_f(r['pct_of_peak'], '.1f')} |"
            for r in doc["rows"]
        ]
        for name, c in (doc.get("crossover") or {}).items():
            out.append(f"\n- {name}: predicted {_f(c.get('predicted_px'), '.0f')} px, "
                       f"FLOPs {_f(c.get('flops_px'), '.0f')}"
                       f" px ({c.get('flops_method')}), time {_f(c.get('time_px'), '.0f')} px ({c.get('time_method')})")
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out", type=Path)
    p.add_argument("--results", type=Path, default=Path(__file__).with_name("RESULTS.md"))
    args = p.parse_args()
    out: Path = args.out
    env = _load(out / "env.json") or {}
    steps = (out / "steps.log").read_text() if (out / "steps.log").exists() else ""
    docs = {name: _load(out / name / f"{kind}.json") for name, kind in (
        ("attn_bf16", "attention"), ("attn_fp32", "attention"), ("vitb_infer", "model"), ("vitb_train", "model"),
        ("scaling", "scaling"))}
    summary = {"env": env, "steps": steps.splitlines(), "checks": _load(out / "checks.json"),
               "augment": _load(out / "augment.json"), "train_cgan": _load(out / "train_cgan.json"),
               "bench": docs}
    atomic_write_json(out / "summary.json", summary)
    device = env.get("device", "?")
    gpu = (env.get("machine") or {}).get("gpu")
    on_gpu = str(device).startswith("cuda") and gpu
    lines = ["## gpu: `benchmarks/gpu_check.sh`", ""]
    if not on_gpu:
        lines += [f"**Dry run on {device}, not a GPU measurement**: this checks that the script and its steps run; "
                  "the numbers below mean nothing for a GPU.", ""]
    else:
        prec = env.get("precision", {})
        lines += [f"{gpu}, torch {env.get('torch')}, CUDA {prec.get('cuda')}, cuDNN {prec.get('cudnn_version')}; "
                  f"TF32 matmul {prec.get('allow_tf32_matmul')}, TF32 cuDNN {prec.get('allow_tf32_cudnn')}, "
                  f"float32 matmul precision {prec.get('float32_matmul_precision')}; SDPA enabled "
                  f"{prec.get('sdpa_enabled')}; bf16 SDPA picks {env.get('sdpa_backend_bf16')}.", ""]
    lines += ["Steps (seconds since start, exit codes):", "", "```", steps.strip(), "```", "",
              "### Break checks (`benchmarks/gpu_checks.py`)", "", "```",
              json.dumps(summary["checks"], indent=1)[:4000] if summary["checks"] else "(missing)", "```", ""]
    titles = {"attn_bf16": "Attention, bf16", "attn_fp32": "Attention, fp32",
              "vitb_infer": "ViT-B/16 vs timm, inference",
              "vitb_train": "ViT-B/16 vs timm, training step", "scaling": "Scaling sweep"}
    kinds = {"attn_bf16": "attention", "attn_fp32": "attention", "vitb_infer": "model", "vitb_train": "model",
             "scaling": "scaling"}
    for name, doc in docs.items():
        lines += [f"### {titles[name]}", "", *_bench_rows(doc, kinds[name]), ""]
    aug = summary["augment"]
    lines += ["### Augmentation: Kornia batched on the device vs torchvision per sample in DataLoader workers", ""]
    if aug:
        lines += [f"| {k} | {v:.0f} img/s |" for k, v in aug["images_per_s"].items()]
        lines += ["", f"Kornia / torchvision: {aug['ratio']:.2f}x (batch {aug['batch']}, {aug['workers']} workers)."]
    else:
        lines.append("(missing)")
    tr = summary["train_cgan"]
    lines += ["", "### Trainer", "", f"cGAN run: {tr['steps']} steps in {tr['wall_s']} s wall (start-up included)."
              if tr else "(missing)"]
    path = write_section("gpu", "\n".join(lines), args.results)
    print(f"wrote {out / 'summary.json'} and section 'gpu' of {path}")


if __name__ == "__main__":
    main()
