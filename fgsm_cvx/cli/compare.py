"""Fit FGSM and its penalised-likelihood twin at the matched level, and compare them.

FGSM training is, to first order, penalised likelihood with the dual norm P of the
attack set as penalty (the Lasso for linf) at the level

    lam = (1 - alpha) eps kappa_hat,   kappa_hat = sum_i w_i |l'(y_i, eta_i)|,

set by the data. fgsm_cvx.compare fits both, and the report shows the two coefficient
vectors, their observed difference next to the first-order prediction
-(1 - alpha) eps P(beta) C^-1 V, the sign-neutrality vector V with standard errors and
its Wald test, both certificates and the coefficient error they imply. --json prints
Comparison.to_dict().

Examples
--------
  fgsm-cvx compare cancer.csv --target diagnosis --family logistic --eps 0.05
  fgsm-cvx compare data.csv -t y -f gaussian -p l2 -e 0.1 --json
"""

from __future__ import annotations

from ._args import add_data_arguments, add_output_arguments
from ._io import load_data, positive_float, print_json

HELP = "FGSM against its penalised-likelihood (Lasso) twin, with certificates"


def add_arguments(parser):
    add_data_arguments(parser)
    add_output_arguments(parser)


def run(args):
    import fgsm_cvx as fc

    eps = positive_float(args.eps, "--eps")
    data = load_data(args)
    report = fc.compare(data["X"], data["y"], data["family"], data["perturbation"], eps=eps,
                        alpha=data["alpha"], fit_intercept=data["fit_intercept"],
                        backend=args.backend, solver=args.solver,
                        feature_names=data["names"])
    if args.json:
        print_json(report.to_dict())
    else:
        print(f"data: {data['source']} ({data['X'].shape[0]} samples, target "
              f"'{args.target}')")
        print(report)
    return 0
