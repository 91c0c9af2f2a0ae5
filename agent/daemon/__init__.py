"""The long-running agent: agent.toml config, durable spool, scheduler, metrics, self-limits, sd_notify.

Light at import: nothing here imports probes, scapy or pydantic-heavy services until a run needs them (runs
happen in a child process, ``agent.daemon.job``), so the idle daemon stays small.
"""
