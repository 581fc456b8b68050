"""``python -m clvkit.cli``: the ``clvkit`` command."""

from clvkit.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
