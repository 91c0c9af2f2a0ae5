"""The probes layer's own errors. The agent maps them: an input error becomes its one-line user error (exit 2);
a failure after traffic went out becomes a failed test in the inspection record, naming what was sent to whom
(Art. 25 ¶3: the record must be truthful, so a test that sent packets is never dropped as a mere bad input)."""

from __future__ import annotations

from dataclasses import dataclass


class ProbeError(Exception):
    """Base of every error a probe raises on purpose."""


class ProbeInputError(ProbeError):
    """Bad input or a missing prerequisite, found before anything was sent or read (a bad port list, an unknown
    engine, no such interface). The message is one clear line for whoever gave the input."""


@dataclass(frozen=True, slots=True)
class SentTraffic:
    """What a test had already sent when it failed: the tool, its command line, and to whom."""

    tool: str  # nmap | builtin | icmp | arp | tcp | ...
    targets: tuple[str, ...]
    command: tuple[str, ...] = ()
    ports: str = ""


class ProbeFailedAfterSend(ProbeError):
    """A test failed after it had sent traffic (nmap died mid-scan, unreadable output). ``sent`` says what went
    out, so the agent records a failed test rather than a refusal."""

    def __init__(self, message: str, sent: SentTraffic) -> None:
        super().__init__(message)
        self.sent = sent


class ProbeCancelled(ProbeError):
    """The probe run's deadline passed or it was cancelled; raised by the transport inside a blocking call, so
    the worker thread unwinds and returns."""
