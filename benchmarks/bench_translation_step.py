"""Training-step speed of CycleGAN (Zhu et al. 2017) and pix2pix (Isola et al. 2017): vgzoo against the
reference's order of operations, written out here.

The "reference-order" steps follow pytorch-CycleGAN-and-pix2pix: CycleGAN runs six separate generator passes
(fake, cycle and identity images, one call each), freezes the discriminators for the generator update, then
updates each discriminator with separate real and fake passes; pix2pix runs the generator once, updates D
(fake pass, real pass) then G. vgzoo's steps call the models' ``generator_loss`` / ``discriminator_loss``
(three batched generator calls and one call per discriminator for instance-norm CycleGAN), in fp32 and under
bf16 autocast. All variants start from the same weights, run in one process and alternate, batch 1, on the CPU
or ``--device cuda`` (timings synchronised; section "translation-cuda").
The bf16 losses are compared with fp32 on identical weights and inputs (pools off).

    python benchmarks/bench_translation_step.py                 # 128 px and 256 px, 7 repeats (~5 min idle)
    python benchmarks/bench_translation_step.py --sizes 128 --repeats 9
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import time

import torch
import torch.nn.functional as F
from _results import iqr, machine, median, precision_line, resolve_device, section, sync, write_section
from tqdm import tqdm

import vgzoo

DEVICE = torch.device("cpu")
SMALL: dict = {}  # --small: 8-channel networks, for dry runs

def adam(params):
    return torch.optim.Adam(params, lr=2e-4, betas=(0.5, 0.999))


def set_requires_grad(nets, flag: bool) -> None:
    for net in nets:
        for p in net.parameters():
            p.requires_grad_(flag)


class ReferenceCycleGANStep:
    """The reference's optimize_parameters, written plainly: six generator passes, separate D passes."""

    def __init__(self, model):
        self.m = model
        self.opt_g = adam(model.generator_parameters())
        self.opt_d = adam(model.discriminator_parameters())

    def __call__(self, batch, autocast: bool = False) -> None:
        m, a, b = self.m, batch["A"], batch["B"]
        ctx = torch.autocast(DEVICE.type, dtype=torch.bfloat16) if autocast else contextlib.nullcontext()
        with ctx:
            fake_b = m.G_AB(a)
            rec_a = m.G_BA(fake_b)
            fake_a = m.G_BA(b)
            rec_b = m.G_AB(fake_a)
        set_requires_grad([m.D_A, m.D_B], False)
        self.opt_g.zero_grad()
        with ctx:
            idt_b = m.G_AB(b)
            idt_a = m.G_BA(a)
            loss_idt = F.l1_loss(idt_b, b) * 5.0 + F.l1_loss(idt_a, a) * 5.0
            pred_b, pred_a = m.D_B(fake_b), m.D_A(fake_a)
            loss_gan = F.mse_loss(pred_b, torch.ones_like(pred_b)) + F.mse_loss(pred_a, torch.ones_like(pred_a))
            loss_cycle = F.l1_loss(rec_a, a) * 10.0 + F.l1_loss(rec_b, b) * 10.0
            loss_g = loss_gan + loss_cycle + loss_idt
        loss_g.backward()
        self.opt_g.step()
        set_requires_grad([m.D_A, m.D_B], True)
        self.opt_d.zero_grad()
        for net, real, fake, pool in ((m.D_B, b, fake_b, m.pool_B), (m.D_A, a, fake_a, m.pool_A)):
            fake = pool.query(fake)
            with ctx:
                pr, pf = net(real), net(fake.detach())
                loss_d = 0.5 * (F.mse_loss(pr, torch.ones_like(pr)) + F.mse_loss(pf, torch.zeros_like(pf)))
            loss_d.backward()
        self.opt_d.step()


class ReferencePix2PixStep:
    """pix2pix's optimize_parameters: G once, D (fake, real) update, then G update through the frozen D."""

    def __init__(self, model):
        self.m = model
        self.opt_g = adam(model.generator_parameters())
        self.opt_d = adam(model.discriminator_parameters())

    def __call__(self, batch, autocast: bool = False) -> None:
        m, a, b = self.m, batch["A"], batch["B"]
        ctx = torch.autocast(DEVICE.type, dtype=torch.bfloat16) if autocast else contextlib.nullcontext()
        with ctx:
            fake_b = m.generator(a)
        set_requires_grad([m.discriminator], True)
        self.opt_d.zero_grad()
        with ctx:
            pf = m.discriminator(torch.cat([a, fake_b], 1).detach())
            pr = m.discriminator(torch.cat([a, b], 1))
            loss_d = 0.5 * (F.binary_cross_entropy_with_logits(pf, torch.zeros_like(pf))
                            + F.binary_cross_entropy_with_logits(pr, torch.ones_like(pr)))
        loss_d.backward()
        self.opt_d.step()
        set_requires_grad([m.discriminator], False)
        self.opt_g.zero_grad()
        with ctx:
            pf = m.discriminator(torch.cat([a, fake_b], 1))
            loss_g = F.binary_cross_entropy_with_logits(pf, torch.ones_like(pf)) + F.l1_loss(fake_b, b) * 100.0
        loss_g.backward()
        self.opt_g.step()
        set_requires_grad([m.discriminator], True)


