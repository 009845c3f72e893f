"""The ``earmark`` command line: a thin layer that parses, calls the library, prints and writes.

Errors earmark raises on purpose become one line on stderr and exit code 1 (2 for usage
errors); ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import sys
import warnings

import click

from .._extras import extra_for_module, install_hint
from ..errors import EarmarkError, EarmarkWarning
from .commands import cli

# commands.py holds the group, its core commands and the shared options; the other command modules register
# themselves on it when a command of theirs is named (commands.LAZY_COMMANDS): one way, and a fast start.

__all__ = ["cli", "main"]


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    if issubclass(category, EarmarkWarning):
        click.echo(f"earmark: warning: {message}", err=True)
    else:
        sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``earmark`` console script (and ``python -m earmark``)."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    warnings.showwarning = _show_warning
    try:
        rv = cli.main(args=args, prog_name="earmark", standalone_mode=False)
        if isinstance(rv, int):  # click returns Exit codes instead of raising when not standalone
            return rv
    except click.exceptions.Exit as e:
        return int(e.exit_code or 0)
    except click.Abort:
        click.echo("earmark: aborted", err=True)
        return 130
    except click.ClickException as e:
        e.show()
        return e.exit_code
    except EarmarkError as e:
        if debug:
            raise
        click.echo(f"earmark: error: {e}", err=True)
        return 1
    except ModuleNotFoundError as e:  # an optional package a command reached for: name the extra that brings it
        extra = extra_for_module(e.name)
        if debug or extra is None:
            raise
        click.echo(f"earmark: error: this needs the {e.name} package, from the [{extra}] extra: "
                   f"{install_hint(extra)}", err=True)
        return 1
    except KeyboardInterrupt:
        click.echo("earmark: interrupted", err=True)
        return 130
    except Exception as e:  # a bug: say so plainly, keep the traceback behind --debug
        if debug:
            raise
        click.echo(f"earmark: internal error: {type(e).__name__}: {e} (run with --debug for the traceback)",
                   err=True)
        return 70
    return 0
