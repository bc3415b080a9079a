"""The predicted first-GPU-run breaks, checked and recorded (part of benchmarks/gpu_check.sh).

    python benchmarks/gpu_checks.py OUT.json [--device cuda] [--tiny]

Each check records its result or its error and the script goes on: fp16 AMP with a forced overflow, bitwise
resume with default kernels and in deterministic mode, host syncs per steady cGAN training step and per
train-transform call, the transforms' device/dtype/RNG contract, CycleGAN batched against separate passes. OUT.json
is rewritten after every check, so a run stopped by its time limit keeps what it found. ``--device cpu --tiny`` is
the dry run the test suite does (tiny models, few steps; sync counting needs CUDA and is skipped).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import shutil
import tempfile
import time
import warnings

import torch
from torch.utils.data import Dataset

import vgzoo
from vgzoo._hub import atomic_write_json
from vgzoo.augment import DiffAugment, create_transform
from vgzoo.train import TrainingError, fit
from vgzoo.train.recipes import Recipe

R: dict = {}
CG = {"nz": 8, "ngf": 8, "ndf": 8}


def guard(name, fn, out: str):
    start = time.perf_counter()
    try:
        R[name] = json.loads(json.dumps(fn(), default=str))  # plain JSON, whatever the check returned
    except Exception as exc:  # record and go on: one break must not hide the others
        R[name] = f"ERROR {type(exc).__name__}: {exc}"[:400]
    print(f"{name} ({time.perf_counter() - start:.1f}s) -> {R[name]}", flush=True)
    atomic_write_json(out, R)  # what was found so far survives a time limit that stops the script


class Unpaired(Dataset):
    def __init__(self, size: int):
        self.x = torch.rand(16, 2, 3, size, size, generator=torch.Generator().manual_seed(0))

    def __len__(self):
        return 16

    def __getitem__(self, i):
        return {"A": self.x[i, 0], "B": self.x[i, 1]}


@contextlib.contextmanager
def in_steady_steps(measure):
    """Run every training step after the first, and the preparation of its batch, inside ``measure()`` (a context
    manager factory): what a steady step costs, without set-up, the first step (it allocates and picks kernels),
    evaluation batches, log read-backs, checkpoints and pictures."""
    prepare, train_step = Recipe.prepare, Recipe.train_step

    def steady_prepare(self, batch, train=True):
        if not (train and getattr(self, "steady", False)):
            return prepare(self, batch, train)
        with measure():
            return prepare(self, batch, train)

    def steady_step(self, batch, step):
        if step == 0:
            logs = train_step(self, batch, step)
            self.steady = True
            return logs
        with measure():
            return train_step(self, batch, step)

    Recipe.prepare, Recipe.train_step = steady_prepare, steady_step
    try:
        yield
    finally:
        Recipe.prepare, Recipe.train_step = prepare, train_step


def same(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return all(torch.equal(sa[k], sb[k]) for k in sa)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out")
    p.add_argument("--device", default="cuda")
    p.add_argument("--tiny", action="store_true", help="dry-run sizes")
    args = p.parse_args()
    dev = torch.device(args.device)
    tiny = args.tiny
    tmp = tempfile.mkdtemp(prefix="vgzoo-gpu-checks-")
    steps = 2 if tiny else 12
    img = 32 if tiny else 64

    def cgan(out, n, **kw):
        return fit("cgan_embed_digits", "builtin:digits", f"{tmp}/{out}", steps=n, batch_size=16 if tiny else 64,
                   seed=3, device=str(dev), model_kwargs=CG, progress=False, log=lambda m: None, **kw)

    def amp():
        # fp16 GradScaler forced to overflow at first: the skipped steps must not end the run as "diverged"
        orig = torch.amp.GradScaler
        torch.amp.GradScaler = functools.partial(orig, init_scale=2.0**40)
        try:
            return f"ok, reached step {cgan('amp', 2 if tiny else 4, amp='fp16').step}"
        except TrainingError as exc:
            return f"FATAL: {str(exc)[:200]}"
        finally:
            torch.amp.GradScaler = orig

    def resume(det):
        torch.use_deterministic_algorithms(det, warn_only=True)
        torch.backends.cudnn.deterministic = det
        tag, out = ("det" if det else "default"), {}
        # the split run must decay its learning rate over the same horizon as the whole run (schedule_steps)
        runs = {
            "cgan+diffaugment": lambda o, s, **kw: cgan(f"{tag}/cg_{o}", s, options={
                "diffaugment": "color,translation,cutout", "schedule_steps": steps}, **kw),
            "cyclegan_reflectpad": lambda o, s, **kw: fit(
                "cyclegan_resnet6", Unpaired(img), f"{tmp}/{tag}/cy_{o}", steps=s, batch_size=1, seed=3,
                device=str(dev), model_kwargs={"ngf": 8, "ndf": 8, "img_size": img}, progress=False,
                log=lambda m: None, options={"schedule_steps": steps}, **kw),
        }
        if tiny:  # the dry run checks that the check runs; one family is enough for that
            runs.pop("cyclegan_reflectpad")
        for name, run in runs.items():
            a, b = run("a", steps).model, run("b", steps).model
            run("s", steps // 2)
            c = run("s", steps, resume=True).model
            out[name] = {"rerun_equal": same(a, b), "resume_equal": same(a, c)}
        return out

    @contextlib.contextmanager
    def count_syncs(found: list):
        torch.cuda.set_sync_debug_mode("warn")
        try:
            with warnings.catch_warnings(record=True) as w:
                warnings.simplefilter("always")
                yield
        finally:
            torch.cuda.set_sync_debug_mode(0)
        found.append(sum("synchroniz" in str(x.message) for x in w))

    def syncs():
        # per steady step: the data preparation and the step of steps 2..N (step 1 allocates and picks kernels);
        # set-up, the log read-backs every log_every steps, checkpoints and pictures are not steps
        if dev.type != "cuda":
            return "skipped: sync counting needs CUDA"
        found: list = []
        n = 10
        with in_steady_steps(lambda: count_syncs(found)):
            cgan("sync", n, options={"log_every": n})
        return {"per_steady_step": round(sum(found) / (n - 1), 2), "steady_steps": n - 1,
                "most_in_one_call": max(found, default=0), "calls_counted": len(found)}

    def transforms():
        out = {}
        b, side = (4, 48) if tiny else (64, 256)
        for dt in (torch.float32, torch.bfloat16):
            x = torch.rand(b, 3, side, side, device=dev, dtype=dt)
            y = torch.randint(0, 1000, (b,), device=dev)
            cases = {"classification": (create_transform("vit_b16_scratch", seed=1, mixup=True, cutmix=True,
                                                         label_smoothing=0.1), (x, y)),
                     "paired": (create_transform("pix2pix_unet", seed=1), (x, x)),
                     "diffaugment": (DiffAugment(seed=1), (x * 2 - 1,))}
            for name, (t, targs) in cases.items():
                key = f"{name}/{str(dt).split('.')[-1]}"
                try:
                    cpu_before = torch.get_rng_state()
                    cuda_before = torch.cuda.get_rng_state(dev) if dev.type == "cuda" else None
                    o1 = t(*targs)
                    t.calls = 0
                    o2 = t(*targs)
                    o1, o2 = (o1 if isinstance(o1, tuple) else (o1,)), (o2 if isinstance(o2, tuple) else (o2,))
                    out[key] = {"device": str(o1[0].device), "dtype": str(o1[0].dtype),
                                "seeded_repeat": all(torch.equal(p, q) for p, q in zip(o1, o2, strict=True)),
                                "cpu_rng_untouched": torch.equal(cpu_before, torch.get_rng_state()),
                                "cuda_rng_untouched": None if cuda_before is None
                                else torch.equal(cuda_before, torch.cuda.get_rng_state(dev))}
                except Exception as exc:
                    out[key] = f"ERROR {type(exc).__name__}: {exc}"[:300]
        if dev.type == "cuda":
            t = create_transform("vit_b16_scratch", check_range=False)
            x = torch.rand(256, 3, 256, 256, device=dev)
            t(x)
            torch.cuda.synchronize()
            n: list = []
            with count_syncs(n):
                t(x)
            out["classification_train_syncs_per_call(check_range=False)"] = n[0]
            torch.cuda.synchronize()
            start = time.perf_counter()
            for _ in range(5):
                t(x)
            torch.cuda.synchronize()
            out["classification_train_img_per_s(batch256)"] = round(5 * 256 / (time.perf_counter() - start))
        return out

    def batched():
        side = 64 if tiny else 256
        small = {"ngf": 8, "ndf": 8} if tiny else {}
        m = vgzoo.create("cyclegan_resnet6" if tiny else "cyclegan_resnet", img_size=side, **small).to(dev).train()
        b = {k: v.to(dev) for k, v in m.example_batch(1).items()}
        og = torch.optim.Adam(m.generator_parameters(), lr=2e-4)
        od = torch.optim.Adam(m.discriminator_parameters(), lr=2e-4)
        res = {}

        def step():
            og.zero_grad(set_to_none=True)
            m.generator_loss(b)[0].backward()
            og.step()
            od.zero_grad(set_to_none=True)
            m.discriminator_loss(b)[0].backward()
            od.step()

        reps = 1 if tiny else 10
        for flag in (False, True, False, True):  # the second round is kept (warm)
            m.batched_passes = flag
            for _ in range(1 if tiny else 3):
                step()
            if dev.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            for _ in range(reps):
                step()
            if dev.type == "cuda":
                torch.cuda.synchronize()
            res[f"batched={flag} ms/step"] = round((time.perf_counter() - start) * 1000 / reps, 2)
        return res

    R["device"] = str(dev)
    try:
        guard("amp_fp16_overflow", amp, args.out)
        guard("resume_default_kernels", lambda: resume(False), args.out)
        guard("resume_deterministic_mode", lambda: resume(True), args.out)
        torch.use_deterministic_algorithms(False)
        torch.backends.cudnn.deterministic = False
        guard("host_syncs", syncs, args.out)
        guard("transforms", transforms, args.out)
        guard("cyclegan_batched_passes", batched, args.out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
