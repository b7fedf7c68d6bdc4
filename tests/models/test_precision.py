"""models.precision: what precision=auto picks for a machine, and where it reads the facts."""

from __future__ import annotations

from pathlib import Path

import pytest

from models.precision import choose_precision, cpu_flags, resolve_precision

AVX2 = {"fpu", "sse4_2", "avx", "avx2", "fma"}


@pytest.mark.parametrize(
    ("gpus", "flags", "expected"),
    [
        ([], AVX2, "float32"),  # an x86 CPU without bfloat16 instructions (this CI machine)
        ([], AVX2 | {"avx512f", "avx512_bf16"}, "mixed_bfloat16"),  # Cooper Lake, Zen 4
        ([], AVX2 | {"amx_tile", "amx_bf16"}, "mixed_bfloat16"),  # Sapphire Rapids
        ([], AVX2 | {"avx512f"}, "float32"),  # AVX-512 alone emulates bfloat16: no gain
        ([], set(), "float32"),  # no /proc/cpuinfo (macOS) or an ARM CPU
        ([(9, 0)], AVX2, "mixed_bfloat16"),  # H100: bfloat16 tensor cores, no loss scaling
        ([(8, 0)], AVX2, "mixed_bfloat16"),  # A100
        ([(7, 0)], AVX2, "mixed_float16"),  # V100: the first tensor cores, float16 only
        ([(7, 5)], AVX2, "mixed_float16"),  # T4
        ([(8, 0), (7, 5)], AVX2, "mixed_float16"),  # a mixed node: the older card decides
        ([(6, 1)], AVX2, "float32"),  # P100/GTX 10xx: no float16 tensor cores
        ([(8, 6), (6, 1)], AVX2, "float32"),  # a mixed node: the old card decides
        ([(7, 5)], AVX2 | {"amx_bf16"}, "mixed_float16"),  # a GPU trains, not the CPU
    ],
)
def test_auto_picks_by_gpu_capability_then_cpu_flags(gpus, flags, expected) -> None:
    assert choose_precision(gpu_capabilities=gpus, cpu_flags=flags) == expected


def test_cpu_flags_are_read_from_a_cpuinfo_file(tmp_path: Path) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(
        "processor\t: 0\nmodel name\t: Some CPU\nflags\t\t: fpu avx2 avx512_bf16 amx_bf16\n\n"
        "processor\t: 1\nflags\t\t: fpu avx2 avx512_bf16 amx_bf16\n"
    )
    assert cpu_flags(cpuinfo) == {"fpu", "avx2", "avx512_bf16", "amx_bf16"}
    assert cpu_flags(tmp_path / "missing") == frozenset()


def test_resolve_keeps_an_explicit_policy_and_names_a_bad_one() -> None:
    assert resolve_precision("mixed_bfloat16") == "mixed_bfloat16"
    assert resolve_precision("float32") == "float32"
    with pytest.raises(ValueError, match="precision 'bf16' is not one of auto, float32"):
        resolve_precision("bf16")


def test_auto_on_this_machine_agrees_with_its_own_facts() -> None:
    from models.precision import gpu_capabilities

    expected = choose_precision(gpu_capabilities=gpu_capabilities(), cpu_flags=cpu_flags())
    assert resolve_precision("auto") == expected
    if not gpu_capabilities() and not ({"avx512_bf16", "amx_bf16"} & cpu_flags()):
        assert expected == "float32"
