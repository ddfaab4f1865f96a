"""The `jiasu` command. Each command lives in its own module; this one only wires them."""

from __future__ import annotations

import dataclasses
import os
import sys
import traceback

import click

from jiasu import __version__
from jiasu.cli.demo import demo
from jiasu.cli.doctor import doctor
from jiasu.cli.failure import describe_failure
from jiasu.cli.optimize import optimize
from jiasu.cli.predict import predict
from jiasu.cli.report import report
from jiasu.cli.serve import serve
from jiasu.cli.train import train
from jiasu.core.errors import JiasuError, one_line
from jiasu.core.interrupt import exit_code, terminate_as_interrupt


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="jiasu")
@click.option(
    "--debug",
    is_flag=True,
    help="On a failure, also show the Python traceback (or set JIASU_DEBUG=1).",
)
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """jiasu (加速): make PyTorch models train and serve faster — measured and verified.

    Every speed-up is measured on this machine against a baseline from the same run,
    and an accelerated model is accepted only if it is still right.
    """
    run = ctx.ensure_object(Run)
    run.debug = run.debug or debug
    run.command = ctx.invoked_subcommand


cli.add_command(demo)
cli.add_command(doctor)
cli.add_command(optimize)
cli.add_command(predict)
cli.add_command(report)
cli.add_command(serve)
cli.add_command(train)


@dataclasses.dataclass
class Run:
    """What the boundary needs to know about this invocation when it fails."""

    debug: bool = dataclasses.field(
        default_factory=lambda: os.environ.get("JIASU_DEBUG", "") not in ("", "0", "false")
    )
    command: str | None = None  # the subcommand, e.g. "train"


def main(argv: list[str] | None = None) -> int:
    """Entry point: every failure becomes one line ``error: …`` on stderr, no traceback.

    User and environment errors (a `JiasuError`, an unreadable or unwritable path, memory
    that runs out, a missing optional package) exit 2. Anything else is a bug in jiasu:
    one ``error: internal error: …`` line and exit 1; ``jiasu --debug`` (or JIASU_DEBUG=1)
    also prints the traceback.

    SIGTERM is handled as Ctrl-C (`jiasu.core.interrupt`): ``interrupted``, exit 143 (130 for
    Ctrl-C), after the same cleanup.
    """
    with terminate_as_interrupt():
        return _main(argv)


def _main(argv: list[str] | None) -> int:
    run = Run()
    try:
        cli.main(args=argv, prog_name="jiasu", standalone_mode=False, obj=run)
    except JiasuError as exc:
        _error(str(exc), exc, run)
        return exc.exit_code
    except click.exceptions.Abort as exc:
        if isinstance(exc.__cause__, KeyboardInterrupt):  # click turns Ctrl-C into Abort
            click.echo("interrupted", err=True)
            return exit_code(exc.__cause__)
        click.echo("aborted", err=True)
        return 130
    except click.ClickException as exc:
        _error(_usage_line(exc), exc, run)
        return 2
    except KeyboardInterrupt as exc:
        click.echo("interrupted", err=True)
        return exit_code(exc)
    except Exception as exc:
        message = describe_failure(exc, run.command)
        if message is not None:
            _error(message, exc, run)
            return 2
        _error(f"internal error: {one_line(exc)}; rerun with --debug for the traceback", exc, run)
        return 1
    return 0


def _error(message: str, exc: BaseException, run: Run) -> None:
    """Print ``error: message`` as one line on stderr (after the traceback with --debug)."""
    if run.debug:
        traceback.print_exception(exc, file=sys.stderr)
    click.secho(f"error: {' '.join(message.split())}", fg="red", err=True)


def _usage_line(exc: click.ClickException) -> str:
    """A click error (bad option value, unknown option) and where to read the usage."""
    message = exc.format_message().rstrip(".")
    ctx = getattr(exc, "ctx", None)
    if isinstance(exc, click.UsageError) and ctx is not None:
        see = f"see `{ctx.command_path} --help`"
        return f"{message} S{see[1:]}" if message.endswith("?") else f"{message}; {see}"
    return message


if __name__ == "__main__":
    sys.exit(main())
