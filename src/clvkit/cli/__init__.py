"""The ``clvkit`` command line: demo, fit, value, score, backtest, compare, report, summarize
and retention.

Progress goes to stderr (``--quiet`` turns it off): a line per step and, while a fit or the
backtest runs and stderr is not a terminal, a "still running" line every few seconds. Results
go to stdout or files. ``clvkit COMMAND --help`` shows every option with its default; the
options are the API's (``docs/cli.md`` maps each to its keyword).

``PURCHASES`` (a CSV or Parquet file, or a glob) is read exactly as the Python API reads a path:
``fit``, ``score`` and ``summarize`` hand it to ``clvkit.rfm_summary``/``calibration_holdout``
(DuckDB, out of core), ``backtest`` to ``clvkit.evaluation.split_log``, ``report`` to
``clvkit.report.report_from_log`` (read once, summarized as of the observation end for the
valuation and split at the calibration end for the backtest); so the same file gives the same
table, or the same error, on the command line and in Python (``--tz`` as the API's ``tz=``).

Models come from the registry (``clvkit.models.registry``): ``--model`` names the purchase
model (default ``bgnbd``), ``--spend-model`` the spend model (default ``gamma_gamma``).
``clvkit fit --out models/shop`` writes ``models/shop.<name>.nc`` per model (e.g.
``shop.bgnbd.nc``, and with ``--amount`` ``shop.gamma_gamma.nc``, fitted first so bad spend
input stops the run before any purchase sampling) and ``models/shop.rfm.parquet``;
A model of discrete opportunities (``--model bgbb``) reads the log on a grid of
``--time-unit`` opportunities (calendar ``Y``, ``Q``, ``M`` or a fixed ``W``) in ``fit``,
``score``, ``backtest`` and ``report``: :func:`clvkit.data.log_table` builds the table the model
names (``ModelSpec.data``). ``clvkit value`` finds them by the prefix (files of earlier versions, ``shop.beta_geo.nc``,
still load) and ``clvkit score NEW_LOG --model-prefix models/shop`` values a new log with them,
in their time unit.

``clvkit report`` values the base as of ``--observation-end`` (models fitted on all purchases
to that date) and backtests the models with a separate fit on the calibration window; the page
and stdout open with the verdict (:mod:`clvkit.evaluation.verdict`). ``clvkit backtest``
prints the verdict on the backtest.

``clvkit compare PURCHASES --models bgnbd,pnbd --calibration-end DATE --observation-end DATE``
fits each named purchase model on the calibration window and prints one ranked table (PSIS-LOO,
stacking and pseudo-BMA weights, holdout log score, MAE, the holdout total with its interval,
per-customer coverage) and the words on which model the data favour
(:func:`clvkit.evaluation.compare_models.compare`); ``--out`` writes the table (.csv/.parquet).
``clvkit report --compare bgnbd,pnbd`` adds the section "Which model to trust" to the report.

``clvkit summarize PURCHASES --out rfm.parquet`` writes the RFM table of a log (with
``--calibration-end`` and ``--observation-end``: the calibration/holdout table), read from the
path or glob by DuckDB like ``clvkit.rfm_summary(path)``; ``--table opportunities`` writes the
discrete-opportunity table of BG/BB instead (``clvkit.opportunity_summary``). The index (customer id) is kept;
Parquet keeps every type exactly, CSV is text.

``clvkit retention CONTRACTS --period M --calibration-end DATE --observation-end DATE`` is the
contractual backtest (:func:`clvkit.retention_backtest`, ``docs/retention.md``): a contractual
model (``--model``, default ``sbg``) fitted on the contracts to the calibration end, the
subscribers active at each later period per cohort against the model's credible and predictive
bands; it prints the overall table and the verdict, ``--out`` writes the per-cohort table
(.csv/.parquet), ``--plot`` the cohort fans (.png/.pdf/.svg) and ``--report`` the report page
(.html), each atomically. With ``--fee COLUMN`` it also values the subscriber base (the model
fitted on all contracts to the observation end, :func:`clvkit.subscriber_value`): equity with
credible and predictive intervals, value by tenure and the retention elasticity, printed, in
the report page and per subscriber with ``--value-out``.

Outputs (see ``docs/reliability.md``):

- ``--out`` is checked before any work starts: a bad one fails in well under a second.
- File outputs (``value``, ``report``, ``summarize``, ``fit``, ``compare``) replace only the
  named file. The suffix must match the content (.csv/.parquet/.pq tables, .html/.htm report);
  an existing folder at the path, a file among its parent folders or an unwritable parent is
  refused.
- Folder outputs (``backtest``, ``demo``) hold a marker file ``.clvkit-output``. An existing
  ``--out`` is replaced only if it is empty or a clvkit output folder with nothing else in it;
  a file, a folder with other files, or the current folder (or a parent of it) is refused.
- Every output is written under a temporary name (``.NAME.clvkit-tmp-PID-XXXX``) and renamed, a
  folder swapped in atomically, so it is always the complete old output or the complete new
  one; temporaries are removed on errors and SIGTERM, and those of killed runs at the next run.

Exit codes: 0 success; 2 a user error (bad argument, missing file or column, bad date, a model
file that is corrupt or not clvkit's, an ``--out`` that breaks the rules above, a rate above 1,
an OS error while writing), one line on stderr; 130 Ctrl-C; 141 stdout closed early (``clvkit ... | head``),
quietly; 143 SIGTERM, one line on stderr, temporaries removed.
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Sequence

from clvkit.cli.console import (
    EXIT_BROKEN_PIPE,
    EXIT_SIGTERM,
    EXIT_USAGE,
    Console,
    show_warning,
    silence_stdout,
)
from clvkit.cli.model_files import LEGACY_MODEL_SUFFIXES, RFM_SUFFIX, model_suffix
from clvkit.cli.options import DEFAULT_MODELS, MAX_SEED, check_args
from clvkit.cli.parser import build_parser
from clvkit.errors import ClvkitError

__all__ = [
    "DEFAULT_MODELS",
    "EXIT_BROKEN_PIPE",
    "EXIT_SIGTERM",
    "EXIT_USAGE",
    "LEGACY_MODEL_SUFFIXES",
    "MAX_SEED",
    "RFM_SUFFIX",
    "Console",
    "build_parser",
    "check_args",
    "main",
    "model_suffix",
]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``clvkit`` console script; returns the exit code.

    Examples
    --------
    >>> main(["value", "no/such/model", "--quiet"])  # one line on stderr, exit code 2
    2
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    # The CLI samples with nutpie's numba backend and never needs PyTensor's C BLAS; say so
    # before PyTensor is imported, so users are not shown its BLAS-linking warning.
    flags = os.environ.get("PYTENSOR_FLAGS", "")
    if "blas__ldflags" not in flags:
        os.environ["PYTENSOR_FLAGS"] = ",".join(f for f in (flags, "blas__ldflags=") if f)
    from clvkit.utils.io import Terminated, sigterm_as_exception, terminated

    # SIGTERM becomes Terminated (a BaseException) while main runs, so `finally` blocks remove
    # temporary files and staging folders; the previous handler is restored on return.
    with sigterm_as_exception():
        try:
            with warnings.catch_warnings():
                warnings.showwarning = show_warning
                check_args(args)
                code = int(args.func(args))
                sys.stdout.flush()  # a closed pipe shows up here, inside the handlers below
                return code
        except Terminated:
            print("clvkit: terminated (SIGTERM); temporary files removed", file=sys.stderr)
            return EXIT_SIGTERM
        except BrokenPipeError:
            # stdout was closed early (`clvkit ... | head`). Python's documented recipe: point
            # stdout at devnull so the final flush at exit cannot fail again; exit quietly.
            silence_stdout()
            return EXIT_BROKEN_PIPE
        except ClvkitError as exc:
            print(f"clvkit: error: {exc}", file=sys.stderr)
            return EXIT_USAGE
        except OSError as exc:  # a full disk, a permission or a path problem while writing
            print(f"clvkit: error: {exc}".splitlines()[0], file=sys.stderr)
            return EXIT_USAGE
        except KeyboardInterrupt:
            print("clvkit: interrupted", file=sys.stderr)
            return 130
        except Exception:
            if terminated():  # a library (DuckDB: "Query interrupted") caught our Terminated
                print("clvkit: terminated (SIGTERM); temporary files removed", file=sys.stderr)
                return EXIT_SIGTERM
            raise
