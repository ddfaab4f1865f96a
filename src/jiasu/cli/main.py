"""The `jiasu` command. Each command lives in its own module; this one only wires them."""

from __future__ import annotations

import sys

import click

from jiasu import __version__
from jiasu.cli.demo import demo
from jiasu.cli.doctor import doctor
from jiasu.cli.optimize import optimize
from jiasu.cli.predict import predict
from jiasu.cli.report import report
from jiasu.cli.signals import exit_code, terminate_as_interrupt
from jiasu.cli.train import train
from jiasu.core.errors import JiasuError


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="jiasu")
def cli() -> None:
    """jiasu (加速): make PyTorch models train and serve faster — measured and verified.

    Every speed-up is measured on this machine against a baseline from the same run,
    and an accelerated model is accepted only if it is still right.
    """


cli.add_command(demo)
cli.add_command(doctor)
cli.add_command(optimize)
cli.add_command(predict)
cli.add_command(report)
cli.add_command(train)


def main(argv: list[str] | None = None) -> int:
    """Entry point: user errors become one line on stderr and a non-zero exit, no traceback.

    SIGTERM is handled as Ctrl-C (`jiasu.cli.signals`): ``interrupted``, exit 143 (130 for
    Ctrl-C), after the same cleanup.
    """
    with terminate_as_interrupt():
        return _main(argv)


def _main(argv: list[str] | None) -> int:
    try:
        cli.main(args=argv, prog_name="jiasu", standalone_mode=False)
    except JiasuError as exc:
        click.secho(f"error: {exc}", fg="red", err=True)
        return exc.exit_code
    except click.exceptions.Abort as exc:
        if isinstance(exc.__cause__, KeyboardInterrupt):  # click turns Ctrl-C into Abort
            click.echo("interrupted", err=True)
            return exit_code(exc.__cause__)
        click.echo("aborted", err=True)
        return 130
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except KeyboardInterrupt as exc:
        click.echo("interrupted", err=True)
        return exit_code(exc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
