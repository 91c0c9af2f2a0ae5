"""Errors the CLI turns into one clear line and exit status 2."""

from __future__ import annotations

from probes.i18n import Localized


class UserError(Exception):
    """Bad input or an environment the user must fix; the message is shown as is, in the command's language
    when it is a catalogue message (probes.i18n)."""

    def __init__(self, message: str | Localized) -> None:
        super().__init__(message if isinstance(message, str) else message.get("en"))
        self.localized = message

    def text(self, lang: str = "en") -> str:
        return self.localized if isinstance(self.localized, str) else self.localized.get(lang)
