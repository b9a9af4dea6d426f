"""The kernel dispatcher: forcing a backend, fallbacks that warn, and what BACKENDS reports."""
from __future__ import annotations

import subprocess
import sys

import pytest

from vasr.kernels import dispatch


def _run(code: str, **env) -> subprocess.CompletedProcess:
    import os
    return subprocess.run([sys.executable, "-W", "always", "-c", code], capture_output=True, text=True,
                          env={**os.environ, **env}, timeout=120)


def test_every_kernel_has_its_reference():
    for kernel in dispatch.KERNELS:
        assert "python" in dispatch.available(kernel)
        assert dispatch.load(kernel, "python").__name__ == f"vasr.kernels.{kernel}_py"


def test_backends_export_the_reference_names():
    for kernel in dispatch.KERNELS:
        names = dispatch.load(kernel, "python").__all__
        for backend in dispatch.available(kernel):
            module = dispatch.load(kernel, backend)
            missing = [n for n in names if not hasattr(module, n)]
            assert missing == [], (kernel, backend)


def test_public_names_resolve_lazily():
    import vasr.kernels as k

    table = k._EXPORTS
    for name, kernel in table.items():
        assert name in dispatch.load(kernel, "python").__all__, name
    for kernel in dispatch.KERNELS:
        assert set(dispatch.load(kernel, "python").__all__) <= set(table), kernel


def test_unknown_names_are_errors():
    with pytest.raises(ValueError, match="unknown kernel"):
        dispatch.load("fft")
    with pytest.raises(ValueError, match="unknown kernel backend"):
        dispatch.load("fbank", "fortran")
    with pytest.raises(AttributeError):
        import vasr.kernels
        vasr.kernels.no_such_thing  # noqa: B018


def test_forcing_python_gives_references_without_warning():
    out = _run("import vasr.kernels as k; print(sorted(set(k.BACKENDS.values())))", VASR_KERNELS="python")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "['python']"
    assert "RuntimeWarning" not in out.stderr


def test_bad_forced_value_is_a_clear_error():
    out = _run("import vasr.kernels as k; k.BACKENDS", VASR_KERNELS="gpu")
    assert out.returncode != 0 and "VASR_KERNELS='gpu'" in out.stderr


def test_forcing_a_missing_backend_warns_and_falls_back():
    # the compiled fbank module made unimportable, as on a machine where it was never built
    out = _run("import sys; sys.modules['vasr.kernels.fbank_cy'] = None; import vasr.kernels as k; "
               "print(k.BACKENDS['fbank'])", VASR_KERNELS="cython")
    assert out.returncode == 0, out.stderr
    assert "kernel 'fbank' has no cython backend here" in out.stderr
    assert out.stdout.strip() == ("numba" if "numba" in dispatch.available("fbank") else "python")


def test_without_cython_numba_is_next_and_without_both_python_warns():
    pytest.importorskip("numba")
    no_cy = "import sys; sys.modules['vasr.kernels.ctc_cy'] = None; "
    out = _run(no_cy + "import vasr.kernels as k; print(k.BACKENDS['ctc'])")
    assert out.returncode == 0 and out.stdout.strip() == "numba", out.stderr
    assert "RuntimeWarning" not in out.stderr
    out = _run(no_cy + "sys.modules['vasr.kernels.ctc_nb'] = None; import vasr.kernels as k; print(k.BACKENDS['ctc'])")
    assert out.returncode == 0 and out.stdout.strip() == "python", out.stderr
    assert "pip install vasr[numba]" in out.stderr


def test_the_compiled_backend_loads_no_numba():
    """With the Cython build present, choosing the kernels never imports numba (cold start)."""
    if dispatch.available("fbank")[0] != "cython":
        pytest.skip("needs the Cython build")
    out = _run("import sys, vasr.kernels as k; k.BACKENDS; import vasr.runtime.recognizer; "
               "print('numba' in sys.modules)", VASR_KERNELS="")
    assert out.returncode == 0 and out.stdout.strip() == "False", out.stderr