class VgzooStep:
    """A generic trainer's step over the model protocol, in the family's order."""

    def __init__(self, model, d_first: bool):
        self.m, self.d_first = model, d_first
        self.opt_g = adam(model.generator_parameters())
        self.opt_d = adam(model.discriminator_parameters())

    def __call__(self, batch, autocast: bool = False) -> None:
        ctx = torch.autocast(DEVICE.type, dtype=torch.bfloat16) if autocast else contextlib.nullcontext()
        order = [("d", self.m.discriminator_loss, self.opt_d), ("g", self.m.generator_loss, self.opt_g)]
        for _, loss_fn, opt in order if self.d_first else order[::-1]:
            opt.zero_grad(set_to_none=True)
            with ctx:
                loss, _ = loss_fn(batch)
            loss.backward()
            opt.step()


def loss_deviation(name: str, size: int) -> dict[str, float]:
    """Relative deviation of every logged loss under bf16 autocast from fp32 (same weights, inputs, no pool)."""
    torch.manual_seed(0)
    model = vgzoo.create(name, pool_size=0, **SMALL).train().to(DEVICE)
    for module in model.modules():  # dropout masks would differ between the runs; precision is the question
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    batch = {k: v[..., :size, :size].to(DEVICE) for k, v in model.example_batch(1).items()}
    out = {}
    for autocast in (False, True):
        ctx = torch.autocast(DEVICE.type, dtype=torch.bfloat16) if autocast else contextlib.nullcontext()
        m = copy.deepcopy(model)  # identical batch-norm statistics
        with ctx:
            if name.startswith("pix2pix"):
                _, d_logs = m.discriminator_loss(batch)
                _, g_logs = m.generator_loss(batch)
            else:
                _, g_logs = m.generator_loss(batch)
                _, d_logs = m.discriminator_loss(batch)
        out[autocast] = {**g_logs, **d_logs}
    keys = [k for k in out[False] if not k.endswith("logit")]
    return {k: abs(out[True][k] - out[False][k]) / max(abs(out[False][k]), 1e-8) for k in keys}


