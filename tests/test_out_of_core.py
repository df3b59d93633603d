"""An out-of-core fit: X on disk, several times larger than the memory the fitting process
may use, fitted on a dask array read chunk by chunk.

The parent writes X as .npy chunk files and fits the same data in memory (numpy, the
reference). A child process builds a dask array whose tasks ``np.load`` one chunk each
(no memory map: a mapping would count against the limit at the size of the file), warms
up (imports, scheduler threads, a small fit), measures its address space, and caps it
with ``RLIMIT_AS`` at that baseline plus a budget at most a quarter of X's size. The fit
must succeed under the cap and give the in-memory solution; gathering X under the same
cap must fail (the control that shows the cap binds).
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import QUICK

import fgsm_cvx as fc

pytest.importorskip("dask.array")
resource = pytest.importorskip("resource")

MB = 2**20

CHILD = r"""
import json, resource, sys

import dask
import dask.array as da
import numpy as np

import fgsm_cvx as fc

folder, n_chunks, rows, d, budget = sys.argv[1], *map(int, sys.argv[2:6])
dask.config.set(scheduler="threads", num_workers=1)  # one chunk in flight at a time


def vm_size():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmSize"))


def chunks(k):  # one task per chunk file: np.load reads it into a fresh array
    load = dask.delayed(np.load, pure=True)
    return da.concatenate([da.from_delayed(load(f"{folder}/X{i}.npy"), shape=(rows, d),
                                           dtype=np.float64) for i in range(k)])


y = np.load(f"{folder}/y.npy")
# warm up: the same code paths on two chunks (imports, scheduler threads, malloc arenas);
# eps beyond eps_max makes it quick (beta = 0 from the first step)
small = fc.AdversarialProblem(chunks(2), y[:2 * rows], family="gaussian", eps=10.0)
fc.solve(small, backend="fast")
baseline = vm_size()
resource.setrlimit(resource.RLIMIT_AS, (baseline + budget, resource.RLIM_INFINITY))

X = chunks(n_chunks)
prob = fc.AdversarialProblem(X, y, family="gaussian", eps=0.05)
res = fc.solve(prob, backend="fast")
try:  # the control: X itself does not fit under the cap
    X.compute()
    gathered = True
except MemoryError:
    gathered = False
print(json.dumps({"coef": res.coef.tolist(), "intercept": res.intercept,
                  "objective": res.objective, "engine": res.engine, "n_iter": res.n_iter,
                  "baseline": baseline, "peak": vm_size(), "gathered": gathered}))
"""


@pytest.mark.slow
@pytest.mark.skipif(not os.path.exists("/proc/self/status"),
                    reason="reads the address space from /proc (Linux)")
def test_out_of_core_fit_under_a_memory_cap(tmp_path):
    budget = (32 if QUICK else 256) * MB
    d, rows = 200, 5000  # 8 MB per chunk
    n_chunks = int(np.ceil(4.25 * budget / (rows * d * 8)))  # X is > 4 budgets
    rng = np.random.default_rng(0)
    beta = np.zeros(d)
    beta[:10] = np.linspace(-1.0, 1.0, 10)
    blocks = []
    for i in range(n_chunks):
        block = rng.standard_normal((rows, d))
        np.save(tmp_path / f"X{i}.npy", block)
        blocks.append(block)
    X = np.concatenate(blocks)
    del blocks
    y = X @ beta + rng.standard_normal(X.shape[0])
    np.save(tmp_path / "y.npy", y)
    assert X.nbytes >= 4 * budget
    ref = fc.solve(fc.AdversarialProblem(X, y, family="gaussian", eps=0.05), backend="fast")
    del X

    (tmp_path / "child.py").write_text(CHILD)
    env = dict(os.environ, MALLOC_ARENA_MAX="2", OMP_NUM_THREADS="1",
               OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    run = subprocess.run([sys.executable, str(tmp_path / "child.py"), str(tmp_path),
                          str(n_chunks), str(rows), str(d), str(budget)],
                         capture_output=True, text=True, env=env, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert out["engine"] == "dask"
    assert not out["gathered"], "the cap does not bind: X fitted in memory"
    assert out["peak"] <= out["baseline"] + budget
    assert out["objective"] == pytest.approx(ref.objective, rel=1e-8)
    np.testing.assert_allclose(out["coef"], ref.coef, atol=1e-7)
    assert out["intercept"] == pytest.approx(ref.intercept, abs=1e-7)
