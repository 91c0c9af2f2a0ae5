"""What every dashboard page shares: the templates, the session and language cookies, CSRF tokens, form bodies,
the security headers and the HTML error page.

Sessions are the same rows as API sessions (``collector.crud.people.login``); the browser holds the token in an
HttpOnly, SameSite=Strict cookie (Secure over TLS). A form's CSRF token is an HMAC of the session token: only a
page of this origin, which could read the token's HMAC from the page it was served, can post it, and no
replica needs to keep anything in memory. The login form, before any session, uses a double-submit cookie.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode

import jinja2
from fastapi import Request
from fastapi.responses import HTMLResponse, Response

from collector.api.dashboard.messages import LANGS, has, t
from collector.core.workdays import CHINA
from collector.crud.queries import SEVERITY_ORDER as SEVERITIES
from collector.models.findings import STATES
from probes.i18n import LocalTime

PREFIX = "/ui"
SESSION_COOKIE = "precaution_session"
LOGIN_CSRF_COOKIE = "precaution_login_csrf"
LANG_COOKIE = "precaution_lang"
MAX_FORM_FIELDS = 20
MAX_FIELD = 4000
STATIC_DIR = Path(__file__).parent / "static"
__all__ = ["LANGS", "quote", "t"]

# No script runs on these pages (no JavaScript at all), styles come from this origin only, forms post here only.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}

_env = jinja2.Environment(loader=jinja2.PackageLoader("collector.api.dashboard", "templates"),
                          autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)


def lang_of(request: Request) -> str:
    chosen = request.cookies.get(LANG_COOKIE)
    if chosen in LANGS:
        return chosen
    accept = request.headers.get("accept-language", "").lower()
    return "zh-CN" if accept.startswith("zh") else "en"


def csrf_for(session_token: str) -> str:
    return hmac.new(session_token.encode("utf-8"), b"precaution-dashboard-csrf/v1", hashlib.sha256).hexdigest()


def csrf_matches(expected: str | None, given: str | None) -> bool:
    return bool(expected) and bool(given) and hmac.compare_digest(str(expected).encode(), str(given).encode())


def same_origin(request: Request) -> bool:
    """A form post names this origin (browsers send Origin on every POST); no Origin at all is left to the token."""
    origin = request.headers.get("origin")
    if origin is None:
        return True
    return origin == f"{request.url.scheme}://{request.headers.get('host', '')}"


def new_login_csrf() -> str:
    return secrets.token_urlsafe(24)


def set_cookie(response: Response, request: Request, name: str, value: str, *, max_age: int | None = None,
               path: str = PREFIX) -> None:
    response.set_cookie(name, value, max_age=max_age, path=path, httponly=True, samesite="strict",
                        secure=request.url.scheme == "https")


def clear_cookie(response: Response, request: Request, name: str) -> None:
    response.delete_cookie(name, path=PREFIX, httponly=True, samesite="strict", secure=request.url.scheme == "https")


async def form_fields(request: Request) -> dict[str, str]:
    """A urlencoded form body as fields (the first value of each, bounded in number and size)."""
    if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        return {}
    body = (await request.body()).decode("utf-8", "replace")
    fields: dict[str, str] = {}
    try:
        pairs = parse_qsl(body, keep_blank_values=True, max_num_fields=MAX_FORM_FIELDS)
    except ValueError:  # more fields than any of these forms has
        return {}
    for name, value in pairs:
        fields.setdefault(name[:100], value[:MAX_FIELD])
    return fields


def safe_next(target: str | None) -> str:
    """Only a path of the dashboard itself (never another site, never ``//host``)."""
    if target and target.startswith(PREFIX + "/") and not target.startswith("//") and "\\" not in target:
        return target
    return PREFIX + "/"


def _when(lang: str) -> Any:
    def when(value: dt.datetime | None) -> str:
        return LocalTime(value, CHINA).get(lang) if value is not None else "—"
    return when


def _url(path: str, **query: Any) -> str:
    params = {k: v for k, v in query.items() if v not in (None, "")}
    return path + ("?" + urlencode(params) if params else "")


def _names(group: str, codes: tuple[str, ...], lang: str) -> dict[str, str]:
    """The words for a set of codes, looked up once per page rather than once per table cell."""
    return {code: t(group + code, lang) for code in codes}


def render(request: Request, template: str, *, status: int = 200, headers: Mapping[str, str] | None = None,
           **context: Any) -> HTMLResponse:
    lang = lang_of(request)

    def tr(key: str, **params: Any) -> str:
        return t(key, lang, **params)

    def label(group: str, key: str) -> str:
        """A stored code (a state, an alert kind) in words; a code this release has no words for, as it is."""
        return t(group + key, lang) if has(group + key) else key

    html = _env.get_template(template).render(
        _=tr, label=label, lang=lang, sev_names=_names("sev_", SEVERITIES, lang),
        state_names=_names("state_", STATES, lang), when=_when(lang), url=_url, prefix=PREFIX, here=request.url.path
        + (f"?{request.url.query}" if request.url.query else ""), **context)
    return HTMLResponse(html, status_code=status, headers={**SECURITY_HEADERS, **(headers or {})})


def error_page(request: Request, status: int, en: str, zh: str) -> HTMLResponse:
    return render(request, "error.html.j2", status=status, status_code=status,
                  message=zh if lang_of(request) == "zh-CN" else en, who=None, units=[], unit=None)


def static_file(name: str) -> Response:
    path = STATIC_DIR / name
    if name not in {"dash.css"} or not path.is_file():
        return Response(status_code=404)
    return Response(path.read_bytes(), media_type="text/css",
                    headers={"Cache-Control": "max-age=3600", "X-Content-Type-Options": "nosniff"})
