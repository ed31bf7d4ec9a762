"""The dashboard's web application: three pages and their JSON, read-only.

Flask (a WSGI framework by the authors of Jinja2, which botpool already renders with) served
by gevent's WSGI server: the process loads a pyinfra inventory, and pyinfra's CLI package
patches the whole process for gevent, under which asyncio servers (uvicorn) hang; gevent's
own server is made for such a process and comes with pyinfra. Charts are uPlot, vendored in
static/vendor (scripts/vendor-uplot.sh), so the pages need no internet.

Everything a host or bot said is untrusted: the templates autoescape it, the scripts put it
in the page as text only (never as HTML), and the Content-Security-Policy allows scripts and
styles from the dashboard itself only. No page or answer carries a secret: bot logins stay
on the hosts (the probe reads them there), settings come from the plan without credentials.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import re
import shlex
import signal
import sys
import threading
from typing import Any
from urllib.parse import urlencode

from flask import Flask, Response, abort, jsonify, redirect, render_template, request

from botpool.core.plan import BotPlan, PoolPlan
from botpool.dashboard import model, prometheus
from botpool.dashboard.collect import Fleet
from botpool.dashboard.model import HostReading
from botpool.hosts import tunnel

DEFAULT_PORT = 8790
COOKIE = "botpool_dashboard"
NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")  # layout names (users, bots, pools, hosts)
HOST_NAME = re.compile(r"[@A-Za-z0-9][A-Za-z0-9._:@-]{0,252}")  # inventory names
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


def is_loopback(address: str) -> bool:
    if address == "localhost":
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def heat_class(share: float | None) -> str:
    """The heatmap colour of memory / limit: h0 (empty) .. h10 (at or over the limit)."""
    return "hn" if share is None else f"h{min(10, max(0, int(share * 10)))}"


FILTERS = {
    "mib": lambda v: "no data" if v is None else f"{v:,.0f} MiB",
    "percent": lambda v: "no data" if v is None else f"{v:.0%}",
    "heat": heat_class,
    "none": lambda v: "no data" if v is None else v,
    "query": lambda d: urlencode({k: v for k, v in d.items() if v is not None}),
}


def create_app(fleet: Fleet, token: str | None = None) -> Flask:
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = 0
    app.jinja_env.filters.update(FILTERS)

    @app.before_request
    def authorize() -> Any:
        if token is None:
            return None
        given = request.args.get("token")
        if given is not None:  # once, from the printed URL: then a cookie, and a clean URL
            if not hmac.compare_digest(given.encode(), token.encode()):
                abort(403)
            args = {k: v for k, v in request.args.items() if k != "token"}
            target = request.path + ("?" + urlencode(args) if args else "")
            response = redirect(_local(target))
            response.set_cookie(COOKIE, token, httponly=True, samesite="Strict")
            return response
        header = request.headers.get("Authorization", "")
        offered = header.removeprefix("Bearer ") if header.startswith("Bearer ") else None
        offered = offered or request.cookies.get(COOKIE)
        if offered is None or not hmac.compare_digest(offered.encode(), token.encode()):
            abort(401)
        return None

    @app.after_request
    def secure(response: Response) -> Response:
        response.headers.update(SECURITY_HEADERS)
        return response

    def window() -> str:
        value = request.args.get("window", prometheus.DEFAULT_WINDOW)
        if value not in prometheus.WINDOWS:
            abort(400, f"window must be one of {', '.join(prometheus.WINDOWS)}")
        return value

    def user() -> str | None:
        value = request.args.get("user") or None
        if value is not None and not NAME.fullmatch(value):
            abort(400, "user: lowercase letters, digits and -")
        return value

    def common(win: str, who: str | None) -> dict[str, Any]:
        return {
            "window": win,
            "windows": list(prometheus.WINDOWS),
            "user": who,
            "interval": fleet.interval_s,
            "refreshes": fleet.refreshes,
        }

    @app.get("/")
    def fleet_page() -> str:
        win, who = window(), user()
        view = model.fleet(fleet.window(win), win, who)
        return render_template("fleet.html", fleet=view, **common(win, who))

    @app.get("/api/fleet")
    def fleet_json() -> Response:
        win, who = window(), user()
        view = model.fleet(fleet.window(win), win, who)
        return jsonify({**fleet_as_dict(view), "refreshes": fleet.refreshes})

    @app.get("/pool/<host>/<pool>")
    def pool_page(host: str, pool: str) -> str:
        win = window()
        reading, plan = find_pool(fleet.window(win), host, pool)
        view = model.pool_view(reading, plan, prometheus.vector(reading.answers.get("bots")))
        host_view = model.host_view(reading)
        return render_template(
            "pool.html", pool=view, reading=reading, host=host_view, **common(win, None)
        )

    @app.get("/api/pool/<host>/<pool>")
    def pool_json(host: str, pool: str) -> Response:
        win = window()
        readings = fleet.window(win)
        reading, plan = find_pool(readings, host, pool)
        view = model.pool_view(reading, plan, prometheus.vector(reading.answers.get("bots")))
        charts = model.pool_charts(reading, plan, model.grid(win, readings))
        return jsonify({"pool": pool_as_dict(view), "charts": charts, "error": reading.error})

    @app.get("/bot/<user_name>/<bot>")
    def bot_page(user_name: str, bot: str) -> str:
        win = window()
        reading, plan = find_bot(fleet.window(win), user_name, bot)
        samples = prometheus.vector(reading.answers.get("bots"))
        return render_template(
            "bot.html",
            bot=model.bot_view(reading, plan, samples),
            settings=model.settings_of(plan),
            tunnel=tunnel_line(fleet, reading, plan),
            layout=next(r.remote.layout for r in fleet.readers if r.remote.name == reading.name),
            **common(win, None),
        )

    @app.get("/api/bot/<user_name>/<bot>")
    def bot_json(user_name: str, bot: str) -> Response:
        win = window()
        readings = fleet.window(win)
        reading, plan = find_bot(readings, user_name, bot)
        view = model.bot_view(reading, plan, prometheus.vector(reading.answers.get("bots")))
        charts = model.bot_charts(reading, plan, model.grid(win, readings))
        return jsonify({"bot": bot_as_dict(view), "charts": charts, "error": reading.error})

    return app


def _local(target: str) -> str:
    """A redirect that stays on this site (never `//elsewhere`)."""
    return "/" + target.lstrip("/\\")


def find_pool(readings: list[HostReading], host: str, pool: str) -> tuple[HostReading, PoolPlan]:
    if not HOST_NAME.fullmatch(host) or not NAME.fullmatch(pool):
        abort(404)
    for reading in readings:
        plan = reading.host_plan
        if reading.name == host and plan:
            for candidate in plan.pools:
                if candidate.name == pool:
                    return reading, candidate
    abort(404)


def find_bot(readings: list[HostReading], user: str, bot: str) -> tuple[HostReading, BotPlan]:
    if not NAME.fullmatch(user) or not NAME.fullmatch(bot):
        abort(404)
    for reading in readings:
        plan = reading.host_plan
        for candidate in plan.bots if plan else ():
            if candidate.user == user and candidate.name == bot:
                return reading, candidate
    abort(404)


def tunnel_line(fleet: Fleet, reading: HostReading, bot: BotPlan) -> str:
    """How to open the bot's FreqUI from this machine: `botpool tunnel`'s ssh line for it."""
    remote = next(r.remote for r in fleet.readers if r.remote.name == reading.name)
    if remote.name == "@local":
        return f"# on this machine, no tunnel needed: http://127.0.0.1:{bot.host_port}"
    assert reading.plan is not None
    try:
        port = tunnel.local_port(reading.plan, bot)
        argv = tunnel.ssh_argv(remote.name, remote.data, [(bot, port)])
    except tunnel.TunnelError as exc:
        return f"# {exc}"
    return f"{shlex.join(argv)}\n# then http://127.0.0.1:{port}"


# --- JSON (every string from a host is data, never markup) ---------------------------------


def bot_as_dict(bot: model.BotView) -> dict[str, Any]:
    return {
        "key": bot.key,
        "user": bot.user,
        "name": bot.name,
        "pool": bot.pool,
        "host": bot.host,
        "state": bot.state,
        "health": bot.health,
        "failed": [{"check": c.name, "message": c.message} for c in bot.failed],
        "open_trades": bot.open_trades,
        "closed_trades": bot.closed_trades,
        "metrics": bot.metrics,
    }


def pool_as_dict(pool: model.PoolView) -> dict[str, Any]:
    return {
        "name": pool.name,
        "user": pool.user,
        "host": pool.host,
        "limit_mb": pool.limit_mb,
        "used_mb": pool.used_mb,
        "programs": [
            {"name": p.name, "state": p.state, "pid": p.pid, "uptime_s": p.uptime_s}
            for p in pool.programs
        ],
        "bots": [bot_as_dict(b) for b in pool.bots],
    }


def fleet_as_dict(fleet: model.Fleet) -> dict[str, Any]:
    return {
        "window": fleet.window,
        "counts": fleet.counts,
        "hosts": [
            {
                "name": h.name,
                "error": h.error,
                "monitoring": h.monitoring,
                "used_mb": h.used_mb,
                "planned_mb": h.planned_mb,
                "total_mb": h.total_mb,
                "cpu_busy": h.cpu_busy,
                "alerts": len(h.alerts),
                "pools": [pool_as_dict(p) for p in h.pools],
            }
            for h in fleet.hosts
        ],
        "alerts": [vars(a) for a in fleet.alerts],
        "times": fleet.times,
        "heat": [vars(r) for r in fleet.heat],
    }


# --- serving --------------------------------------------------------------------------------


class DashboardError(Exception):
    pass


def read_token(path: str) -> str:
    """The token from its file: the owner's only (0600), at least 16 characters."""
    try:
        mode = os.stat(path).st_mode
        text = open(path).read().strip()  # noqa: SIM115 - a small file, read once
    except OSError as exc:
        raise DashboardError(f"--token {path}: {exc.strerror}") from None
    if mode & 0o077:
        raise DashboardError(f"--token {path}: others may read it; chmod 600 {path}")
    if len(text) < 16 or any(c.isspace() for c in text):
        raise DashboardError(f"--token {path}: the token must be one word of 16 characters or more")
    return text


