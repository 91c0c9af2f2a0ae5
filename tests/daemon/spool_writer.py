"""A real spool writer for the kill -9 test: puts items (and acks some) forever, printing each key only after
its transaction committed, so the test knows exactly what the spool promised."""

from __future__ import annotations

import random
import sys
from pathlib import Path

from agent.daemon.spool import Priority, Spool, SpoolItem


def main() -> None:
    path, start = Path(sys.argv[1]), int(sys.argv[2])
    spool = Spool(path, max_bytes=1024**3, min_free_bytes=1)
    rng = random.Random(start)
    n = start
    while True:
        batch = [SpoolItem(f"k{n + i}", "finding", {"n": n + i, "pad": "x" * rng.randrange(10, 4000)},
                           Priority(rng.randrange(3))) for i in range(rng.randrange(1, 8))]
        spool.put_many(batch)
        sys.stdout.write("".join(f"PUT {item.key}\n" for item in batch))
        sys.stdout.flush()
        n += len(batch)
        if rng.random() < 0.3:
            keys = [b.key for b in spool.batch(max_items=rng.randrange(1, 20))]
            sys.stdout.write("".join(f"ACKING {k}\n" for k in keys))  # may be gone if killed during the ack
            sys.stdout.flush()
            spool.ack(keys)
            sys.stdout.write("".join(f"ACK {k}\n" for k in keys))
            sys.stdout.flush()


if __name__ == "__main__":
    main()
