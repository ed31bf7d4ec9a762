#!/bin/sh
# Remove the pool images a root's upgrades left behind (folder/retired, oldest first) or that
# failed (folder/failed/<tag>), once no container of the engine uses them. Kept: the newest
# image left behind (the way back of the last upgrade) and the images in `keep` (the plan's).
# Inputs (botpool.core.upgrade.prune_command): folder, keep (space separated), repository.
: "${folder:?}" "${keep?}" "${repository:?}"

used=$(docker ps -a --format '{{.Image}}' 2>/dev/null)
previous=$(tail -n 1 "$folder/retired" 2>/dev/null)
candidates=$(
  head -n -1 "$folder/retired" 2>/dev/null
  for f in "$folder/failed"/*; do [ -f "$f" ] && printf '%s:%s\n' "$repository" "${f##*/}"; done
)
for image in $candidates; do
  case " $keep " in *" $image "*) continue ;; esac
  [ "$image" != "$previous" ] || continue
  printf '%s\n' "$used" | grep -qxF "$image" && continue
  docker image inspect "$image" >/dev/null 2>&1 || continue
  docker rmi "$image" >/dev/null && echo "removed $image (no container uses it)"
done
# the list keeps what is still there, and the previous image last
if [ -f "$folder/retired" ]; then
  while read -r image; do
    [ "$image" = "$previous" ] || ! docker image inspect "$image" >/dev/null 2>&1 || echo "$image"
  done <"$folder/retired" >"$folder/retired.new"
  [ -z "$previous" ] || echo "$previous" >>"$folder/retired.new"
  mv -f "$folder/retired.new" "$folder/retired"
fi
exit 0
