from __future__ import annotations

import json
import subprocess
import warnings
from pathlib import Path

import pytest

from probes.base import GatherContext
from probes.host.accounts import AccountsProbe, hash_scheme, redact_password
from probes.transport import LocalTransport
from tests.conftest import needs_root
from tests.probes.golden import FIXTURES, cases, check_case
from tests.probes.hosta_util import open_tmpdir, run_as_nobody

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import crypt  # the real libcrypt, to make real hashes of every scheme it supports


@pytest.mark.parametrize("raw_path", cases("accounts"), ids=lambda p: p.name)
def test_golden(raw_path):
    check_case("accounts", raw_path)


def test_golden_compromised_facts():
    rows = {o.subject: o.attrs for o in check_case("accounts", FIXTURES / "accounts" / "compromised-el.raw.json")}
    assert rows["toor"]["uid"] == 0 and rows["toor"]["hash_scheme"] == "md5"
    assert rows["guest"]["password_empty"] is True and rows["guest"]["hash_scheme"] == "empty"
    assert rows["legacy"]["hash_scheme"] == "des" and rows["inline"]["password_source"] == "passwd"
    assert rows["svc-backup"]["hash_scheme"] == "locked"
    assert rows["www-data"]["system"] and rows["www-data"]["login_shell"]
    assert not rows["root"]["system"] and rows["nobody"]["system"]
    assert rows["alice"]["admin_groups"] == ("adm", "wheel")


def _real_hashes() -> dict[str, str]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        names = {"SHA512": "sha512", "SHA256": "sha256", "MD5": "md5",
                 "BLOWFISH": "blowfish"}
        out = {names[m.name]: crypt.crypt("pw", crypt.mksalt(m)) for m in crypt.methods if m.name in names}
        out["des"] = crypt.crypt("pw", "ab")
    openssl = subprocess.run(["openssl", "passwd", "-6", "pw"], capture_output=True, text=True, check=True)
    out["sha512-openssl"] = openssl.stdout.strip()
    return out


def test_scheme_of_real_hashes_and_redaction():
    hashes = _real_hashes()
    assert {"sha512", "sha256", "md5", "des"} <= set(hashes)
    for name, value in hashes.items():
        red = redact_password(value)
        assert value not in red and len(red) < len(value)
        assert hash_scheme(red) == hash_scheme(value) == name.removesuffix("-openssl")
        assert hash_scheme(redact_password("!" + value)) == "locked"
    assert hash_scheme(redact_password("")) == "empty"
    assert hash_scheme("*") == hash_scheme("!!") == hash_scheme("!*") == "locked"
    assert hash_scheme("$y$<redacted>") == "yescrypt" and hash_scheme("$gy$<redacted>") == "gost-yescrypt"
    assert hash_scheme("$7$<redacted>") == "scrypt" and hash_scheme("$zz$<redacted>") == "unknown"


def _fixture_root(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    hashes = _real_hashes()
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "passwd").write_text(
        "root:x:0:0:root:/root:/bin/bash\n"
        "toor:x:0:0::/root:/bin/sh\n"
        "daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n"
        "www-data:x:33:33:www-data:/var/www:/bin/bash\n"
        f"old:{hashes['des']}:1001:1001::/home/old:/bin/bash\n"
        "alice:x:1000:1000:Alice:/home/alice:/bin/bash\n"
        "guest:x:1002:1002::/home/guest:/bin/bash\n")
    (etc / "shadow").write_text(
        f"root:{hashes['sha512']}:19700:0:99999:7:::\n"
        f"toor:{hashes['md5']}:19700:0:99999:7:::\n"
        "daemon:*:19469:0:99999:7:::\n"
        "www-data:*:19469:0:99999:7:::\n"
        f"alice:{hashes['sha256']}:19700:0:90:7:::\n"
        "guest::19700:0:99999:7:::\n")
    (etc / "shadow").chmod(0o640)
    (etc / "group").write_text("root:x:0:\nsudo:x:27:alice\nalice:x:1000:\nguest:x:1002:\n")
    (etc / "login.defs").write_text("# comment\nUID_MIN\t\t\t 1000\nUID_MAX\t\t\t60000\n")
    return tmp_path, hashes


def test_fixture_root_never_leaks_hashes(tmp_path):
    root, hashes = _fixture_root(tmp_path)
    probe = AccountsProbe()
    ctx = GatherContext(LocalTransport(root=str(root)))
    raw = probe.gather(ctx)
    observations = probe.observe(GatherContext(LocalTransport(root=str(root))))
    dumped = json.dumps(raw) + json.dumps([o.to_json() for o in observations])
    for value in hashes.values():
        assert value not in dumped
        assert value.rsplit("$", 1)[-1] not in dumped  # not even the hash part
    rows = {o.subject: o.attrs for o in observations}
    assert rows["toor"]["uid"] == 0 and rows["toor"]["hash_scheme"] == "md5"
    assert rows["old"]["hash_scheme"] == "des" and rows["old"]["password_source"] == "passwd"
    assert rows["guest"]["password_empty"] is True
    assert rows["alice"]["admin_groups"] == ("sudo",) and rows["alice"]["password_max_days"] == 90
    assert rows["www-data"]["system"] and not rows["alice"]["system"]
    assert ctx.limitations == []


@needs_root()
def test_unreadable_shadow_is_a_limitation_not_an_error():
    with open_tmpdir() as tmp:
        root, _ = _fixture_root(tmp)
        _check_as_nobody(root)


def _check_as_nobody(root: Path) -> None:

    def as_nobody() -> object:
        ctx = GatherContext(LocalTransport(root=str(root)))
        rows = AccountsProbe.parse(AccountsProbe().gather(ctx))
        return {"limitations": [m.en for m in ctx.limitations], "schemes": sorted({str(r.hash_scheme) for r in rows}),
                "old": next(r.hash_scheme for r in rows if r.name == "old")}

    result = run_as_nobody(as_nobody)
    assert any("/etc/shadow not readable" in text for text in result["limitations"])
    # Only the inline passwd hash is known without the shadow file.
    assert result["old"] == "des" and set(result["schemes"]) == {"None", "des"}


def test_live_this_machine():
    probe = AccountsProbe()
    ctx = GatherContext(LocalTransport())
    rows = {r.name: r for r in probe.parse(probe.gather(ctx))}
    assert rows["root"].uid == 0 and not rows["root"].system and rows["root"].login_shell
    assert rows["daemon"].system and not rows["daemon"].login_shell
    if LocalTransport().is_root:
        assert rows["root"].hash_scheme is not None and ctx.limitations == []
