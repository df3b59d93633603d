"""The ``fgsm-cvx`` command: exact adversarial (FGSM) training of GLMs from a shell.

Subcommands (``fgsm-cvx <subcommand> --help`` for each, with examples):

* ``demo``: the main job on bundled data (breast cancer, diabetes): a table and figures;
* ``fit``: one model on a CSV/Parquet table, coefficients and certificate, saved as JSON;
* ``path``: solutions along a path of radii from eps_max down;
* ``compare``: FGSM against its penalised-likelihood (Lasso) twin;
* ``attack``: the exact robust score of a saved model on data;
* ``simulate``: the theory experiments (Monte Carlo against the limit law).

Exit status: 0 on success; 2 with one line ``fgsm-cvx <subcommand>: error: <message>`` on
stderr for bad input (a missing file or column, an unknown family, non-numeric or missing
values, a bad option value), never a traceback; 1 when a solver fails
(``fgsm_cvx.SolverError``: the message names the status and what to try).
"""

from __future__ import annotations

import os
import sys
import warnings

from . import attack, compare, demo, fit, path, simulate
from ._args import ArgumentParser, HelpFormatter, subparser

__all__ = ["build_parser", "main"]

PROG = "fgsm-cvx"
SUBCOMMANDS = {"demo": demo, "fit": fit, "path": path, "compare": compare,
               "attack": attack, "simulate": simulate}
DESCRIPTION = ("Exact adversarial (FGSM) training of generalized linear models, as convex\n"
               "programs with certificates. 'fgsm-cvx SUBCOMMAND --help' for each.")
EPILOG = """examples:
  fgsm-cvx demo                                   # the main job, figures in fgsm_cvx_demo/
  fgsm-cvx fit data.csv --target y --family logistic --perturbation linf --eps 0.1
  fgsm-cvx fit data.csv -t y -f logistic -e 0.1 --output model.json --json
  fgsm-cvx attack model.json test.csv --eps 0.1
  fgsm-cvx path data.csv -t y -f gaussian --plot path.png

Set FGSM_CVX_TRACEBACK=1 to see the traceback behind an error message."""


def build_parser():
    """The argparse parser of ``fgsm-cvx`` with one subparser per subcommand.

    Examples
    --------
    >>> from fgsm_cvx.cli import build_parser
    >>> args = build_parser().parse_args(["fit", "data.csv", "-t", "y", "-f", "gaussian",
    ...                                   "-e", "0.1"])
    >>> args.command, args.target, args.eps, args.perturbation
    ('fit', 'y', '0.1', 'linf')
    """
    from .. import __version__

    parser = ArgumentParser(prog=PROG, description=DESCRIPTION,
                            epilog=EPILOG, formatter_class=HelpFormatter)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="SUBCOMMAND",
                                       parser_class=ArgumentParser)
    parser.subcommand_parsers = {}  # (main reports unknown options through their own)
    for name, module in SUBCOMMANDS.items():
        parser.subcommand_parsers[name] = subparser(subparsers, name, module, module.HELP)
        module.add_arguments(parser.subcommand_parsers[name])
    return parser


def _one_line(exc):
    return " ".join(str(exc).split()) or type(exc).__name__


def _show_warning(prog):
    def show(message, category, filename, lineno, file=None, line=None):
        print(f"{prog}: warning: {_one_line(message)}", file=sys.stderr)
    return show


def main(argv=None):
    """Run ``fgsm-cvx`` with ``argv`` (default ``sys.argv[1:]``); return the exit status.

    0 on success, 2 on bad input (one line on stderr, no traceback), 1 when a solver
    fails, 130 on Ctrl-C.

    Examples
    --------
    >>> from fgsm_cvx.cli import main
    >>> main(["fit", "no_such_file.csv", "--target", "y", "--family", "gaussian",
    ...       "--eps", "0.1"])
    2
    """
    from ..exceptions import SolverError

    parser = build_parser()
    try:
        args, unknown = parser.parse_known_args(argv)
        if unknown:  # (parse_args reports them as the top-level parser's: "fgsm-cvx: error")
            where = parser.subcommand_parsers.get(args.command, parser)
            where.error(f"unrecognized arguments: {' '.join(unknown)}")
    except SystemExit as exc:  # --help, --version, or argparse's own (one-line) error
        return exc.code if isinstance(exc.code, int) else 2
    if args.command is None:
        print(f"{PROG}: error: choose a subcommand: {', '.join(SUBCOMMANDS)} "
              f"(see {PROG} --help)", file=sys.stderr)
        return 2
    prog = f"{PROG} {args.command}"
    module = SUBCOMMANDS[args.command]
    debug = os.environ.get("FGSM_CVX_TRACEBACK", "") not in ("", "0")
    with warnings.catch_warnings():
        warnings.showwarning = _show_warning(prog)
        # the CLI scores estimators fitted on named columns with plain arrays
        warnings.filterwarnings("ignore", message="X does not have valid feature names")
        try:
            return int(module.run(args) or 0)
        except BrokenPipeError:  # e.g. `fgsm-cvx path ... | head`: stop quietly
            # Python's documented recipe: no second error when the interpreter flushes stdout
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 1
        except SolverError as exc:
            if debug:
                raise
            print(f"{prog}: error: {_one_line(exc)}", file=sys.stderr)
            return 1
        except (ValueError, TypeError, NotImplementedError, ImportError, OSError) as exc:
            # the package validates every input and raises ValueError / TypeError with a
            # message naming the argument; OSError: unreadable / unwritable files
            if debug:
                raise
            message = _one_line(exc)
            if isinstance(exc, OSError) and exc.filename is not None:
                message = f"{exc.strerror or message}: {exc.filename}"
            print(f"{prog}: error: {message}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            print(f"{prog}: interrupted", file=sys.stderr)
            return 130
