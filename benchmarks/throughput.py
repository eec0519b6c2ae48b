"""Inversion throughput: seconds per stage-1 / stage-2 step and per image for each preset, the effect of
every speed switch (on vs off, interleaved in the same run), where the time of a step goes, and
images/hour with 1 and 2 Ray actors. Prints JSON.

    .venv/bin/python benchmarks/throughput.py                      # default CPU config (~5-10 min)
    .venv/bin/python benchmarks/throughput.py --configs default,full --actors 0    # + 512-px EG3D config
    .venv/bin/python benchmarks/throughput.py --configs none --actors 1,2 --actor-images 4
    .venv/bin/python benchmarks/throughput.py --configs none --actors 1 --actor-items-per-call 1,2   # shared batches
    python benchmarks/throughput.py --device cuda --configs full,default --actors 0 --profile   # on a GPU
    python benchmarks/throughput.py --device cuda --configs none --actors 0 --end-to-end full/paper:1

Configurations: ``default`` = the embedded SynthHeads generator (128 px, what the CPU presets run);
``full`` = EG3D's ffhqrebalanced512-128 topology (512 px output, random weights: speed does not depend on
the weights). Per-image seconds of a preset = measured fixed costs (mean-w mapping at the preset's sample
count, stage set-up, final render + metrics) + its step counts x the measured step times (stage 2 runs
"up to" its steps: the early stop can only shorten it). Step times are medians over the measured steps
after a warm-up step; stage-2's mean step follows the real cadence (one pseudo-label step every 4).
Ratios (off / on) are of this process's CPU seconds per step (1 thread) on CPU, of wall seconds on a GPU,
from variants measured alternately in one process: robust to other load on the machine. Absolute wall seconds are not (the JSON
records the load average before and after); ``*_cpu_s`` fields are the load-robust figures.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import resource
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch
from _machine import cpu_name, device_name  # benchmarks/ is on sys.path when a script runs

from sym3dinv.cameras import camera_label
from sym3dinv.config.invert import InversionConfig, PerformanceConfig
from sym3dinv.config.presets import preset
from sym3dinv.generator import TriPlaneGenerator, load_generator
from sym3dinv.generator.latents import mean_w
from sym3dinv.invert.api import input_view_metrics
from sym3dinv.invert.losses import LossFunctions, default_losses
from sym3dinv.invert.pseudo import FaceRegions
from sym3dinv.invert.render import synthesize, tuned_tensors
from sym3dinv.invert.stage1 import run_stage1
from sym3dinv.invert.stage2 import run_stage2
from sym3dinv.perf import no_grad_render, resolve

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(os.environ.get("SYM3DINV_SHARED_FIXTURES", REPO.parent / "shared" / "fixtures")) / "eg3d"
PRESETS = ("paper", "balanced", "fast", "cpu")
log = logging.getLogger("benchmarks.throughput")

# variant name -> (perf switches, stage-1 batch images, stage 2 measured); "all_on" is the shipped default
ALL_OFF = PerformanceConfig(cache_target_features=False, share_planes=False, unfused_modconv="off",
                            channels_last="off", inference_mode=False, autocast="off", tf32="off", cuda_graphs="off")
VARIANTS: dict[str, tuple[PerformanceConfig, bool, bool]] = {
    "all_on": (PerformanceConfig(), True, True),
    "all_off": (ALL_OFF, False, True),
    "no_target_cache": (PerformanceConfig(cache_target_features=False), True, True),
    "no_share_planes": (PerformanceConfig(share_planes=False), True, True),
    "fused_modconv": (PerformanceConfig(unfused_modconv="off"), True, True),
    "no_stage1_batch": (PerformanceConfig(), False, False),
    "channels_last": (PerformanceConfig(channels_last="on"), True, True),
    "no_channels_last": (PerformanceConfig(channels_last="off"), True, True),
    "one_pass": (PerformanceConfig(views_per_pass=0), True, True),  # stage-2 pseudo step: 6 cameras at once
    # CUDA-only switches (on CPU they resolve to the same settings as all_on)
    "fp32": (PerformanceConfig(autocast="off"), True, True),
    "fp32_no_tf32": (PerformanceConfig(autocast="off", tf32="off"), True, True),
    "unfused_modconv": (PerformanceConfig(unfused_modconv="on"), True, True),
    "compile": (PerformanceConfig(compile="on"), True, True),
    "cuda_graphs": (PerformanceConfig(cuda_graphs="on"), True, True),
}
CPU_VARIANTS = ("all_on", "all_off", "no_target_cache", "no_share_planes", "fused_modconv", "no_stage1_batch",
                "channels_last")
CUDA_VARIANTS = ("all_on", "all_off", "cuda_graphs", "fp32", "fp32_no_tf32", "no_target_cache", "no_share_planes",
                 "unfused_modconv", "no_channels_last", "no_stage1_batch")


def _generator(name: str, device: torch.device) -> TriPlaneGenerator:
    if name == "default":
        return load_generator("synthheads", device=device)
    if name.startswith("synthheads-") or name.startswith("file:"):  # an embedded generator by name, or a file
        return load_generator(name.removeprefix("file:"), device=device)
    init = json.loads((FIXTURES / "full_manifest.json").read_text())["init_kwargs"]
    torch.manual_seed(0)
    return TriPlaneGenerator(**init).eval().requires_grad_(False).to(device)


def _inputs(G: TriPlaneGenerator, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """n target images rendered by G from other latents, at |yaw| >= 0.2 so the mirror terms are active."""
    yaws = ([0.45, -0.35, 0.3, -0.5] * 4)[:n]
    dev = next(G.parameters()).device
    cams = torch.cat([camera_label(y, 0.05) for y in yaws]).to(dev)
    z = torch.randn(n, G.z_dim, generator=torch.Generator().manual_seed(7)).to(dev)
    with torch.no_grad():
        img = G.synthesis(G.mapping(z, cams), cams, sampling="deterministic", fused_modconv=False).image
    return img.clamp(-1, 1), cams


def _sync(device: torch.device) -> None:
    """Wait for queued device work, so host clocks measure it (no-op on CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _steps(stamps: list[tuple[str, int, float, float]], stage: str, clock: int = 2) -> dict[int, float]:
    """Per-step durations from consecutive progress time stamps (step 0 has no predecessor: omitted);
    ``clock`` 2 = wall time, 3 = this process's CPU time."""
    s = [(e[1], e[clock]) for e in stamps if e[0] == stage]
    return {k: t - t0 for (_, t0), (k, t) in zip(s, s[1:], strict=False)}


def measure(G: TriPlaneGenerator, x: torch.Tensor, c: torch.Tensor, cfg: InversionConfig, losses: LossFunctions,
            batch: int, steps1: int, steps2: int) -> dict[str, float]:
    """One measurement of a variant: stage-1 with ``batch`` images, stage 2 on the first image
    (``steps2`` = 0: stage 1 only, for switches that only act there)."""
    stamps: list[tuple[str, int, float, float]] = []
    dev = x.device

    def progress(stage: str, step: int, total: int, _: dict) -> None:
        _sync(dev)
        stamps.append((stage, step, time.perf_counter(), time.process_time()))

    cfg = replace(cfg, stage1=replace(cfg.stage1, steps=steps1, batch_size=batch, w_avg_samples=1000),
                  stage2=replace(cfg.stage2, steps=steps2, lpips_threshold=0.0))
    gen = torch.Generator().manual_seed(0)
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    _sync(dev)
    t0 = time.perf_counter()
    s1 = run_stage1(G, x[:batch], c[:batch], cfg, losses, gen, progress)
    _sync(dev)
    t1 = time.perf_counter()
    d1 = _steps(stamps, "stage1")
    s1_step = statistics.median(d1.values())
    first1 = stamps[0][2] - t0  # mean w (1000 samples) + set-up + step 0
    cpu1 = statistics.median(_steps(stamps, "stage1", 3).values())
    out = {"stage1_step_s": s1_step, "stage1_step_per_image_s": s1_step / batch,
           "stage1_step_per_image_cpu_s": cpu1 / batch,
           "stage1_fixed_s": max(0.0, first1 - s1_step), "stage1_wall_s": t1 - t0}
    if dev.type == "cuda":
        out["stage1_gpu_peak_gib"] = torch.cuda.max_memory_allocated(dev) / 2**30
        torch.cuda.reset_peak_memory_stats(dev)
    if steps2 == 0:
        return out
    noise = {k: v[0] for k, v in s1.noise.items()}
    s2 = run_stage2(G, x[:1], c[:1], s1.ws[:1], noise, cfg, losses, regions=FaceRegions(), progress=progress)
    _sync(dev)
    t2 = time.perf_counter()
    if dev.type == "cuda":
        out["stage2_gpu_peak_gib"] = torch.cuda.max_memory_allocated(dev) / 2**30
    perf = resolve(cfg.perf, x.device)
    with no_grad_render(perf):
        r = synthesize(G, s1.ws[:1], c[:1], tensors=tuned_tensors(G, s2.delta), sampling=cfg.sampling,
                       fused_modconv=perf.fused_modconv).image
        input_view_metrics(r, x[:1], losses)
    _sync(dev)
    t3 = time.perf_counter()
    d2 = _steps(stamps, "stage2")
    c2 = _steps(stamps, "stage2", 3)
    every = cfg.stage2.pseudo_every
    cpu_plain = statistics.median(v for k, v in c2.items() if k % every)
    cpu_pseudo = statistics.median(v for k, v in c2.items() if k % every == 0)
    plain = statistics.median(v for k, v in d2.items() if k % every)
    pseudo = statistics.median(v for k, v in d2.items() if k % every == 0)
    first2 = next(e[2] for e in stamps if e[0] == "stage2") - t1  # frozen depths + set-up + step 0 (pseudo)
    return {**out, "stage2_plain_step_cpu_s": cpu_plain, "stage2_pseudo_step_cpu_s": cpu_pseudo,
            "stage2_step_cpu_s": (cpu_pseudo + (every - 1) * cpu_plain) / every,
            "stage2_plain_step_s": plain, "stage2_pseudo_step_s": pseudo,
            "stage2_step_s": (pseudo + (every - 1) * plain) / every, "stage2_fixed_s": max(0.0, first2 - pseudo),
            "final_render_s": t3 - t2, "stage2_wall_s": t2 - t1}


def mapping_seconds_per_1000(G: TriPlaneGenerator, c: torch.Tensor) -> float:
    gen = torch.Generator().manual_seed(0)
    mean_w(G, c[:1], 200, gen)  # warm-up
    _sync(c.device)
    t0 = time.perf_counter()
    mean_w(G, c[:1], 2000, gen)
    _sync(c.device)
    return (time.perf_counter() - t0) / 2


def per_image(m: dict[str, float], cfg: InversionConfig, map_1000: float, batch: int) -> dict[str, float]:
    """Projected seconds per image of a preset from measured step times and fixed costs: with the wall
    step times (as loaded as the machine was) and with the CPU step times (what one unshared core does)."""
    s1, s2 = cfg.stage1, cfg.stage2
    mapping = map_1000 * s1.w_avg_samples / 1000
    fixed = max(0.0, m["stage1_fixed_s"] - map_1000) / batch + mapping + m["stage2_fixed_s"] + m["final_render_s"]
    stage1 = s1.steps * m["stage1_step_per_image_s"]
    stage2 = s2.steps * m["stage2_step_s"]
    cpu = s1.steps * m["stage1_step_per_image_cpu_s"] + s2.steps * m["stage2_step_cpu_s"] + fixed
    return {"stage1_s": round(stage1, 2), "stage2_up_to_s": round(stage2, 2), "fixed_s": round(fixed, 2),
            "seconds_per_image": round(stage1 + stage2 + fixed, 1),
            "seconds_per_image_from_cpu_time": round(cpu, 1),
            "images_per_hour_1_process": round(3600 / (stage1 + stage2 + fixed), 2),
            "images_per_hour_1_core_from_cpu_time": round(3600 / cpu, 2)}


def profile_step(G: TriPlaneGenerator, x: torch.Tensor, c: torch.Tensor, cfg: InversionConfig,
                 losses: LossFunctions) -> dict:
    """Where a step's time goes: forward wall time per component (module hooks) and self CPU time per op
    family over forward + backward (torch.profiler), for one stage-1 step and one stage-2 pseudo step."""
    from torch.profiler import ProfilerActivity, profile

    comps: dict[str, torch.nn.Module] = {"backbone (tri-planes)": G.backbone.synthesis, "MLP decoder": G.decoder,
                                         "super-resolution": G.superresolution}
    lp = losses.perceptual
    if isinstance(getattr(lp, "net", None), torch.nn.Module):
        comps["LPIPS backbone (VGG16)"] = lp.net  # type: ignore[union-attr]
    fwd: dict[str, float] = {}
    handles = []
    for name, mod in comps.items():
        start: dict[str, float] = {}
        handles.append(mod.register_forward_pre_hook(lambda *_a, s=start: s.__setitem__("t", time.perf_counter())))
        handles.append(mod.register_forward_hook(
            lambda *_a, s=start, n=name: fwd.__setitem__(n, fwd.get(n, 0.0) + time.perf_counter() - s["t"])))
    # functions timed as a whole (forward): the volume renderer, the mapping, the pseudo-label terms
    import sym3dinv.generator.triplane_generator as tg
    import sym3dinv.invert.stage1 as st1
    import sym3dinv.invert.stage2 as st2

    patched = [(tg, "render_planes", "volume rendering (total: planes+MLP+importance)"),
               (st1, "mean_w", "mapping (mean w)"),
               (st2, "warp_pseudo_loss", "warping + its LPIPS"), (st2, "mirror_pseudo_loss", "mirror branch (contextual)")]
    originals = [(mod, attr, getattr(mod, attr)) for mod, attr, _ in patched]

    def timed(fn, label):  # noqa: ANN001, ANN202
        def wrapper(*a, **k):  # noqa: ANN002, ANN003, ANN202
            t = time.perf_counter()
            out = fn(*a, **k)
            fwd[label] = fwd.get(label, 0.0) + time.perf_counter() - t
            return out
        return wrapper

    families = {"plane sampling (grid_sample)": ("grid_sampler",), "convolution": ("conv", "mkldnn"),
                "MLP / FC (addmm, mm, softplus)": ("addmm", "aten::mm", "softplus", "aten::bmm"),
                "importance sampling (sort/searchsorted/cumsum/gather)": ("sort", "searchsorted", "cumsum", "gather"),
                "resampling (upfirdn/interpolate/pool)": ("upsample", "pool", "interp", "pad"),
                "optimizer (adam)": ("adam", "_foreach"),
                "elementwise": ("mul", "add", "sub", "div", "exp", "sigmoid", "leaky", "pow", "sqrt", "sum", "mean")}
    out: dict = {}
    for (mod, attr, label), (_, _, fn) in zip(patched, originals, strict=True):
        setattr(mod, attr, timed(fn, label))
    try:
        for stage, steps in (("stage1", 2), ("stage2", 5)):
            small = replace(cfg, stage1=replace(cfg.stage1, steps=steps if stage == "stage1" else 1, w_avg_samples=200),
                            stage2=replace(cfg.stage2, steps=steps, lpips_threshold=0.0))
            s1 = run_stage1(G, x[:1], c[:1], small, losses, torch.Generator().manual_seed(0))
            fwd.clear()
            with profile(activities=[ProfilerActivity.CPU]) as prof:
                if stage == "stage1":
                    run_stage1(G, x[:1], c[:1], replace(small, stage1=replace(small.stage1, steps=1)), losses,
                               torch.Generator().manual_seed(0))
                else:  # 1 pseudo step (+ frozen depth render) of stage 2
                    run_stage2(G, x[:1], c[:1], s1.ws, {k: v[0] for k, v in s1.noise.items()},
                               replace(small, stage2=replace(small.stage2, steps=1)), losses, regions=FaceRegions())
            total = sum(e.self_cpu_time_total for e in prof.key_averages()) / 1e6
            fam: dict[str, float] = {}
            for e in prof.key_averages():
                key = e.key.lower()
                name = next((f for f, pats in families.items() if any(p in key for p in pats)), "other")
                fam[name] = fam.get(name, 0.0) + e.self_cpu_time_total / 1e6
            top = sorted(prof.key_averages(), key=lambda e: -e.self_cpu_time_total)[:12]
            out[stage] = {"profiled_total_self_cpu_s": round(total, 3),
                          "forward_wall_s_by_component": {k: round(v, 3) for k, v in fwd.items()},
                          "self_cpu_s_by_op_family": {k: round(v, 3) for k, v in sorted(fam.items(), key=lambda kv: -kv[1])},
                          "top_ops": [(e.key, round(e.self_cpu_time_total / 1e6, 3), e.count) for e in top]}
    finally:
        for mod, attr, fn in originals:
            setattr(mod, attr, fn)
        for h in handles:
            h.remove()
    return out


def profile_cuda(G: TriPlaneGenerator, x: torch.Tensor, c: torch.Tensor, cfg: InversionConfig,
                 losses: LossFunctions) -> dict:
    """Where GPU time goes: kernel time by op family and the top kernels over 4 stage-1 steps (batch of
    ``x``) and 8 stage-2 steps (2 of them pseudo-label steps), and the share of wall time the GPU was busy
    (a low share means the step is bound by Python / kernel launches, not by the GPU)."""
    from torch.profiler import ProfilerActivity, profile

    families = {"convolution (backbone, SR, LPIPS)": ("conv", "cudnn", "sm90_xmma", "implicit", "winograd", "fprop",
                                                      "dgrad", "wgrad"),
                "matmul / MLP": ("gemm", "cublas", "addmm", "aten::mm", "bmm", "cutlass"),
                "plane sampling (grid_sample)": ("grid_sampler",),
                "importance sampling (sort/searchsorted/cumsum)": ("sort", "searchsorted", "cumsum", "scan", "gather"),
                "optimizer (adam)": ("adam", "foreach", "multi_tensor"),
                "reductions": ("reduce", "sum", "mean", "norm"),
                "elementwise / copies": ("elementwise", "vectorized", "copy", "fill", "cat", "index")}
    out: dict = {}
    for stage in ("stage1", "stage2"):
        small = replace(cfg, stage1=replace(cfg.stage1, steps=4, w_avg_samples=200),
                        stage2=replace(cfg.stage2, steps=8, lpips_threshold=0.0))
        s1 = run_stage1(G, x, c, replace(small, stage1=replace(small.stage1, steps=1)), losses,
                        torch.Generator().manual_seed(0))
        _sync(x.device)
        with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
            t = time.perf_counter()
            if stage == "stage1":
                run_stage1(G, x, c, small, losses, torch.Generator().manual_seed(0))
            else:
                run_stage2(G, x[:1], c[:1], s1.ws[:1], {k: v[0] for k, v in s1.noise.items()}, small, losses,
                           regions=FaceRegions())
            _sync(x.device)
            wall = time.perf_counter() - t
        # kernels only: aten ops also report the device time of the kernels they launch
        events = [e for e in prof.key_averages()
                  if e.self_device_time_total > 0 and e.device_type == torch.autograd.DeviceType.CUDA]
        kernel_s = sum(e.self_device_time_total for e in events) / 1e6
        fam: dict[str, float] = {}
        for e in events:
            key = e.key.lower()
            name = next((f for f, pats in families.items() if any(p in key for p in pats)), "other")
            fam[name] = fam.get(name, 0.0) + e.self_device_time_total / 1e6
        top = sorted(events, key=lambda e: -e.self_device_time_total)[:15]
        launches = sum(e.count for e in events)
        out[stage] = {"steps": 4 if stage == "stage1" else 8, "wall_s_profiled": round(wall, 3),
                      "gpu_kernel_s": round(kernel_s, 3), "gpu_busy_share": round(kernel_s / wall, 3),
                      "kernel_launches": launches,
                      "kernel_s_by_family": {k: round(v, 4) for k, v in sorted(fam.items(), key=lambda kv: -kv[1])},
                      "top_kernels": [(e.key[:90], round(e.self_device_time_total / 1e6, 4), e.count) for e in top]}
    return out


def end_to_end(name: str, spec: str, args: argparse.Namespace) -> dict:
    """Whole inversions through :func:`sym3dinv.invert.invert_batch` (``PRESET:N``: N images, stage 1 in
    the preset's batches, stage 2 to its full step count: the LPIPS early stop is disabled, as with random
    weights it would never fire): measured seconds per image and peak memory, no projection."""
    from sym3dinv.invert import invert_batch

    dev = torch.device(args.device)
    G = _generator(name, dev)
    losses = default_losses("vgg", dev)
    pname, n = spec.split(":")
    x, c = _inputs(G, int(n))
    cfg = preset(pname)
    cfg = replace(cfg, stage2=replace(cfg.stage2, lpips_threshold=0.0))
    invert_batch(G, x[:1], c[:1], config=replace(cfg, stage1=replace(cfg.stage1, steps=2, w_avg_samples=100),
                                                 stage2=replace(cfg.stage2, steps=2)), losses=losses)  # warm-up
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    _sync(dev)
    t0, c0 = time.perf_counter(), time.process_time()
    results = invert_batch(G, x, c, config=cfg, losses=losses)
    _sync(dev)
    wall = time.perf_counter() - t0
    out = {"config": name, "preset": pname, "images": int(n), "steps": [cfg.stage1.steps, cfg.stage2.steps],
           "stage1_batch": cfg.stage1.batch_size, "wall_s": round(wall, 1), "seconds_per_image": round(wall / int(n), 1),
           "process_cpu_s": round(time.process_time() - c0, 1),
           "stage2_steps_run": [r.stage2_steps for r in results],
           "mean_timings_s": {k: round(statistics.fmean(r.timings[k] for r in results), 1) for k in results[0].timings}}
    if dev.type == "cuda":
        out["gpu_peak_gib"] = round(torch.cuda.max_memory_allocated(dev) / 2**30, 2)
    log.info("end-to-end %s %s: %s", name, spec, out)
    return out


def bench_config(name: str, args: argparse.Namespace) -> dict:
    dev = torch.device(args.device)
    G = _generator(name, dev)
    losses = default_losses("vgg", dev)
    # stage-1 images per batch: the preset's batch on a GPU (a batch fills the device), 2 / 1 on one CPU core
    n_img = args.stage1_batch or (preset("paper").stage1.batch_size if dev.type == "cuda" else 2 if name == "default" else 1)
    x, c = _inputs(G, n_img)
    if args.variants:
        variants = args.variants.split(",")
    elif dev.type == "cuda":
        variants = list(CUDA_VARIANTS)
    else:
        variants = list(CPU_VARIANTS) if name == "default" else ["all_on", "all_off"]
    # step cost depends on the LPIPS resolutions: measure each distinct set once (per variant)
    groups: dict[tuple[int, int], list[str]] = {}
    for p in PRESETS:
        cfg = preset(p)
        key = (min(cfg.stage1.lpips_resolution, G.img_resolution), min(cfg.stage2.lpips_resolution, G.img_resolution))
        groups.setdefault(key, []).append(p)
    if name == "full" and not args.full_all_presets:
        groups = {k: v for k, v in groups.items() if "paper" in v or "balanced" in v}
    # the generator dominates at 512 px and the LPIPS size is the only difference between the groups:
    # the switch variants run on the first group (paper's), the others all-on only
    log.info("%s: %d px, LPIPS resolution groups %s", name, G.img_resolution, groups)
    map_1000 = mapping_seconds_per_1000(G, c)
    runs: dict[str, dict[str, list[dict[str, float]]]] = {}
    for rep in range(args.repeats):
        for key, names in groups.items():
            base = preset(names[0])
            for v in variants if key == next(iter(groups)) else ["all_on"]:
                perf, batched, with_stage2 = VARIANTS[v]
                cfg = replace(base, perf=perf)
                t = time.perf_counter()
                m = measure(G, x, c, cfg, losses, n_img if batched else 1, args.steps1,
                            args.steps2 if with_stage2 else 0)
                log.info("%s rep %d %s %s: %.1f s %s", name, rep, names, v, time.perf_counter() - t,
                         {k: round(val, 3) for k, val in m.items()})
                runs.setdefault("+".join(names), {}).setdefault(v, []).append(m)
    cuda = dev.type == "cuda"
    # ratios: CPU seconds of this process on CPU (robust to other load), wall seconds on a GPU
    ratio_keys = (("stage1_step_per_image_s", "stage2_step_s", "stage2_plain_step_s", "stage2_pseudo_step_s") if cuda
                  else ("stage1_step_per_image_cpu_s", "stage2_step_cpu_s", "stage2_plain_step_cpu_s",
                        "stage2_pseudo_step_cpu_s"))
    result: dict = {"resolution": G.img_resolution, "stage1_batch": n_img, "mapping_s_per_1000_w": round(map_1000, 3),
                    "measured_steps": {"stage1": args.steps1, "stage2": args.steps2}, "groups": {}, "presets": {}}
    for gname, by_var in runs.items():
        med = {v: {k: statistics.median(m[k] for m in ms) for k in ms[0]} for v, ms in by_var.items()}
        order = list(VARIANTS)
        med = dict(sorted(med.items(), key=lambda kv: order.index(kv[0])))
        g: dict = {"variants": {v: {k: round(val, 4) for k, val in m.items()} for v, m in med.items()}}
        on = med["all_on"]
        ratios = {}
        for v, m in med.items():
            if v == "all_on":
                continue
            ratios[v] = {k: round(m[k] / on[k], 3) for k in ratio_keys if k in m and on.get(k, 0) > 0}
        if ratios:
            g["off_over_on_ratios"] = ratios
        result["groups"][gname] = g
        for p in gname.split("+"):
            cfg = preset(p)
            entry = {"stage1_step_s": round(on["stage1_step_s"], 3), "stage1_step_per_image_s": round(on["stage1_step_per_image_s"], 3),
                     "stage2_step_s": round(on["stage2_step_s"], 3),
                     "stage1_step_per_image_cpu_s": round(on["stage1_step_per_image_cpu_s"], 3),
                     "stage2_step_cpu_s": round(on["stage2_step_cpu_s"], 3), "steps": [cfg.stage1.steps, cfg.stage2.steps],
                     **per_image(on, cfg, map_1000, n_img)}
            if "all_off" in med:
                off = per_image(med["all_off"], cfg, map_1000, 1)
                entry["seconds_per_image_all_off"] = off["seconds_per_image"]
                entry["seconds_per_image_all_off_from_cpu_time"] = off["seconds_per_image_from_cpu_time"]
                entry["speedup_all_on_vs_off_cpu_time"] = round(
                    off["seconds_per_image_from_cpu_time"] / entry["seconds_per_image_from_cpu_time"], 2)
                entry["speedup_all_on_vs_off_wall"] = round(off["seconds_per_image"] / entry["seconds_per_image"], 2)
            if cuda:
                entry["gpu_peak_gib"] = round(max(on.get("stage1_gpu_peak_gib", 0), on.get("stage2_gpu_peak_gib", 0)), 2)
            result["presets"][p] = entry
    if args.profile and cuda:
        result["profile"] = profile_cuda(G, x, c, preset("paper"), losses)
    elif args.profile and name == "default":
        result["profile"] = profile_step(G, x, c, preset("cpu"), losses)
    result["peak_rss_mib_after"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return result


def _vm_hwm_mib(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            return next(int(line.split()[1]) / 1024 for line in f if line.startswith("VmHWM"))
    except (OSError, StopIteration):
        return None


def bench_actors(args: argparse.Namespace) -> dict:
    """Images/hour through the bulk flow's ActorPool (Ray, local) with 1 and 2 actors on this machine."""
    import ray

    from sym3dinv.pipeline import InputItem, PipelineConfig, list_inputs
    from sym3dinv.store import RunStore
    from tasks.actors import ActorPool, PoolSpec

    demo = [it for it in list_inputs(str(REPO / "sym3dinv" / "assets" / "demo" / "dataset.json"))]
    items = [InputItem(id=hashlib.md5(f"{demo[i % len(demo)].id}-{i}".encode()).hexdigest(),  # store ids: 32 hex
                       uri=demo[i % len(demo)].uri,
                       size=demo[i % len(demo)].size, camera=demo[i % len(demo)].camera)
             for i in range(args.actor_images)]
    s1, s2 = (int(v) for v in args.actor_steps.split(","))
    overrides: tuple = (("stage1.steps", s1), ("stage2.steps", s2)) if s1 >= 0 else ()
    config = PipelineConfig(generator="synthheads", preset=args.actor_preset, overrides=overrides)
    cores = os.cpu_count() or 1
    ray.init(num_cpus=cores, include_dashboard=False, log_to_driver=False)
    out: dict = {"preset": args.actor_preset, "steps": [s1, s2] if s1 >= 0 else "preset", "images": len(items),
                 "cores": cores, "runs": {}}
    try:
        runs = [(int(n), int(k)) for n in args.actors.split(",") for k in args.actor_items_per_call.split(",")]
        for n, k in runs:
            cpus = args.actor_cpus or cores / n  # Ray CPUs per actor = its torch threads
            spec = PoolSpec(num_actors=n, num_cpus=cpus, in_flight_per_actor=2, max_attempts=1, items_per_call=k)
            t0 = time.perf_counter()
            pool = ActorPool(config, spec)
            infos = ray.get([a.info.remote() for a in pool.actors])
            startup = time.perf_counter() - t0
            with tempfile.TemporaryDirectory() as tmp:
                t1 = time.perf_counter()
                rows = pool.run(items, RunStore(str(Path(tmp) / "store")))
                wall = time.perf_counter() - t1
            hwm = [_vm_hwm_mib(i["pid"]) for i in infos]
            pool.shutdown()
            done = [r for r in rows if str(r.status).lower().endswith("done")]
            stage = {k: round(statistics.fmean(r.stage_seconds.get(k, 0.0) for r in done), 3)
                     for k in ("decode", "invert_stage1", "invert_stage2", "render", "total")} if done else {}
            key = str(n) if k == 1 else f"{n}:per_call{k}"
            out["runs"][key] = {"actors": n, "items_per_call": k, "threads_per_actor": max(1, int(cpus)),
                                "startup_s": round(startup, 1),
                                   "wall_s": round(wall, 1), "done": len(done),
                                   "images_per_hour": round(3600 * len(done) / wall, 1) if wall > 0 else None,
                                   "mean_stage_seconds_per_item": stage, "actor_peak_rss_mib": hwm}
            log.info("actors=%d items/call=%d: %s", n, k, out["runs"][key])
    finally:
        ray.shutdown()
    if "1" in out["runs"] and "2" in out["runs"]:
        a, b = out["runs"]["1"]["images_per_hour"], out["runs"]["2"]["images_per_hour"]
        out["scaling_2_over_1"] = round(b / a, 2) if a and b else None
    for r in list(out["runs"].values()):  # shared stage-1 batches vs one item per call, same actor count
        single = out["runs"].get(str(r["actors"]))
        if r["items_per_call"] > 1 and single and single["images_per_hour"] and r["images_per_hour"]:
            out[f"per_call{r['items_per_call']}_over_1_with_{r['actors']}_actors"] = round(
                r["images_per_hour"] / single["images_per_hour"], 2)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--configs", default="default", help="comma list of default,full,synthheads-v1,synthheads-v2,file:PATH (or none)")
    ap.add_argument("--device", default="cpu", help="cpu or cuda[:i]")
    ap.add_argument("--variants", default="", help=f"comma list of {list(VARIANTS)}; default: per device "
                    f"(CPU default config: {','.join(CPU_VARIANTS)}; full: all_on,all_off; CUDA: {','.join(CUDA_VARIANTS)})")
    ap.add_argument("--stage1-batch", type=int, default=0, help="images per stage-1 batch (0: 4 on CUDA, 2/1 on CPU)")
    ap.add_argument("--steps1", type=int, default=3, help="measured stage-1 steps per variant (first = warm-up)")
    ap.add_argument("--steps2", type=int, default=5, help="measured stage-2 steps (0 and 4 pseudo, 1-3 plain)")
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--end-to-end", default="", help="comma list of CONFIG/PRESET:N (e.g. full/paper:1): whole "
                    "inversions of N images, measured")
    ap.add_argument("--profile", action="store_true", help="torch.profiler breakdown of a step (default config)")
    ap.add_argument("--full-all-presets", action="store_true", help="full config: also the cpu preset's LPIPS size")
    ap.add_argument("--actors", default="1,2", help="actor counts for images/hour ('0' = skip)")
    ap.add_argument("--actor-images", type=int, default=4)
    ap.add_argument("--actor-preset", default="cpu")
    ap.add_argument("--actor-items-per-call", default="1",
                    help="comma list of items per actor call (shared stage-1 batches), e.g. 1,2")
    ap.add_argument("--actor-cpus", type=float, default=0, help="Ray CPUs (= torch threads) per actor; 0 = cores / actors")
    ap.add_argument("--actor-steps", default="10,8", help="stage-1,stage-2 steps per item ('-1,-1' = the preset's)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    sys.path.insert(0, str(REPO))  # tasks/ for the actor pool
    load_before = os.getloadavg()
    dev = torch.device(args.device)
    report: dict = {"benchmark": "throughput", "device": device_name(dev), "cpu": cpu_name(), "cores": os.cpu_count(),
                    "threads": args.threads, "torch": torch.__version__,
                    "load_avg_1_5_15_before": [round(v, 2) for v in load_before], "configs": {},
                    "command": "python benchmarks/throughput.py " + " ".join(sys.argv[1:])}
    t0 = time.perf_counter()
    for name in [c for c in args.configs.split(",") if c and c != "none"]:
        report["configs"][name] = bench_config(name, args)
    for spec in [s for s in args.end_to_end.split(",") if s]:
        cfg_name, _, rest = spec.partition("/")
        report.setdefault("end_to_end", []).append(end_to_end(cfg_name, rest, args))
    if args.actors not in ("", "0"):
        report["actors"] = bench_actors(args)
    report["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    report["load_avg_1_5_15_after"] = [round(v, 2) for v in os.getloadavg()]
    report["wall_s"] = round(time.perf_counter() - t0, 1)
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
