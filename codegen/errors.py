"""The one error type for bad input anywhere in Shoal.

A `ShoalInputError` is what a user sees as one line: it names the thing (a file, a field, an
operator, a packet), what is wrong with it, and what would be accepted. The CLI prints its
message and exits with status 2; it never shows a traceback for it (unless `--debug`).
"""


class ShoalInputError(ValueError):
    """Bad input from a user: a model, a board file, a role spec, a CLI argument.

    The message must be complete on its own, e.g.
    ``boards/foo.toml: field 'ram_bytes': expected a positive integer, got '64k'``.
    """
