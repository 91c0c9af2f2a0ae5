"""The agent's actions as plain functions: a typed request in, a typed result out; they never print and never
parse argv. The CLI (and later the daemon and the collector's dispatch) call these.

One module per action: ``scan``, ``netscan``, ``remote``, ``inspect``, ``baseline`` (capture/accept/diff),
``notice`` (acknowledge, verify). ``context`` holds what every action is given: the state directory, the
validated config and the recorder. Heavy libraries (scapy, paramiko, nmap) are imported inside functions.
"""
