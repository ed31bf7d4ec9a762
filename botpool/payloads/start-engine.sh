#!/bin/sh
# Start the Docker engine (systemd if it runs, else dockerd in the background) and wait for it.
# Input: timeout (seconds). Used by the converge (tasks/engine.py) and scripts/bootstrap.sh.
#
# Without systemd nothing else will start dockerd: it is detached with setsid/nohup so it
# outlives the SSH session. A dockerd that is running but not answering yet is waited for, not
# started twice; a pid file left by a dead one (a restarted container) is removed, because
# dockerd refuses to start while it exists and its pid may belong to another process.
: "${timeout:?seconds to wait for the engine}"

if docker info >/dev/null 2>&1; then exit 0; fi
command -v docker >/dev/null 2>&1 || {
  echo "no docker client on this host (Debian 13 and later: package docker-cli)" >&2
  exit 1
}
if [ -d /run/systemd/system ]; then
  systemctl enable --now docker.service
elif ! pidof dockerd >/dev/null 2>&1; then
  rm -f /var/run/docker.pid
  setsid nohup dockerd >>/var/log/dockerd.log 2>&1 </dev/null &
fi
i=0
while [ "$i" -lt "$timeout" ]; do
  docker info >/dev/null 2>&1 && exit 0
  sleep 1
  i=$((i + 1))
done
echo "the Docker engine did not answer within $timeout s; the end of its log:" >&2
tail -n 20 /var/log/dockerd.log >&2 2>/dev/null || journalctl -u docker -n 20 >&2
exit 1
