"""Errors: a user error is one clear line (CLI exit 2); an API error is a JSON body with a code, en and zh-CN."""

from __future__ import annotations


class CollectorUserError(Exception):
    """Bad input or an environment the operator must fix; the message is shown as is."""


class ApiError(Exception):
    """An HTTP error with a stable code and a message in English and Simplified Chinese."""

    def __init__(self, status: int, code: str, en: str, zh: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(en)
        self.status = status
        self.code = code
        self.en = en
        self.zh = zh
        self.headers = headers or {}

    def body(self) -> dict[str, str]:
        return {"error": self.code, "message": self.en, "message_zh": self.zh}
