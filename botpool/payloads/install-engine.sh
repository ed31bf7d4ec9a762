#!/bin/sh
# Install the distribution's Docker engine and its client (used by tasks/engine.py).
#
# docker.io is the engine's package name on Debian and Ubuntu. Up to Debian 12 it holds the
# `docker` client too; Debian 13 (trixie) moved the client to docker-cli, which docker.io only
# recommends, and recommends are not installed: without it nothing could talk to the engine.
set -e
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends docker.io
command -v docker >/dev/null 2>&1 || apt-get install -y -q --no-install-recommends docker-cli