def serve(fleet: Fleet, listen: str, port: int, token: str | None) -> int:
    """Serve until SIGINT or SIGTERM; the fleet is refreshed in the background meanwhile."""
    import gevent
    from gevent.pywsgi import WSGIServer

    if not is_loopback(listen) and token is None:
        raise DashboardError(
            f"--listen {listen} is reachable beyond this machine: give --token FILE "
            "(a secret only the owner can read), or listen on 127.0.0.1 and use an SSH tunnel"
        )
    # log=None: no access log, since a URL can hold the token once
    server = WSGIServer((listen, port), create_app(fleet, token), log=None, error_log=sys.stderr)
    try:
        server.start()
    except OSError as exc:
        raise DashboardError(f"cannot listen on {listen}:{port}: {exc.strerror}") from None
    shown = f"[{listen}]" if ":" in listen else listen
    suffix = "/?token=<the token in your --token file>" if token else "/"
    print(f"botpool dashboard on http://{shown}:{server.server_port}{suffix}", flush=True)
    print(
        f"reading {len(fleet.readers)} host(s) every {fleet.interval_s:g} s; Ctrl-C stops",
        file=sys.stderr,
        flush=True,
    )
    stop = threading.Event()
    threading.Thread(target=fleet.run, args=(stop,), daemon=True).start()
    for signum in (signal.SIGINT, signal.SIGTERM):
        gevent.signal_handler(signum, server.stop)
    server.serve_forever()
    stop.set()
    return 0
