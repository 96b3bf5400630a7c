"""Where models run: mixed precision on the CPU only where a training loop opts in and the CPU
multiplies bfloat16 in hardware."""

import torch

from mlworker.ml import device as D


def _dtype_under(ctx) -> torch.dtype:
    with ctx:
        return (torch.ones(4, 4) @ torch.ones(4, 4)).dtype


def test_cpu_stays_float32_unless_a_loop_opts_in():
    cpu = torch.device("cpu")
    assert _dtype_under(D.autocast(cpu)) == torch.float32


def test_opting_in_follows_the_hardware_and_the_switch(monkeypatch):
    cpu = torch.device("cpu")
    expected = torch.bfloat16 if D.cpu_has_native_bf16() else torch.float32
    assert _dtype_under(D.autocast(cpu, cpu_bf16=True)) == expected
    monkeypatch.setenv("GALAXYLAB_CPU_BF16", "0")
    assert not D.cpu_has_native_bf16()
    assert _dtype_under(D.autocast(cpu, cpu_bf16=True)) == torch.float32


def test_native_bf16_is_read_from_the_cpu_flags(monkeypatch, tmp_path):
    fake = tmp_path / "cpuinfo"
    fake.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f\n")
    real_open = open

    def fake_open(path, *args, **kwargs):
        if path == "/proc/cpuinfo":
            return real_open(fake, *args, **kwargs)
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr("builtins.open", fake_open)
    D._cpu_flags.cache_clear()  # read once per process: read the fake file
    assert not D.cpu_has_native_bf16()  # AVX-512 without BF16: emulated, so not used
    fake.write_text("processor\t: 0\nflags\t\t: fpu avx512f avx512_bf16 amx_bf16\n")
    D._cpu_flags.cache_clear()
    assert D.cpu_has_native_bf16() == torch.ops.mkldnn._is_mkldnn_bf16_supported()
    D._cpu_flags.cache_clear()  # the real flags again for later tests
