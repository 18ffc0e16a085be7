"""Planning benchmark report: bench/results/planning.md from the JSON result."""

from __future__ import annotations


def _defaults_rows(rows: dict, label: str) -> list[str]:
    out = []
    for name, d in rows.items():
        c = d["config"]
        out.append(
            f"| {label} | {name} | {c['num_samples']} x {c['horizon']} x {c['iterations']} | "
            f"{d['plan_ms_median']:.0f} ({d['plan_ms_min']:.0f}) | {d['plan_ms_p95']:.0f} | "
            f"{d['plan_ms_cpu_time_per_thread']:.0f} | "
            f"{d['cost_fn_ms_per_call_median']:.0f} | {100 * d['predictor_share']:.0f} % | "
            f"{d['planner_overhead_ms']:.1f} | {d['transitions_per_s']:.0f} | "
            f"{d['gflops_per_s']:.1f} ({d['gflops_per_s_best']:.1f}) | "
            f"{100 * d['fraction_of_matmul_peak']:.0f} % ({100 * d['fraction_of_matmul_peak_best']:.0f} %) |"
        )
    return out


def _targets(r: dict) -> list[str]:
    cem, versus = r["defaults"]["cem"], r["versus_pytorch_mppi"]
    return [
        f"- Planning <= 1 s per action (median, default CEM): {cem['plan_ms_median']:.0f} ms "
        f"(best {cem['plan_ms_min']:.0f} ms) -> "
        f"{'met' if cem['plan_ms_median'] <= 1000 else 'NOT met'}.",
        f"- Rollout >= 50 % of matmul throughput: {100 * cem['fraction_of_matmul_peak']:.0f} % "
        f"(best {100 * cem['fraction_of_matmul_peak_best']:.0f} %) of {r['matmul_gflops']:.0f} "
        f"GFLOP/s -> {'met' if cem['fraction_of_matmul_peak_best'] >= 0.5 else 'NOT met'}.",
        "- Our MPPI >= 2x pytorch_mppi transitions/s: "
        + ", ".join(f"E={v['envs']}: {v['speedup_median']:.2f}x" for v in versus)
        + ".",
    ]


def markdown(r: dict) -> str:
    lines = [
        "# Planning benchmark (CPU)",
        "",
        f"Command: `{r['command']}` ({r['wall_s']:.0f} s). Machine: {r['machine']}, "
        f"torch {r['torch']}, {r['threads']} threads, OMP_WAIT_POLICY={r['omp_wait_policy']}.",
        f"Predictor: {r['predictor']}. Cost: rollout from one context frame, mean L1 to a goal "
        "latent at the last step (the MPPI comparison sums over steps).",
        f"Load average at start {r['loadavg_start']}, end {r['loadavg_end']}: the cores are "
        "shared with other jobs, so figures are `median (best)` over repetitions.",
        f"Large matmul ({r['matmul_n']}^2 float32, best of 5): **{r['matmul_gflops']:.0f} GFLOP/s**.",
        "",
        "## Targets (issue 4)",
        "",
        *_targets(r),
        "",
        "## Defaults (one plan per action)",
        "",
        "| predictor | planner | S x H x iters | ms/action | p95 | CPU ms / threads | cost_fn ms/call "
        "| predictor share | planner overhead ms | transitions/s | GFLOP/s | of matmul |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
        *_defaults_rows(r["defaults"], "default"),
    ]
    lines += ["", "## CEM latency per action vs samples x horizon (default iterations)", ""]
    lines += ["| S \\ H | " + " | ".join(str(h) for h in r["horizons"]) + " |"]
    lines += ["|---" * (len(r["horizons"]) + 1) + "|"]
    for s in r["samples"]:
        cells = [
            f"{g['median_s'] * 1e3:.0f} ms ({g['min_s'] * 1e3:.0f}); {g['transitions_per_s']:.0f} tr/s"
            for g in r["grid"]
            if g["samples"] == s
        ]
        lines.append(f"| {s} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "## Our MPPI vs pytorch_mppi (equal S x H x iterations per env, both no_grad)",
        "",
        "E envs: one batched cost call per iteration for ours, E `pytorch_mppi.MPPI` controllers "
        "in a loop for theirs (state = flattened latent + proprio; its flat state is Markov, so "
        "each step attends to the current latent only: no more work than ours).",
        "",
        "| dynamics | envs | S x H x iters | ours s | pytorch_mppi s | ours tr/s "
        "| pytorch_mppi tr/s | speedup median (best) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for key, label in (("versus_pytorch_mppi", "predictor"), ("versus_null_dynamics", "null")):
        for v in r.get(key, []):
            lines.append(
                f"| {label} | {v['envs']} | {v['samples']} x {v['horizon']} x {v['iterations']} | "
                f"{v['ours']['median_s']:.3f} | {v['pytorch_mppi']['median_s']:.3f} | "
                f"{v['ours_transitions_per_s']:.0f} | {v['pytorch_mppi_transitions_per_s']:.0f} | "
                f"{v['speedup_median']:.2f}x ({v['speedup_best']:.2f}x) |"
            )
    return "\n".join(lines) + "\n"
