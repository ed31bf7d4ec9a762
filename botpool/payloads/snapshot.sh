#!/bin/sh
# What a host runs under one root, in sections that botpool.core.snapshot.parse reads: the
# engine, botpool's images, networks and containers (by label), the files, folders and
# hashes under the root, and each running pool's supervisor programs. Plain POSIX shell and
# the docker CLI: a bare host may have no Python. Every step prints what it can and goes on.
#
# Inputs (botpool.core.snapshot.command): root, mark (section prefix), the label names
# managed, root_label, role_label, spec_label and image_label, legacy_network (the shared
# network of older versions), marker (the root's marker file), supervisor_status (the text of
# supervisor_status.py, run by the pool's python3: it prints what `supervisorctl status`
# prints), and data_dirs (folder names never walked into, space separated: bots' data can be
# large).
: "${root:?}" "${mark:?}" "${managed:?}" "${root_label:?}" "${role_label:?}" "${spec_label:?}"
: "${image_label:?}" "${legacy_network:?}" "${marker:?}" "${supervisor_status:?}"
: "${data_dirs:?}"

section() { printf '%s%s\n' "$mark" "$1"; }

# find's prune expression: -name A -o -name B ...
set --
for d in $data_dirs; do
  [ $# -eq 0 ] || set -- "$@" -o
  set -- "$@" -name "$d"
done

section engine
command -v docker >/dev/null 2>&1 && docker version --format '{{.Server.Version}}' 2>/dev/null

section images
docker images --filter "label=$image_label" --format '{{.Repository}}:{{.Tag}}' 2>/dev/null

# ours (labelled with this root), and the unlabelled shared one of older versions
section networks
docker network ls --filter "label=$managed=true" \
  --format "{{.Name}}|{{.Label \"$root_label\"}}" 2>/dev/null |
  awk -F'|' -v root="$root" -v legacy="$legacy_network" \
    '$2 == root || ($1 == legacy && $2 == "") {print $1}'

section network-users
docker ps -a --format '{{.Names}}|{{.Networks}}' 2>/dev/null

# one JSON object a container: values are quoted by docker, never split on a separator
section containers
docker ps -a --filter "label=$managed=true" --filter "label=$root_label=$root" \
  --format "{\"name\":{{json .Names}},\"state\":{{json .State}},\
\"role\":{{json (.Label \"$role_label\")}},\"spec_hash\":{{json (.Label \"$spec_label\")}},\
\"networks\":{{json .Networks}},\"image\":{{json .Image}}}" 2>/dev/null

# everything but folders, links included (%f: the raw mode, file type and all)
section files
(cd "$root" 2>/dev/null && find pools exchanges monitoring jobs -mindepth 1 \( "$@" \) -prune -o ! -type d \
  -print0 2>/dev/null | xargs -0 -r stat -c '%f %u %g %n' 2>/dev/null)

section hashes
(cd "$root" 2>/dev/null && find pools exchanges monitoring jobs -mindepth 1 \( "$@" \) -prune -o -type f \
  -print0 2>/dev/null | xargs -0 -r sha256sum 2>/dev/null)

# upgrades this root rolled back (one file per image, named by its tag; converge writes
# them, root's only) and the images its upgrades left behind, oldest first
section upgrade-failed
for f in "$root/upgrades/failed"/*; do
  [ -f "$f" ] && printf '%s %s\n' "${f##*/}" "$(head -n 1 "$f" | cut -c 1-2000)"
done
section retired-images
cat "$root/upgrades/retired" 2>/dev/null

section marker
test -f "$root/$marker" && echo present

section host-folders # followed: an operator may link pools to a disk
(cd "$root" 2>/dev/null && stat -L -c '%a %u %g %n' . pools exchanges 2>/dev/null)

section directories
(cd "$root" 2>/dev/null && find pools exchanges monitoring jobs -mindepth 1 -maxdepth 4 -type d \
  -print0 2>/dev/null | xargs -0 -r stat -c '%a %u %g %n' 2>/dev/null)
(cd "$root" 2>/dev/null && stat -c '%a %u %g %n' monitoring 2>/dev/null)

# supervisor of every running pool; a pool whose supervisord does not answer says so
for c in $(docker ps --filter "label=$managed=true" --filter "label=$root_label=$root" \
  --filter "label=$role_label=pool" --format '{{.Names}}' 2>/dev/null); do
  section "supervisor $c"
  docker exec "$c" python3 -I -S -c "$supervisor_status" 2>&1
done
exit 0
