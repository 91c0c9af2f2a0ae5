"""Finding English in text meant for a Chinese reader (tests/test_zh.py).

A word counts as English when it is a plain alphabetic word (``removed``, ``Signed``, ``expired``) that is not on
the allow-list. Never English: text in backticks (commands), {placeholders}, and tokens that are identifiers
by their shape: paths, options, file names, dotted or underscored names, anything with a digit, CamelCase or
ALLCAPS (config keys such as PermitRootLogin, acronyms such as SSH).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

# Names of programs, protocols and tools that operators write in Latin letters in Chinese too; never plain
# English words (those must be translated).
ALLOWED = frozenset({
    "precaution", "root", "sudo", "sudoers", "shell", "bash", "sh", "dash", "zsh", "cron", "crontab", "anacron",
    "systemd", "systemctl", "journald", "nft", "nftables", "iptables", "ip6tables", "ufw", "firewalld", "sysctl",
    "fstab", "tmpfs", "sshd", "ssh", "openssh", "rpm", "dpkg", "nmap", "tcpdump", "chrony", "chronyd", "ntpd",
    "timesyncd", "rsyslog", "auditd", "aide", "lynis", "docker", "podman", "nodev", "nosuid", "noexec", "tcp",
    "udp", "icmp", "arp", "dhcp", "dns", "http", "https", "tls", "mqtt", "redis", "postgresql", "smb", "smbd",
    "samba", "telnet", "ftp", "tftp", "vnc", "rdp", "snmp", "ldap", "nfs", "rsh", "rlogin", "rexec", "rpcbind",
    "avahi", "cups", "passwd", "gshadow", "nologin", "uid", "gid", "suid", "sgid", "setuid", "setgid", "umask",
    "chmod", "chown", "usermod", "useradd", "userdel", "gpasswd", "chage", "pam", "login", "su", "getty", "lsusb",
    "udev",
    "modprobe", "usb", "usbguard", "bluetooth", "memfd", "ptrace", "md5", "sha", "yescrypt", "bcrypt", "ed25519",
    "rsa", "ecdsa", "dsa", "ipv", "mac", "cis", "utc", "pid", "ps", "ss", "r", "rootkit", "socat", "netcat", "nc",
    "ncat", "frp", "ngrok", "nps", "chisel", "gost", "cloudflare", "metasploit", "stratum", "windows", "blowfish",
    "logjam", "snooping", "rsync", "pwconv", "rhosts", "linger", "trap", "tunnel", "web", "cookie", "basic", "talk",
})

_BACKTICKS = re.compile(r"`[^`]*`")
_PLACEHOLDER = re.compile(r"\{[^{}]*\}")
_TOKEN = re.compile(r"[A-Za-z0-9_./:@=+~%#*?-]+")


def english_words(text: str, allowed: Iterable[str] = ()) -> list[str]:
    """The English words in ``text`` (in order), outside the allow-list and the extra ``allowed`` data words."""
    extra = {w.lower() for w in allowed}
    text = _PLACEHOLDER.sub("x0", _BACKTICKS.sub(" ", text))  # a placeholder reads as an identifier
    found = []
    for token in _TOKEN.findall(text):
        if _identifier(token):
            continue
        word = token.strip(".:-=+~%#*?@")
        if not word.isalpha():
            continue
        if word.lower() in ALLOWED or word.lower() in extra or word in extra:
            continue
        found.append(word)
    return found


def _identifier(token: str) -> bool:
    core = token.strip(".:,;")
    if not core:
        return True
    if any(c in core for c in "/_=@~%#*?+") or any(c.isdigit() for c in core):
        return True  # a path, an option value, a file or variable name, a version, a glob
    if core.startswith("-"):
        return True  # an option (--accept-new-host-key)
    if "." in core or ":" in core or "-" in core:
        return True  # a dotted name (ld.so.preload, net.ipv4.x), a key:value, a hyphenated id (PC-SSH-001)
    letters = [c for c in core if c.isalpha()]
    if len(letters) >= 2 and all(c.isupper() for c in letters):
        return True  # an acronym (SSH, TCP, USB)
    return any(c.isupper() for c in core[1:])  # CamelCase: a configuration key (PermitRootLogin)


def data_words(values: Iterable[object]) -> set[str]:
    """Every word inside the given data values (subjects, paths, host names, commands): data is shown as is."""
    out: set[str] = set()
    for value in values:
        out.update(w.lower() for w in re.findall(r"[A-Za-z]+", str(value)))
    return out
