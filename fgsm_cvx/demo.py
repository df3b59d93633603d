"""``python -m fgsm_cvx.demo``: an alias of ``fgsm-cvx demo`` (``fgsm_cvx.cli.demo``)."""

from __future__ import annotations


def main(argv=None):
    """Run ``fgsm-cvx demo`` with ``argv``; return the exit status."""
    import sys

    from .cli import main as cli_main

    return cli_main(["demo", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    raise SystemExit(main())
