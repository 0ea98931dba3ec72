"""The support bundle's masker on megabytes of container logs, against the cheapest masking there is.

Baseline: `bytes.replace` of each secret value in clear (what a naive masker does, missing every
encoded form). Measured: `Redactor.redact`, which also finds URL, JSON and base64 forms (any offset,
nested) and key-shaped tokens. Both run on the same log, 20 secret values, a few canaries planted;
the ratio says what the full masking costs over the naive one, and MB/s what a bundle of logs pays.

    .venv/bin/python benchmarks/bench_redact.py [--mb 5] [--runs 5]
"""

from __future__ import annotations

import argparse
import base64
import random
import statistics
import string
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hfwizard.daytwo.redact import Redactor


def make_log(megabytes: float, secrets: list[str], seed: int = 1) -> bytes:
    rnd = random.Random(seed)
    lines = []
    size = 0
    while size < megabytes * 1e6:
        i = len(lines)
        line = (f"2026-11-30T04:{i // 60 % 60:02d}:{i % 60:02d}Z INFO request id={rnd.getrandbits(128):032x} "
                f"path=/api/v1/namespaces/highflame/pods/gateway-7d9f8b-xk2lp user=robot duration={i % 97}ms "
                f"trace=3f2a1b4c-5d6e-7f80-9a1b-{rnd.getrandbits(48):012x} msg=\"handled\"")
        if i % 5000 == 0:  # a few leaks, in clear and in base64
            secret = secrets[i % len(secrets)].encode()
            line += f" leaked={secret.decode()} blob={base64.b64encode(b'xy' + secret).decode()}"
        lines.append(line)
        size += len(line) + 1
    return "\n".join(lines).encode()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=float, default=5.0)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    rnd = random.Random(7)
    secrets = [f"secret-{i}-" + "".join(rnd.choices(string.ascii_letters + string.digits, k=24)) for i in range(20)]
    data = make_log(args.mb, secrets)
    redactor = Redactor(secrets)

    def naive() -> bytes:
        out = data
        for s in secrets:
            out = out.replace(s.encode(), b"[REDACTED]")
        return out

    base, full = [], []
    for run in range(args.runs):
        for fn, into in ((naive, base), (lambda: redactor.redact(data), full))[:: 1 if run % 2 else -1]:
            started = time.perf_counter()
            fn()
            into.append(time.perf_counter() - started)
    b, f = statistics.median(base), statistics.median(full)
    masked = redactor.redact(data)
    assert not any(s.encode() in masked for s in secrets)
    print(f"log {len(data) / 1e6:.1f} MB, {len(secrets)} secret values, median of {args.runs}")
    print(f"naive replace (clear only): {b * 1000:.0f} ms")
    print(f"Redactor.redact:            {f * 1000:.0f} ms  ({len(data) / 1e6 / f:.1f} MB/s)")
    print(f"ratio full / naive:         {f / b:.1f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
