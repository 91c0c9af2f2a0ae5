"""Errors the CLI turns into one clear line and exit status 2."""

from __future__ import annotations


class UserError(Exception):
    """Bad input or an environment the user must fix; the message is shown as is.

    ``zh`` is the same message in Simplified Chinese, shown instead with ``--lang zh-CN`` when given."""

    def __init__(self, message: str, zh: str | None = None) -> None:
        super().__init__(message)
        self.zh = zh

    def text(self, lang: str = "en") -> str:
        return self.zh if lang == "zh-CN" and self.zh else str(self)
