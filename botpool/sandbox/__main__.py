"""Run the sandbox exchange: python3 -m botpool.sandbox --help"""

from __future__ import annotations

import argparse
import signal
import sys

from botpool.sandbox import serve


def main() -> None:
    p = argparse.ArgumentParser(
        prog="python3 -m botpool.sandbox",
        description="botpool's sandbox exchange (a test double of "
        "Binance's public spot REST API, with synthetic prices)",
    )
    p.add_argument("--listen", default="127.0.0.1", help="address to listen on")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument(
        "--pairs",
        default="",
        help="comma-separated, e.g. BTC/USDT,ETH/USDT (default: seven major USDT pairs)",
    )
    p.add_argument("--seed", type=int, default=42, help="same seed, same prices")
    p.add_argument("--step-seconds", type=int, default=5, help="prices change every N seconds")
    p.add_argument(
        "--volatility",
        type=float,
        default=0.001,
        help="about the relative std of one price step (0.001: ~0.35%% a minute)",
    )
    p.add_argument("--request-log", default="-", help="file for the request log ('-': stderr)")
    args = p.parse_args()
    log = sys.stderr if args.request_log == "-" else open(args.request_log, "a")  # noqa: SIM115
    pairs = [x.strip() for x in args.pairs.split(",") if x.strip()]
    server = serve(
        args.listen, args.port, pairs, args.seed, args.step_seconds, args.volatility, log=log
    )
    print(
        f"sandbox exchange on {args.listen}:{server.server_address[1]} serving "
        f"{', '.join(pairs) or 'default pairs'} (seed {args.seed})",
        file=sys.stderr,
        flush=True,
    )
    # As a container's PID 1 nothing handles SIGTERM by default: `docker stop` would wait for
    # its timeout. Stop at once instead (there is no state to save).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    server.serve_forever()


if __name__ == "__main__":
    main()
