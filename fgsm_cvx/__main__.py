"""``python -m fgsm_cvx``: the ``fgsm-cvx`` command (see ``fgsm_cvx.cli``)."""

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
