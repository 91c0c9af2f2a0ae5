"""Errors the CLI turns into one clear line and exit status 2."""

from __future__ import annotations

TYPE_CHECKING = False  # not `typing.TYPE_CHECKING`: `--version` imports neither typing nor probes

if TYPE_CHECKING:  # only a type here: `precaution --version` imports this module and must stay light
    from probes.i18n import Localized


class UserError(Exception):
    """Bad input or an environment the user must fix; the message is shown as is, in the command's language:
    a catalogue message (probes.i18n) renders itself, a plain string may carry its Chinese text in ``zh``."""

    def __init__(self, message: str | Localized, zh: str | None = None) -> None:
        super().__init__(message if isinstance(message, str) else message.get("en"))
        self.localized = message
        self.zh = zh

    def text(self, lang: str = "en") -> str:
        if not isinstance(self.localized, str):
            return self.localized.get(lang)
        return self.zh if lang == "zh-CN" and self.zh else self.localized
