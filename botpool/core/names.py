"""Every name a host relies on, made in one place: containers, networks, labels, paths and
ports inside a pool, bot uids.

A deployment (one layout root on one Docker engine) is a *project*, as in docker compose:
its containers and networks carry the project's name, so two layouts with different roots
on one engine never collide, even when both have a user `carol`. The project of the default
root, /opt/botpool, is `botpool`; any other root's is its last folder's name and a short
hash of the whole path (`fleet-3f9a2c` for /srv/fleet), or `defaults.project` when set.
Names are joined with `_`, which no user, pool or profile name holds, so a pool's container
can never take an exchange's name, nor one project's name another's.
"""

from __future__ import annotations

import hashlib
import re

DEFAULT_ROOT = "/opt/botpool"
DEFAULT_PROJECT = "botpool"
LEGACY_NETWORK = "botpool"  # the one network every pool shared before networks per user

# Docker labels: botpool only ever touches what carries MANAGED=true and its own ROOT
MANAGED = "botpool.managed"
ROOT = "botpool.root"
PROJECT = "botpool.project"
ROLE = "botpool.role"  # pool | exchange
USER = "botpool.user"
POOL = "botpool.pool"
EXCHANGE = "botpool.exchange"
SPEC_HASH = "botpool.spec-hash"
VERSION = "botpool.version"
IMAGE = "botpool.image"  # on images botpool built (never MANAGED: containers inherit it)

# botpool writes it in every root it converges; it deletes or archives nothing in a root
# without it (a root set by mistake to a folder of other things loses nothing)
ROOT_MARKER = ".botpool-root"

# inside a pool container
MOUNT = "/botpool"  # the pool's folder on the host
SUPERVISOR_CONF = f"{MOUNT}/supervisord.conf"
SUPERVISORCTL = f"supervisorctl -c {SUPERVISOR_CONF}"
CONTAINER_FIRST_PORT = 8080  # the bot in slot n listens on 8080 + n in its pool
EXCHANGE_PORT = 8000  # the sandbox exchange in its container

# Each bot runs as its own uid and gid: BOT_UID_BASE + its host port. Unique on a host (ports
# are), stable (a pool keeps its port block), plain in `ps` (209003 is the bot on port 9003),
# and far above the uids of login accounts (1000 and up) and system users.
BOT_UID_BASE = 200_000


def project(root: str, explicit: str | None = None) -> str:
    """The project of a root: `defaults.project`, else `botpool` for the default root, else
    the root's last folder (as a name) and 6 hex digits of its path."""
    if explicit:
        return explicit
    if root == DEFAULT_ROOT:
        return DEFAULT_PROJECT
    stem = re.sub(r"[^a-z0-9-]+", "-", root.rstrip("/").rsplit("/", 1)[-1].lower()).strip("-")
    digest = hashlib.sha256(root.encode()).hexdigest()[:6]
    return f"{stem[:24] or 'root'}-{digest}"


def pool_container(project_name: str, pool: str) -> str:
    return f"{project_name}_{pool}"


def exchange_container(project_name: str, profile: str) -> str:
    return f"{project_name}_exchange_{profile}"


def user_network(project_name: str, user: str) -> str:
    """The Docker network of one user's pools on a host."""
    return f"{project_name}_{user}"


def bot_uid(host_port: int) -> int:
    return BOT_UID_BASE + host_port