def bench_case(label: str, name: str, size: int, d_first: bool, repeats: int, warmup: int, modes: list[str]):
    torch.manual_seed(0)
    base = vgzoo.create(name, img_size=size, **SMALL) if name.startswith("cyclegan") else vgzoo.create(name, **SMALL)
    base.train().to(DEVICE)
    ref_cls = ReferencePix2PixStep if name.startswith("pix2pix") else ReferenceCycleGANStep
    steps = {}
    for mode in modes:
        model = copy.deepcopy(base)
        if "batched" in mode:
            model.batched_passes = True
        steps[mode] = (ref_cls(model) if mode.startswith("reference") else VgzooStep(model, d_first),
                       mode.endswith("bf16"))
    torch.manual_seed(1)
    batch = {k: v[:1].to(DEVICE) for k, v in base.example_batch(1).items()}
    times = {mode: [] for mode in modes}
    total = (warmup + repeats) * len(modes)
    with tqdm(total=total, desc=label, unit="step", leave=False) as bar:
        for r in range(warmup + repeats):
            order = modes if r % 2 == 0 else modes[::-1]  # alternate, and alternate who goes first
            for mode in order:
                step, autocast = steps[mode]
                sync(DEVICE)
                t0 = time.perf_counter()
                step(batch, autocast)
                sync(DEVICE)
                dt = time.perf_counter() - t0
                if r >= warmup:
                    times[mode].append(dt)
                bar.update(1)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="128,256", help="CycleGAN image sides (128: resnet6, 256: resnet 9 blocks)")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--no-pix2pix", action="store_true")
    parser.add_argument("--pix2pix-size", type=int, default=256, choices=(128, 256),
                        help="pix2pix_unet (256) or pix2pix_unet128 (128)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads (default: torch's). On a loaded machine 1 avoids OpenMP stalls.")
    parser.add_argument("--section", default=None, help="RESULTS.md section to write (default: translation, "
                        "translation-cuda on CUDA)")
    parser.add_argument("--device", default="auto", help="cpu, cuda[:N] or auto (CUDA when visible)")
    parser.add_argument("--small", action="store_true", help="8-channel networks (a dry run, not a measurement)")
    parser.add_argument("--no-write", action="store_true", help="Print only; leave RESULTS.md alone.")
    args = parser.parse_args()
    global DEVICE
    DEVICE = torch.device(resolve_device(args.device))
    if args.small:
        SMALL.update(ngf=8, ndf=8)
    if args.threads:
        torch.set_num_threads(args.threads)

    modes = ["reference fp32", "vgzoo fp32", "vgzoo bf16", "vgzoo batched fp32", "vgzoo batched bf16"]
    cases = []
    for size in [int(s) for s in args.sizes.split(",") if s]:
        name = "cyclegan_resnet6" if size <= 128 else "cyclegan_resnet"
        cases.append((f"CycleGAN {name} {size}px", name, size, False))
    if not args.no_pix2pix:
        p2p = "pix2pix_unet" if args.pix2pix_size == 256 else "pix2pix_unet128"
        cases.append((f"pix2pix {p2p} {args.pix2pix_size}px", p2p, args.pix2pix_size, True))

    rows, dev_rows = [], []
    start = time.perf_counter()
    for label, name, size, d_first in cases:
        case_modes = modes if name.startswith("cyclegan") else modes[:3]  # pix2pix (batch norm) never batches
        times = bench_case(label, name, size, d_first, args.repeats, args.warmup, case_modes)
        ref = median(times["reference fp32"])
        cells = [f"{median(times[m]):.2f} s, IQR {iqr(times[m]):.2f} (**{ref / median(times[m]):.2f}x**)"
                 if m in times else "-" for m in modes]
        rows.append(f"| {label} | " + " | ".join(cells) + " |")
        print(rows[-1], flush=True)
        dev = loss_deviation(name, size)
        worst = max(dev, key=dev.get)
        dev_rows.append(f"| {label} | {max(dev.values()):.2e} ({worst}) | "
                        + ", ".join(f"{k} {v:.1e}" for k, v in dev.items()) + " |")
        print(dev_rows[-1], flush=True)
    elapsed = time.perf_counter() - start

    body = "\n".join([
        "## translation: CycleGAN and pix2pix training steps",
        "",
        "`python benchmarks/bench_translation_step.py"
        + (f" --sizes {args.sizes}" if args.sizes != "128,256" else "")
        + (f" --repeats {args.repeats}" if args.repeats != 7 else "")
        + (f" --threads {args.threads}" if args.threads else "")
        + (" --no-pix2pix" if args.no_pix2pix else "")
        + (f" --pix2pix-size {args.pix2pix_size}" if args.pix2pix_size != 256 else "")
        + (f" --device {DEVICE}" if DEVICE.type != "cpu" else "") + "`"
        + f" ({args.repeats} timed repeats after {args.warmup} warm-up, variants alternating in one process,"
        f" batch 1, {DEVICE}; {elapsed / 60:.1f} min). Machine: {machine(str(DEVICE))}. Precision: "
        f"{precision_line(str(DEVICE))}. "
        + ("**A shared 2-core machine** that other jobs were loading while this ran: absolute times are inflated"
           " and noisy; read the medians and ratios." if DEVICE.type == "cpu" else ""),
        "",
        "A full step updates both generators and both discriminators (Adam). *reference fp32*: the reference's order"
        " of operations written out in the benchmark (CycleGAN: six separate generator passes, separate real/fake D"
        " passes; pix2pix: one G pass, D fake then real, then G). *vgzoo*: the model's `generator_loss` /"
        " `discriminator_loss` (batched: CycleGAN in three generator calls and one call per discriminator; pix2pix has"
        " batch norm, so its passes stay separate and the gain can only come from precision).",
        "",
        "Median seconds per step, IQR (speed-up against reference fp32). *vgzoo* is the default, which on the CPU runs"
        " the reference's separate passes; *vgzoo batched* forces the batched passes (`model.batched_passes = True`,"
        " the default on accelerators).",
        "",
        "| step | " + " | ".join(modes) + " |",
        "| --- |" + " --- |" * len(modes),
        *rows,
        "",
        "bf16 autocast against fp32, same weights and inputs (pools and dropout off): relative deviation of each"
        " logged loss.",
        "",
        "| step | largest | every loss |",
        "| --- | --- | --- |",
        *dev_rows,
    ])
    print(body)
    if not args.no_write:
        write_section(args.section or section("translation", str(DEVICE)), body)


if __name__ == "__main__":
    main()
