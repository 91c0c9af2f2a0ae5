"""Registry of probes: every module in probes/host (and later network, remote) that defines a Probe subclass.

Adding a probe means adding its module; nothing else lists probes.
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache

from probes.base import Probe

PROBE_PACKAGES = ("probes.host",)


@cache
def all_probes(packages: tuple[str, ...] = PROBE_PACKAGES) -> tuple[type[Probe], ...]:  # type: ignore[type-arg]
    found: dict[str, type[Probe]] = {}  # type: ignore[type-arg]
    for package_name in packages:
        package = importlib.import_module(package_name)
        for info in pkgutil.iter_modules(package.__path__):
            module = importlib.import_module(f"{package_name}.{info.name}")
            for obj in vars(module).values():
                if (
                    isinstance(obj, type)
                    and issubclass(obj, Probe)
                    and obj is not Probe
                    and obj.__module__ == module.__name__
                    and getattr(obj, "id", None)
                ):
                    if obj.id in found:
                        raise RuntimeError(f"duplicate probe id {obj.id!r} in {module.__name__}")
                    found[obj.id] = obj
    return tuple(found[k] for k in sorted(found))


def get_probe(probe_id: str) -> type[Probe]:  # type: ignore[type-arg]
    for cls in all_probes():
        if cls.id == probe_id:
            return cls
    raise KeyError(probe_id)
