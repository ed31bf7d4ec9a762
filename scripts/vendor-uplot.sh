#!/bin/sh
# Re-fetch the dashboard's chart library, uPlot, from the npm registry and check it against
# the integrity hash npm publishes for this exact version (pinned here), then copy the files
# the pages use and its licence into botpool/dashboard/static/vendor/uplot/.
#   scripts/vendor-uplot.sh          fetch, verify, copy
#   scripts/vendor-uplot.sh --check  fetch, verify, and fail if the vendored files differ
set -eu
VERSION=1.6.32
INTEGRITY=sha512-KIMVnG68zvu5XXUbC4LQEPnhwOxBuLyW1AHtpm6IKTXImkbLgkMy+jabjLgSLMasNuGGzQm/ep3tOkyTxpiQIw==
FILES="dist/uPlot.iife.min.js dist/uPlot.min.css LICENSE"
cd "$(dirname "$0")/.."
DEST=botpool/dashboard/static/vendor/uplot
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
tarball=$(cd "$work" && npm pack --silent "uplot@$VERSION")
actual="sha512-$(openssl dgst -sha512 -binary "$work/$tarball" | base64 -w0)"
if [ "$actual" != "$INTEGRITY" ]; then
    echo "uplot@$VERSION: integrity $actual is not the pinned $INTEGRITY; nothing copied" >&2
    exit 1
fi
tar -xzf "$work/$tarball" -C "$work"
for f in $FILES; do
    if [ "${1:-}" = --check ]; then
        cmp -s "$work/package/$f" "$DEST/$(basename "$f")" || { echo "$DEST/$(basename "$f") differs from uplot@$VERSION" >&2; exit 1; }
    else
        mkdir -p "$DEST"
        cp "$work/package/$f" "$DEST/$(basename "$f")"
    fi
done
echo "uplot@$VERSION verified ($INTEGRITY)"
