"""Run the sandbox exchange (a test double): python3 -m botpool.sandbox --help"""

from __future__ import annotations

import argparse
import signal
import sys
from typing import TextIO

from .market import (
    DEFAULT_PAIRS,
    DEFAULT_SEED,
    DEFAULT_STEP_SECONDS,
    DEFAULT_VOLATILITY,
)
from .server import serve


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python3 -m botpool.sandbox",
        description="botpool's sandbox exchange: a TEST DOUBLE of Binance's public spot REST "
        "API with synthetic, deterministic prices, so freqtrade dry-run bots trade offline.",
    )
    p.add_argument(
        "--listen",
        default="127.0.0.1",
        metavar="ADDRESS",
        help="address to listen on (%(default)s)",
    )
    p.add_argument(
        "--port", type=int, default=8000, metavar="N", help="TCP port, 0: any free (%(default)s)"
    )
    p.add_argument(
        "--pairs",
        metavar="A/B,C/D",
        help="comma-separated pairs to list instead of the fixed market list "
        f"({len(DEFAULT_PAIRS)} pairs, BTC/USDT to LTC/BTC: see the README)",
    )
    p.add_argument(
        "--seed",
        type=int,
        default=DEFAULT_SEED,
        metavar="N",
        help="same seed, same prices (%(default)s)",
    )
    p.add_argument(
        "--step-seconds",
        type=int,
        default=DEFAULT_STEP_SECONDS,
        metavar="N",
        help="prices change every N seconds (%(default)s)",
    )
    p.add_argument(
        "--volatility",
        type=float,
        default=DEFAULT_VOLATILITY,
        metavar="X",
        help="about the std of one step's relative move (%(default)s: ~0.4%% a minute, "
        "~3%% an hour at 5-second steps)",
    )
    p.add_argument(
        "--request-log",
        default="-",
        metavar="PATH",
        help="append one line per request (time, method, path, query, status, duration) "
        "to PATH; '-' is stderr (%(default)s)",
    )
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    pairs = None if args.pairs is None else [p.strip() for p in args.pairs.split(",") if p.strip()]
    log: TextIO = sys.stderr if args.request_log == "-" else open(args.request_log, "a")  # noqa: SIM115
    try:
        server = serve(
            args.listen, args.port, pairs, args.seed, args.step_seconds, args.volatility, log=log
        )
    except (ValueError, OSError) as exc:
        sys.exit(f"sandbox exchange: {exc}")
    # As a container's PID 1 nothing handles SIGTERM by default, so `docker stop` would wait
    # for its timeout. Stop at once instead (Ctrl-C too, without a traceback): answers under
    # way go out, every line of the request log is already flushed, and the exit code is 0.
    # Before the banner: whoever has read it may stop the sandbox.
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: server.stop())
    served = ", ".join(pairs) if pairs else f"the fixed list of {len(DEFAULT_PAIRS)} pairs"
    print(
        f"sandbox exchange (a test double) on {args.listen}:{server.server_address[1]} "
        f"serving {served} (seed {args.seed}, {args.step_seconds} s steps, "
        f"volatility {args.volatility})",
        file=sys.stderr,
        flush=True,
    )
    try:
        server.serve_forever()
    finally:
        server.server_close()
        if log is not sys.stderr:
            log.close()


if __name__ == "__main__":
    main()
