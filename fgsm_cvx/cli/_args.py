"""argparse plumbing shared by the subcommands: one-line errors and common options."""

from __future__ import annotations

import argparse
import sys

BACKENDS = ("auto", "cvxpy", "fast")
SOLVERS = ("ECOS", "CLARABEL", "SCS")


class ArgumentParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line: ``<prog>: error: <message>``.

    argparse prints the usage block before the message; a script reading stderr wants
    the message alone, and ``--help`` shows the usage anyway.
    """

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {' '.join(message.split())} "
                     f"(see {self.prog} --help)\n")


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keep the examples' layout and show defaults."""

    def _get_help_string(self, action):
        text = action.help or ""
        if ("%(default)" not in text and action.default not in (None, False, argparse.SUPPRESS)
                and action.option_strings):
            text += " (default: %(default)s)"
        return text


def add_data_arguments(parser, eps=True, perturbation_default="linf"):
    """DATA, --target, --family, --perturbation, --eps, --alpha, ... (fit, path, compare)."""
    parser.add_argument("data", metavar="DATA",
                        help="CSV file ('-' reads standard input) or Parquet file "
                             "(.parquet/.pq, needs pyarrow)")
    parser.add_argument("--target", "-t", required=True, metavar="COL",
                        help="the response column")
    parser.add_argument("--features", metavar="COLS",
                        help="comma-separated feature columns (default: all but the target)")
    parser.add_argument("--family", "-f", required=True, metavar="F",
                        help="gaussian, logistic (= binomial), poisson, hinge or huber")
    parser.add_argument("--perturbation", "-p", default=perturbation_default, metavar="P",
                        help="the attacker's set: linf (= fgsm), l2 (= fgm), l1, or lp:P")
    if eps:
        parser.add_argument("--eps", "-e", required=True, metavar="E",
                            help="attack radius, in the units of the features (>= 0)")
    parser.add_argument("--alpha", default="0", metavar="A",
                        help="weight of the clean loss in [0, 1] (Goodfellow's mix)")
    parser.add_argument("--no-intercept", action="store_true",
                        help="fit without an intercept")
    add_solver_arguments(parser)


def add_solver_arguments(parser):
    parser.add_argument("--backend", "-b", default="auto", choices=BACKENDS,
                        help="cvxpy (interior point, certified by a duality gap), fast "
                             "(first-order, large n) or auto")
    parser.add_argument("--solver", default="ECOS", type=str.upper, choices=SOLVERS,
                        help="conic solver for the cvxpy backend")


def add_output_arguments(parser):
    parser.add_argument("--json", action="store_true",
                        help="print one JSON object instead of the text report")
    parser.add_argument("--quiet", "-q", action="store_true",
                        help="no progress bars (they are off anyway when stderr is not a "
                             "terminal)")


def progress(args):
    """The ``verbose`` argument of the package's long-running functions."""
    if getattr(args, "quiet", False) or getattr(args, "json", False):
        return False
    return None if sys.stderr.isatty() else False


def subparser(subparsers, name, module, help_text):
    """Register a subcommand from ``module`` (its docstring is the description)."""
    doc = module.__doc__.strip()
    description, _, epilog = doc.partition("\n\nExamples\n--------\n")
    return subparsers.add_parser(name, help=help_text, description=description,
                                 epilog="examples:\n" + epilog if epilog else None,
                                 formatter_class=HelpFormatter)
