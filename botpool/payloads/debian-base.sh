#!/bin/sh
# Make the local Debian base image (needs root, debootstrap and Docker): a minbase rootfs,
# imported with `docker import`. Inputs: suite, mirror, tag, and changes (the quoted
# `--change` arguments: `docker import` gives an image with no environment, so PATH and LANG
# are set, and a label lets the host snapshot see it like every other image botpool built).
: "${suite:?}" "${mirror:?}" "${tag:?}" "${changes:?}"
set -e
rootfs=$(mktemp -d /var/tmp/botpool-rootfs.XXXXXX)
trap 'rm -rf "$rootfs"' EXIT
debootstrap --variant=minbase "$suite" "$rootfs" "$mirror" >"$rootfs.log" 2>&1 || {
  tail -n 30 "$rootfs.log" >&2
  rm -f "$rootfs.log"
  exit 1
}
rm -f "$rootfs.log"
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
# changes holds several quoted arguments: split by eval, on purpose
eval "set -- $changes"
tar -C "$rootfs" -c . | docker import "$@" - "$tag" >/dev/null
