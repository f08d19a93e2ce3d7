"""What the project's management commands share of spec §3's command-line contract.

Why: spec §3 demands that a command-line error is one line on stderr and a non-zero exit
status, with nothing on stdout, so that a script (or an operator's shell) can report it as is.
Django already prints a :class:`~django.core.management.CommandError` as one line
(``CommandError: ...``, exit status 1) as long as its message holds no newline, which
:func:`one_line` guarantees. argparse's own errors (a missing argument, a bad choice, a value
that does not parse) are another matter: by default they print the whole usage block before the
message. :class:`OneLineErrorsMixin` makes those one line too, ``<command>: error: <message>``
with argparse's exit status 2, and keeps that code in one place rather than in every command.
"""

from __future__ import annotations

import sys
from typing import Any, NoReturn

from django.core.management.base import CommandParser

__all__ = ["OneLineErrorsMixin", "one_line"]


def one_line(text: str) -> str:
    """``text`` with every run of whitespace (newlines included) turned into one space."""
    return " ".join(text.split())


class OneLineErrorsMixin:
    """For a :class:`~django.core.management.BaseCommand`: argparse errors become one line.

    Use as ``class Command(OneLineErrorsMixin, BaseCommand)`` (the mixin first, so that its
    ``create_parser`` wraps Django's). On the real command line an argparse error prints
    ``<command>: error: <message>`` (the command's name as typed after ``manage.py``) on stderr
    and exits with status 2; ``call_command`` is unaffected (Django raises
    :class:`~django.core.management.CommandError` there, as usual).
    """

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        """Make argparse's own errors one line too (it prints a usage block by default)."""
        parser: CommandParser = super().create_parser(  # type: ignore[misc]  # BaseCommand's
            prog_name, subcommand, **kwargs
        )
        if parser.called_from_command_line:

            def one_line_error(message: str) -> NoReturn:
                sys.stderr.write(f"{subcommand}: error: {message}\n")
                sys.exit(2)

            parser.error = one_line_error  # type: ignore[method-assign]
        return parser
