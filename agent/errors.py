"""Errors the CLI turns into one clear line and exit status 2."""


class UserError(Exception):
    """Bad input or an environment the user must fix; the message is shown as is."""
