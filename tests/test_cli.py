"""The ``fgsm-cvx`` command line: end to end through subprocess, and ``main(argv)`` in process.

The reference values are the Python API's (``fc.solve`` on the same data, ``fc.compare``,
``fc.robust_score``); bad input must give exit status 2 and one line on stderr.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import fgsm_cvx as fc
from fgsm_cvx.cli import SUBCOMMANDS, main

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def command():
    """The installed console script, or ``python -m fgsm_cvx`` when it is not on disk."""
    script = Path(sys.executable).with_name("fgsm-cvx")
    return [str(script)] if script.exists() else [sys.executable, "-m", "fgsm_cvx"]


def run_cli(*args, cwd=None):
    env = {**os.environ, "FGSM_CVX_TRACEBACK": ""}
    return subprocess.run([*command(), *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=300)


@pytest.fixture(scope="module")
def tables(tmp_path_factory):
    """A regression table (gaussian) and a classification table with string labels."""
    folder = tmp_path_factory.mktemp("cli")
    rng = np.random.default_rng(0)
    n = 120
    X = rng.standard_normal((n, 4))
    names = ["age", "dose", "weight", "noise"]
    y = X @ [1.5, -1.0, 0.5, 0.0] + 0.3 + 0.5 * rng.standard_normal(n)
    reg = pd.DataFrame(X, columns=names).assign(response=y)
    labels = np.where(X @ [1.0, -1.0, 0.5, 0.0] + rng.standard_normal(n) > 0, "sick", "well")
    cls = pd.DataFrame(X, columns=names).assign(status=labels)
    paths = {"reg": folder / "reg.csv", "cls": folder / "cls.csv", "folder": folder}
    reg.to_csv(paths["reg"], index=False)
    cls.to_csv(paths["cls"], index=False)
    return {**paths, "X": X, "y": y, "labels": labels, "names": names}


def in_process(capsys, *args):
    """(status, stdout, stderr) of ``main(args)``."""
    status = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return status, out, err


# ----- end to end, through the installed command ------------------------------------------
def test_demo_writes_pngs_and_prints_the_table(tmp_path):
    out_dir = tmp_path / "demo"
    proc = run_cli("demo", "--quick", "--out-dir", out_dir)
    assert proc.returncode == 0, proc.stderr
    for name in ("coefficient_paths.png", "accuracy.png"):
        data = (out_dir / name).read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 10_000, name
    for name in ("breast_cancer.csv", "diabetes.csv"):
        assert (out_dir / name).stat().st_size > 100
    out = proc.stdout
    assert "clean acc." in out and "robust acc." in out and "rel. gap" in out
    assert "Lasso twin" in out and "clean R^2" in out
    # 4 radii on the breast-cancer path: one FGSM and one twin row each
    assert sum(line.split()[1:2] == ["FGSM"] for line in out.splitlines()) == 4 + 2
    table = pd.read_csv(out_dir / "breast_cancer.csv")
    fgsm = table[table.model == "FGSM"]
    # at eps_max every coefficient is zero; robust accuracy never exceeds clean accuracy
    assert fgsm.nonzeros.iloc[0] == 0
    assert np.all(table.robust <= table.clean + 1e-12)
    assert np.all(table.rel_gap < 1e-6)


def test_fit_reproduces_the_python_api(tables):
    proc = run_cli("fit", tables["reg"], "--target", "response", "--family", "gaussian",
                   "--perturbation", "linf", "--eps", "0.1", "--json")
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)
    prob = fc.AdversarialProblem(tables["X"], tables["y"], family="gaussian",
                                 perturbation="linf", eps=0.1)
    ref = fc.solve(prob)
    np.testing.assert_allclose(got["coef"], ref.coef, atol=1e-8)
    assert got["intercept"] == pytest.approx(ref.intercept, abs=1e-8)
    assert got["feature_names"] == tables["names"]
    assert got["certificate"]["status"] == "optimal"
    assert got["certificate"]["objective_numpy"] == pytest.approx(ref.objective, rel=1e-10)


def test_bad_input_exits_2_with_one_line(tables):
    proc = run_cli("fit", tables["reg"], "--target", "nope", "--family", "gaussian",
                   "--eps", "0.1")
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.splitlines() == [
        "fgsm-cvx fit: error: target column 'nope' not found in "
        f"{tables['reg']}; its columns are: age, dose, weight, noise, response"]


# ----- in process: fit, attack, path, compare ----------------------------------------------
def test_fit_text_output_names_features_and_certificate(tables, capsys):
    status, out, err = in_process(capsys, "fit", tables["cls"], "-t", "status", "-f",
                                  "logistic", "-e", "0.05")
    assert status == 0, err
    for name in tables["names"]:
        assert name in out
    assert "(intercept)" in out and "certificate: cvxpy/ECOS: optimal" in out
    assert "classes: 'sick' (negative), 'well' (positive)" in out


def test_fit_output_then_attack_matches_robust_score(tables, capsys, tmp_path):
    model_file = tmp_path / "model.json"
    status, out, err = in_process(capsys, "fit", tables["cls"], "-t", "status", "-f",
                                  "logistic", "-p", "l2", "-e", "0.2", "-o", model_file,
                                  "--json")
    assert status == 0, err
    fitted = json.loads(out)
    assert fitted["model_file"] == str(model_file)
    frame = pd.DataFrame(tables["X"], columns=tables["names"])
    clf = fc.AdversarialClassifier(perturbation="l2", eps=0.2).fit(frame, tables["labels"])
    np.testing.assert_allclose(fitted["coef"], clf.coef_, atol=1e-8)
    assert fitted["classes"] == ["sick", "well"]

    model = fc.model_from_dict(json.loads(model_file.read_text()))
    for method, eps in (("exact", 0.3), ("fgsm", 0.3)):
        status, out, err = in_process(capsys, "attack", model_file, tables["cls"], "--eps",
                                      eps, "--method", method, "--json")
        assert status == 0, err
        got = json.loads(out)
        assert got["target"] == "status" and got["perturbation"] == "l2"
        assert got["clean_score"] == pytest.approx(clf.score(frame, tables["labels"]))
        exact = fc.robust_score(model, tables["X"], tables["labels"], eps, "l2")
        if method == "exact":
            assert got["robust_score"] == pytest.approx(exact)
        else:  # the literal FGSM move is never stronger than the exact worst case
            assert exact <= got["robust_score"] <= got["clean_score"]
    status, out, _ = in_process(capsys, "attack", model_file, tables["cls"], "-e", "0.3",
                                "-p", "linf")
    assert status == 0 and "robust accuracy" in out and "linf" in out


def test_attack_on_held_out_data_and_its_messages(tables, capsys, tmp_path):
    """Held-out data of one class is scored (the fit's two-label rule refused it); a
    target among the model's features is named so (attack has no --features); a model
    file edited to eps = -1 is refused on loading; integer labels print plainly."""
    model_file = tmp_path / "model.json"
    status, out, err = in_process(capsys, "fit", tables["cls"], "-t", "status", "-f",
                                  "logistic", "-e", "0.2", "-o", model_file)
    assert status == 0, err
    sick = tables["labels"] == "sick"
    one = tmp_path / "sick.csv"
    pd.read_csv(tables["cls"])[sick].to_csv(one, index=False)
    status, out, err = in_process(capsys, "attack", model_file, one, "-e", "0.3", "--json")
    assert status == 0, err
    model = fc.model_from_dict(json.loads(model_file.read_text()))
    X = tables["X"][sick]
    assert json.loads(out)["robust_score"] == pytest.approx(
        fc.robust_score(model, X, tables["labels"][sick], 0.3))
    status, _, err = in_process(capsys, "attack", model_file, tables["cls"], "-e", "0.1",
                                "--target", "age")
    assert status == 2 and "the target column 'age' is one of" in err and "--features" not in err
    saved = json.loads(model_file.read_text())
    saved["params"]["eps"] = -1.0
    edited = tmp_path / "edited.json"
    edited.write_text(json.dumps(saved))
    status, _, err = in_process(capsys, "attack", edited, tables["cls"], "-e", "0.1")
    assert status == 2 and "eps must be in [0.0" in err
    numbers = tmp_path / "numbers.csv"
    pd.read_csv(tables["cls"]).assign(status=sick.astype(int)).to_csv(numbers, index=False)
    status, out, err = in_process(capsys, "fit", numbers, "-t", "status", "-f", "logistic",
                                  "-e", "0.2")
    assert status == 0, err
    assert "classes: 0 (negative), 1 (positive)" in out


def test_fit_reads_parquet(tables, capsys, tmp_path):
    pytest.importorskip("pyarrow")
    parquet = tmp_path / "reg.parquet"
    pd.read_csv(tables["reg"]).to_parquet(parquet)
    status, out, err = in_process(capsys, "fit", parquet, "-t", "response", "-f", "huber",
                                  "-e", "0.05", "--features", "dose,age", "--json")
    assert status == 0, err
    got = json.loads(out)
    assert got["feature_names"] == ["dose", "age"]
    ref = fc.solve(fc.AdversarialProblem(tables["X"][:, [1, 0]], tables["y"], family="huber",
                                         eps=0.05))
    np.testing.assert_allclose(got["coef"], ref.coef, atol=1e-7)


def test_path_table_json_and_plot(tables, capsys, tmp_path):
    png = tmp_path / "path.png"
    status, out, err = in_process(capsys, "path", tables["reg"], "-t", "response", "-f",
                                  "gaussian", "--n-eps", "5", "--plot", png, "--json")
    assert status == 0, err
    got = json.loads(out)
    prob = fc.AdversarialProblem(tables["X"], tables["y"], family="gaussian", eps=0.0)
    assert got["eps_max"] == pytest.approx(fc.eps_max(prob))
    rows = got["path"]
    assert len(rows) == 5 and rows[0]["n_nonzero"] == 0 and rows[-1]["n_nonzero"] >= 3
    ref = fc.solve(prob.with_params(eps=rows[2]["eps"]))
    np.testing.assert_allclose(rows[2]["coef"], ref.coef, atol=1e-6)
    assert png.read_bytes().startswith(PNG_MAGIC)
    status, out, _ = in_process(capsys, "path", tables["reg"], "-t", "response", "-f",
                                "gaussian", "--eps", "0.2,0.05")
    assert status == 0
    lines = out.splitlines()
    assert "objective" in lines[1] and "nonzeros" in lines[1] and "rel. gap" in lines[1]
    assert len(lines) == 4
    # the default grid on the cvxpy backend: its first row (eps_max, no solve) carries a
    # residual; the column is still the solved radii's relative gap
    status, out, _ = in_process(capsys, "path", tables["reg"], "-t", "response", "-f",
                                "gaussian", "--n-eps", "3", "-b", "cvxpy")
    assert status == 0 and "rel. gap" in out.splitlines()[1]


def test_compare_matches_fc_compare(tables, capsys):
    status, out, err = in_process(capsys, "compare", tables["reg"], "-t", "response", "-f",
                                  "gaussian", "-e", "0.05", "--json")
    assert status == 0, err
    got = json.loads(out)
    ref = fc.compare(tables["X"], tables["y"], "gaussian", "linf", eps=0.05)
    assert got["lam"] == pytest.approx(ref.lam, rel=1e-8)
    np.testing.assert_allclose(got["coef_penalized"], ref.coef_penalized, atol=1e-7)
    assert got["names"] == [*tables["names"], "intercept"]
    status, out, _ = in_process(capsys, "compare", tables["reg"], "-t", "response", "-f",
                                "gaussian", "-e", "0.05")
    assert status == 0 and "FGSM vs penalised likelihood" in out and "sign neutrality" in out


# ----- bad input: exit 2, one line, the expected message --------------------------------------
BAD = {
    "missing file": (["fit", "{folder}/none.csv", "-t", "y", "-f", "gaussian", "-e", "0.1"],
                     "no such file"),
    "missing column": (["fit", "{reg}", "-t", "nope", "-f", "gaussian", "-e", "0.1"],
                       "target column 'nope' not found"),
    "missing feature": (["fit", "{reg}", "-t", "response", "-f", "gaussian", "-e", "0.1",
                         "--features", "age,height"], "feature column 'height' not found"),
    "unknown family": (["fit", "{reg}", "-t", "response", "-f", "gamma", "-e", "0.1"],
                       "unknown family 'gamma'; valid names: binomial, gaussian"),
    "unknown perturbation": (["fit", "{reg}", "-t", "response", "-f", "gaussian", "-p", "l3",
                              "-e", "0.1"], "unknown perturbation 'l3'"),
    "non-numeric": (["fit", "{text}", "-t", "y", "-f", "gaussian", "-e", "0.1"],
                    "column 'b' is not numeric (row 2: 'x')"),
    "NaN": (["fit", "{nan}", "-t", "y", "-f", "gaussian", "-e", "0.1"],
            "column 'a' has 1 missing or infinite value(s)"),
    "NaN target": (["fit", "{nan}", "-t", "b", "-f", "gaussian", "-e", "0.1",
                    "--features", "y"], "column 'b' has 1 missing"),
    "negative eps": (["fit", "{reg}", "-t", "response", "-f", "gaussian", "-e", "-0.1"],
                     "--eps must be a finite number >= 0"),
    "nan eps": (["path", "{reg}", "-t", "response", "-f", "gaussian", "--eps", "0.1,nan"],
                "--eps must be a finite number >= 0"),
    "alpha": (["compare", "{reg}", "-t", "response", "-f", "gaussian", "-e", "0.1",
               "--alpha", "1.5"], "--alpha must be in [0, 1]"),
    "three classes": (["fit", "{reg}", "-t", "response", "-f", "logistic", "-e", "0.1"],
                      "classification needs exactly two"),
    "string target for regression": (["fit", "{cls}", "-t", "status", "-f", "poisson",
                                      "-e", "0.1"], "column 'status' is not numeric"),
    "missing option": (["fit", "{reg}", "-t", "response", "-f", "gaussian"],
                       "the following arguments are required: --eps"),
    "unknown backend": (["fit", "{reg}", "-t", "response", "-f", "gaussian", "-e", "0.1",
                         "-b", "gpu"], "invalid choice: 'gpu'"),
    "package validation": (["fit", "{reg}", "-t", "response", "-f", "poisson", "-e", "0.1"],
                           "family 'poisson' needs counts y >= 0"),
    "not a model": (["attack", "{reg}", "{reg}", "-e", "0.1"], "is not JSON"),
    "no subcommand": ([], "choose a subcommand"),
    "simulate bad estimator": (["simulate", "--estimators", "fgsm,bogus"],
                               "unknown estimator(s) bogus"),
    "simulate bad beta0": (["simulate", "--beta0", "1,x"], "write comma-separated numbers"),
    "simulate hinge": (["simulate", "--family", "hinge"],
                       "--family 'hinge': the theory's designs are gaussian, logistic"),
    "simulate unknown family": (["simulate", "--family", "gamma"],
                                "--family 'gamma': the theory's designs are gaussian"),
    "ragged first row": (["fit", "{ragged}", "-t", "y", "-f", "gaussian", "-e", "0.1"],
                         "a row has more fields than the header"),
    "duplicate header": (["fit", "{dup}", "-t", "y", "-f", "gaussian", "-e", "0.1"],
                         "the header names a more than once"),
    "unknown option": (["fit", "{reg}", "-t", "response", "-f", "gaussian", "-e", "0.1",
                        "--bogus"], "unrecognized arguments: --bogus (see fgsm-cvx fit --help)"),
    "no default grid": (["path", "{reg}", "-t", "response", "-f", "gaussian", "--alpha", "1"],
                        "pass the radii explicitly with --eps E1,E2,..."),
}


@pytest.mark.parametrize("case", list(BAD), ids=list(BAD))
def test_bad_input_in_process(case, tables, capsys):
    folder = tables["folder"]
    (folder / "text.csv").write_text("a,b,y\n1,2,3\n2,x,4\n3,4,5\n")
    (folder / "nan.csv").write_text("a,b,y\n1,2,3\n,3,4\n3,,5\n")
    (folder / "ragged.csv").write_text("a,b,y\n1,2,3,4\n4,5,6\n8,9,10\n")
    (folder / "dup.csv").write_text("a,a,y\n1,2,3\n4,5,6\n8,9,10\n")
    argv, expected = BAD[case]
    argv = [a.format(folder=folder, reg=tables["reg"], cls=tables["cls"],
                     text=folder / "text.csv", nan=folder / "nan.csv",
                     ragged=folder / "ragged.csv", dup=folder / "dup.csv") for a in argv]
    status, out, err = in_process(capsys, *argv)
    assert status == 2, (out, err)
    lines = err.splitlines()
    assert len(lines) == 1, err
    prefix = f"fgsm-cvx {argv[0]}: error: " if argv else "fgsm-cvx: error: "
    assert lines[0].startswith(prefix), lines[0]
    assert expected in lines[0]
    assert "Traceback" not in err


def test_solver_failure_exits_1(capsys, tmp_path):
    # separable classes at eps = 0: the logistic loss has no minimiser
    X = np.array([[-2.0], [-1.0], [1.0], [2.0]])
    pd.DataFrame({"x": X[:, 0], "y": [0, 0, 1, 1]}).to_csv(tmp_path / "sep.csv", index=False)
    status, _, err = in_process(capsys, "fit", tmp_path / "sep.csv", "-t", "y", "-f",
                                "logistic", "-e", "0")
    assert status == 1
    assert err.startswith("fgsm-cvx fit: error: ") and "separable" in err
    assert len(err.splitlines()) == 1


@pytest.mark.parametrize("name", list(SUBCOMMANDS))
def test_help_has_examples(name, capsys):
    status, out, _ = in_process(capsys, name, "--help")
    assert status == 0
    assert f"usage: fgsm-cvx {name}" in out and "examples:" in out
    assert out.count("fgsm-cvx " + name) >= 2  # usage line and at least one example


def test_module_entry_points_agree(capsys):
    from fgsm_cvx.demo import main as demo_main

    status, out, _ = in_process(capsys, "--help")
    assert status == 0 and all(name in out for name in SUBCOMMANDS)
    assert demo_main(["--help"]) == 0
    assert "usage: fgsm-cvx demo" in capsys.readouterr().out


def test_simulate_writes_the_theory_table(tmp_path, capsys):
    """simulate --mode quick: the CSV is fc.theory.simulate's summary for the same design,
    lam, sample sizes, replications and seed (the CLI only wires the arguments)."""
    import pandas as pd

    from fgsm_cvx.cli.simulate import MODES

    out = tmp_path / "sim.csv"
    status, stdout, err = in_process(capsys, "simulate", "--mode", "quick", "--lam", "0.8",
                                     "--beta0", "1,0", "--seed", "3", "--out", out, "--quiet")
    assert status == 0, err
    got = pd.read_csv(out)
    assert list(got.columns) == ["n", "estimator", "coordinate", "bias", "sd", "rmse",
                                 "p_zero"]
    design = fc.theory.GLMDesign("gaussian", [1.0, 0.0])
    ref = fc.theory.simulate(design, ns=MODES["quick"]["ns"],
                             lam=0.8, reps=MODES["quick"]["reps"], seed=3, progress=False)
    finite = got[np.isfinite(got["n"])]
    np.testing.assert_allclose(finite[["bias", "sd", "rmse"]].to_numpy(),
                               ref[["bias", "sd", "rmse"]].to_numpy(), rtol=1e-9)
    # the n = inf rows: the limit law's draws, per estimator, summarised the same way
    for estimator in ("fgsm", "penalized"):
        draws = fc.theory.sample_limit_law(design, 0.8, n_draws=MODES["quick"]["draws"],
                                           seed=3, estimator=estimator)
        limit = got[np.isinf(got["n"]) & (got["estimator"] == estimator)]
        np.testing.assert_allclose(limit["bias"], draws.mean(axis=0), rtol=1e-9)
        np.testing.assert_allclose(limit["sd"], draws.std(axis=0, ddof=1), rtol=1e-9)
    assert f"wrote {out}" in stdout
