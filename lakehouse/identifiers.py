"""Names that come from configuration and end up in paths or SQL: validated in one place.

A model name, a site or plant name, a table or a signal name from a YAML file becomes part of a
lake path (``models/<name>/…``) or an identifier in SQL. Such a name must be a plain
identifier — letters, digits, ``_``, ``-`` and ``.`` (not first), at most 128 characters — so
that ``../../x`` can never write outside the lake root and a quote can never end a SQL string.
"""

from __future__ import annotations

import re

_IDENTIFIER = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,127}$")


class InvalidIdentifierError(ValueError):
    """A configured name that is not a plain identifier."""


def check_identifier(value: object, what: str) -> str:
    """Return ``value`` if it is a plain identifier, else raise with a one-line reason.

    Parameters
    ----------
    value : object
        The configured name.
    what : str
        What it names, for the message (``"model name"``).

    Raises
    ------
    InvalidIdentifierError
        Empty, too long, a path separator, ``..``, whitespace, quotes or other characters.
    """
    text = value if isinstance(value, str) else ""
    if not _IDENTIFIER.fullmatch(text) or ".." in text:
        raise InvalidIdentifierError(
            f"invalid {what} {value!r}: use letters, digits, '_', '-' and '.' (no path separators, "
            f"no '..', at most 128 characters)"
        )
    return text
