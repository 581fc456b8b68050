"""clvkit runs where numba finds no writable cache folder (issue 12, item 6)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import textwrap
import warnings
from pathlib import Path

import numba
import pytest

import clvkit
from clvkit.errors import ClvkitWarning
from clvkit.utils import numba_cache as _numba_cache

SRC = str(Path(clvkit.__file__).resolve().parents[1])


def _key(fn) -> str:
    return f"{fn.__module__}.{fn.__qualname__}"


@pytest.fixture
def no_numba_folder(monkeypatch):
    """numba's own locators find no folder: only NUMBA_CACHE_DIR is consulted, and it is unset
    (what a read-only install with an unwritable home looks like to numba)."""
    monkeypatch.setattr(numba.config, "CACHE_LOCATOR_CLASSES", "UserProvidedCacheLocator")
    monkeypatch.setattr(numba.config, "CACHE_DIR", "")
    with pytest.raises(RuntimeError, match="no locator available"):
        numba.njit(cache=True)(lambda x: x)  # plain numba fails here


def test_kernel_without_numba_folder_is_cached_in_a_private_temporary_folder(no_numba_folder):
    def plus_one(x):
        return x + 1

    with warnings.catch_warnings():
        warnings.simplefilter("error", ClvkitWarning)
        kernel = _numba_cache.njit(nogil=True)(plus_one)
    assert kernel(41) == 42
    assert _numba_cache.cache_folders()[_key(plus_one)] == "temporary"
    assert numba.config.CACHE_DIR == ""  # the caller's setting is back
    folder = Path(kernel.stats.cache_path)
    assert folder.is_relative_to(tempfile.gettempdir())
    assert folder.parent.name.startswith("clvkit-numba-cache-")
    assert oct(folder.parent.stat().st_mode & 0o777) == "0o700"
    assert any(p.suffix == ".nbi" for p in folder.iterdir())  # the index numba wrote


def test_without_any_folder_kernels_compile_uncached_with_one_warning(no_numba_folder, monkeypatch):
    def no_temp(*args, **kwargs):
        raise OSError("read-only file system")

    monkeypatch.setattr(tempfile, "mkdtemp", no_temp)
    monkeypatch.setattr(_numba_cache, "_temporary", [])
    monkeypatch.setattr(_numba_cache, "_state", {"temporary_failed": False, "warned": False})

    def double(x):
        return 2 * x

    def triple(x):
        return 3 * x

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        k2 = _numba_cache.njit()(double)
        k3 = _numba_cache.njit()(triple)
    assert (k2(21), k3(14)) == (42, 42)
    msgs = [str(w.message) for w in caught if issubclass(w.category, ClvkitWarning)]
    assert len(msgs) == 1
    assert "compiled without a cache" in msgs[0] and "NUMBA_CACHE_DIR" in msgs[0]
    assert _numba_cache.cache_folders()[_key(double)] == "none"
    assert _numba_cache.cache_folders()[_key(triple)] == "none"


def test_numba_cache_dir_is_honoured(monkeypatch, tmp_path):
    monkeypatch.setattr(numba.config, "CACHE_DIR", str(tmp_path))

    def minus_one(x):
        return x - 1

    kernel = _numba_cache.njit()(minus_one)
    assert kernel(43) == 42
    assert _numba_cache.cache_folders()[_key(minus_one)] == "numba"
    assert Path(kernel.stats.cache_path).is_relative_to(tmp_path)


def test_every_kernel_goes_through_the_cache_module():
    offenders = [
        str(p.relative_to(SRC))
        for p in Path(SRC, "clvkit").rglob("*.py")
        if p.name != "numba_cache.py" and "cache=True" in p.read_text(encoding="utf-8")
    ]
    assert offenders == []


_CHILD = textwrap.dedent(
    """
    import json, os, warnings
    import clvkit
    from clvkit.utils import numba_cache as _numba_cache


    def run():
        sim = clvkit.datasets.simulate(
            300, r=0.5, alpha=5.0, a=0.8, b=2.5, p=6.0, q=4.0, v=15.0, random_seed=5
        )
        rfm = sim.rfm()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            bg = clvkit.BetaGeo().fit(rfm, method="mle")
            gg = clvkit.GammaGamma().fit(rfm, method="mle")
            nuts = clvkit.BetaGeo().fit(rfm, chains=1, draws=20, tune=20, random_seed=1,
                                        progressbar=False)
        res = clvkit.customer_value(bg, gg, rfm, horizon=26, annual_discount_rate=0.1,
                                    n_jobs=1)
        folders = _numba_cache.cache_folders()
        return {
            "uid": os.getuid(),
            "bg": [float(bg.posterior_[n].item()) for n in ("r", "alpha", "a", "b")],
            "nuts_r": nuts.posterior_["r"].values.ravel().tolist(),
            "equity": float(res.equity.item()),
            "where": sorted(set(folders.values())),
            "n_kernels": len(folders),
            "temporary": list(_numba_cache._temporary),
            "tree_writable": any(
                os.access(os.path.join(d, sub), os.W_OK)
                for d in (os.path.dirname(clvkit.__file__),
                          os.path.dirname(clvkit.models.__file__))
                for sub in ("", "__pycache__")
            ),
        }


    if __name__ == "__main__":
        print(json.dumps(run()))
    """
)


@pytest.mark.slow
def test_fit_and_value_run_as_unprivileged_user_without_writable_cache(unprivileged_command):
    env = {
        "HOME": "/nonexistent",
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": SRC,
        "MPLBACKEND": "Agg",
    }
    out = subprocess.run(
        [*unprivileged_command, sys.executable, "-c", _CHILD],
        env=env,
        capture_output=True,
        text=True,
        cwd="/",
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["uid"] == 65534
    if got["tree_writable"]:  # a checkout anyone may write to: numba's in-tree folder is fine
        assert set(got["where"]) <= {"numba", "temporary"}
    else:  # every kernel in the temporary folder: none uncached, none in the install
        assert got["where"] == ["temporary"]
    assert got["n_kernels"] >= 20
    assert len(got["nuts_r"]) == 20
    assert not os.path.exists(got["temporary"][0])  # removed at exit
    # the same numbers as in this (root) process, whose kernels are cached as usual
    ns: dict = {"__name__": "child"}
    exec(_CHILD, ns)
    want = ns["run"]()
    assert got["bg"] == pytest.approx(want["bg"], rel=1e-12)
    assert got["nuts_r"] == pytest.approx(want["nuts_r"], rel=1e-12)
    assert got["equity"] == pytest.approx(want["equity"], rel=1e-12)
    assert got["equity"] > 0
