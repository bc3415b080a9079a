"""The benchmark harness: the O(S^2) cost of attention ("Attention Is All You Need", Vaswani et al., 2017) in Vision
Transformers (Dosovitskiy et al., 2021) against the linear-in-pixels cost of convnets, with model throughput.

- :func:`run_scaling`: models over image sizes (time, FLOPs, attention share, memory, fits, crossover).
- :func:`run_attention`: the attention operator alone, naive against each SDPA backend.
- :func:`run_model`: inference / training-step throughput of one model, optionally against a timm model.
- :func:`write_results` / :func:`format_table` / :func:`to_json`: JSON, CSV, PNG and text reports.

The result schema is documented in docs/bench.md.
"""

from __future__ import annotations

from .attention import run_attention
from .fit import fit_power_law
from .flops import attention_flops, count_flops, measure_matmul_peak
from .model import run_model
from .report import format_table, to_json, write_results
from .scaling import run_scaling

__all__ = ["attention_flops", "count_flops", "fit_power_law", "format_table", "measure_matmul_peak",
           "run_attention", "run_model", "run_scaling", "to_json", "write_results"]
