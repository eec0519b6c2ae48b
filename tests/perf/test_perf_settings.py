"""Which speed settings get chosen for which device (sym3dinv.perf.resolve), TF32 state handling,
compile-with-fallback, and the presets' speed/quality ordering. No GPU needed: the CUDA branches are
decided from the device type and an explicit bf16 capability."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from sym3dinv.config import InversionConfig, replace_path
from sym3dinv.config.invert import PerformanceConfig
from sym3dinv.config.presets import PRESETS, preset
from sym3dinv.errors import ConfigError
from sym3dinv.perf import ResolvedPerf, autocast, compile_with_fallback, device_settings, resolve


def test_cpu_auto_settings() -> None:
    r = resolve(PerformanceConfig(), "cpu")
    assert r == ResolvedPerf(device_type="cpu", cache_target_features=True, share_planes=True, fused_modconv=False, channels_last=False,
                             precision="fp32", tf32=False, compile=False, inference_mode=True,
                             views_per_pass=2, cuda_graphs=False)
    assert r.autocast_dtype is None


def test_cpu_never_gets_mixed_precision_or_tf32() -> None:
    r = resolve(PerformanceConfig(autocast="bf16", tf32="on"), "cpu")
    assert r.precision == "fp32" and r.tf32 is False


def test_cuda_auto_settings_by_bf16_capability() -> None:
    ampere = resolve(PerformanceConfig(), "cuda:0", bf16_supported=True)
    assert (ampere.precision, ampere.tf32, ampere.channels_last, ampere.fused_modconv) == ("bf16", True, True, None)
    assert ampere.autocast_dtype == torch.bfloat16
    assert ampere.views_per_pass == 0  # a GPU renders all six cameras of a pseudo step in one pass
    assert not ampere.cuda_graphs  # opt-in until verified on a GPU
    assert resolve(PerformanceConfig(cuda_graphs="auto"), "cuda").cuda_graphs
    assert not resolve(PerformanceConfig(cuda_graphs="on"), "cpu").cuda_graphs
    older = resolve(PerformanceConfig(), "cuda", bf16_supported=False)
    assert older.precision == "fp32" and older.tf32 is True  # the flag is harmless where TF32 does not exist


def test_explicit_switches_override_auto() -> None:
    r = resolve(PerformanceConfig(autocast="fp16", tf32="off", channels_last="off", unfused_modconv="on",
                                  compile="on", cache_target_features=False, inference_mode=False),
                "cuda", bf16_supported=True)
    assert (r.precision, r.tf32, r.channels_last, r.fused_modconv, r.compile) == ("fp16", False, False, False, True)
    assert not r.cache_target_features and not r.inference_mode
    off = resolve(PerformanceConfig(autocast="off"), "cuda", bf16_supported=True)
    assert off.precision == "fp32"
    assert resolve(PerformanceConfig(views_per_pass=3), "cuda").views_per_pass == 3
    assert resolve(PerformanceConfig(views_per_pass=0), "cpu").views_per_pass == 0
    with pytest.raises(ConfigError, match="views_per_pass"):
        InversionConfig(perf=PerformanceConfig(views_per_pass=-2))
    fused_cpu = resolve(PerformanceConfig(unfused_modconv="off", channels_last="on"), "cpu")
    assert fused_cpu.fused_modconv is None and fused_cpu.channels_last


def test_device_settings_sets_and_restores_tf32() -> None:
    before = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    cuda = dataclasses.replace(resolve(PerformanceConfig(), "cpu"), device_type="cuda", tf32=True)
    with device_settings(cuda):
        assert torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32
    assert (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32) == before


def test_autocast_is_a_no_op_on_cpu() -> None:
    x = torch.ones(2, 2)
    with autocast(resolve(PerformanceConfig(autocast="bf16"), "cpu")):
        assert (x @ x).dtype == torch.float32


def test_compile_with_fallback_runs_eagerly_when_compilation_fails() -> None:
    def fn(x: torch.Tensor) -> torch.Tensor:
        return torch.sin(x) * 2

    def broken_backend(gm, example_inputs):  # noqa: ANN001, ANN202 - torch.compile backend signature
        raise RuntimeError("no compiler here")

    assert compile_with_fallback(fn, enabled=False) is fn
    wrapped = compile_with_fallback(fn, enabled=True, name="sin", backend=broken_backend)
    x = torch.linspace(0, 1, 5)
    torch.testing.assert_close(wrapped(x), fn(x), rtol=0, atol=0)
    assert wrapped.compiled_failed()  # type: ignore[attr-defined]
    torch.testing.assert_close(wrapped(x + 1), fn(x + 1), rtol=0, atol=0)  # stays eager afterwards


def test_perf_switches_validate_and_override_by_path() -> None:
    with pytest.raises(ConfigError, match="perf.channels_last"):
        InversionConfig(perf=PerformanceConfig(channels_last="yes"))  # type: ignore[arg-type]
    cfg = replace_path(InversionConfig(), "perf.cache_target_features", "false")
    assert cfg.perf.cache_target_features is False
    with pytest.raises(ConfigError):
        replace_path(InversionConfig(), "perf.autocast", "int8")


def test_presets_trade_steps_for_time_in_order() -> None:
    order = ["paper", "balanced", "fast", "cpu", "smoke"]
    assert set(order) <= set(PRESETS)
    assert PRESETS["paper"] == InversionConfig()  # METHOD.md's numbers stay the paper preset
    steps = [preset(p).stage1.steps + preset(p).stage2.steps for p in order]
    assert steps == sorted(steps, reverse=True) and len(set(steps)) == len(steps)
    for p in ("balanced", "fast"):  # only cost knobs differ from the paper: the method's weights are kept
        c = preset(p)
        assert c.stage2.pseudo_every == 4 and c.stage2.warp_weight == 0.1 and c.stage1.lr == 0.01
        assert c.stage2.lpips_resolution == 256 and c.mode == "spi"
