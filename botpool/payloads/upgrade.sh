#!/bin/sh
# Move one pool to another image behind a health gate; roll it back if it fails
# (botpool.core.upgrade explains why and gives the inputs):
#   1. stop the old container (its bots flush their databases) and back up every bot's
#      database with the old image and the backup payload (pre-upgrade, tagged source_tag);
#      a downgrade then puts back each bot's newest backup matching restore_glob
#   2. keep the old container aside (renamed, stopped), create the new one in its place
#   3. gate: every program RUNNING and every bot's API answering within `timeout` seconds
#      (a program FATAL fails it at once: supervisor never retries one), then no program
#      restarting or stopping for `settle` seconds
#   4. passed: the old container goes, source is recorded as retired, target's failure record
#      (a retry) goes. Failed: the new container goes, each bot's database is put aside and
#      its pre-upgrade backup restored, the old container comes back, the failure is recorded
#      in upgrades/failed/<target_tag>, exit 1 naming the pool, the bot and its last log lines.
: "${root:?}" "${pool:?}" "${container:?}" "${aside:?}" "${source:?}" "${target:?}"
: "${source_tag:?}" "${target_tag:?}" "${stamp:?}" "${programs:?}" "${timeout:?}"
: "${settle:?}" "${mount:?}" "${supervisor_status:?}" "${root_label:?}" "${run_new:?}" "${job:?}"
: "${database:?}" "${bots?}" "${prepare?}" "${restore_glob?}"
set -u

say() { printf '%s\n' "$*" >&2; }
now() { date +%s; }
clean() { tr -cd '\11\12\40-\176' | cut -c 1-300; } # what a bot wrote, printable and short
# supervisor_status.py: what `supervisorctl status` prints, with its exit codes
status() { docker exec "$container" python3 -I -S -c "$supervisor_status" 2>&1; }
db_of() { printf '%s/pools/%s/bots/%s/user_data/%s' "$root" "$pool" "$1" "$database"; }
# newest USER BOT: the newest of the bot's pre-upgrade backups matching restore_glob (the glob
# sorts by name, and names start with their UTC stamp), in $found ("" if none)
newest() {
  found=""
  for f in "$root/backups/$1/$2/pre-upgrade/"$restore_glob; do [ -f "$f" ] && found=$f; done
}
backup_of() { printf '%s/backups/%s/%s/pre-upgrade/%s-from-%s.sqlite.gz' "$root" "$1" "$2" "$stamp" "$3"; }

# put_back BOT UID FILE SUFFIX: the bot's database (and its WAL) aside as <db>.SUFFIX, renamed
# and never deleted, then FILE (a gzipped backup; none: nothing) in its place as the bot's own
put_back() {
  db=$(db_of "$1")
  for end in "" -wal -shm -journal; do
    if [ -e "$db$end" ] || [ -L "$db$end" ]; then mv -T "$db$end" "$db.$4$end" || return 1; fi
  done
  [ -n "$3" ] || return 0
  staged="$root/.staging/upgrade-$pool-$1.sqlite"
  install -d -m 0700 "$root/.staging" && gzip -dc "$3" >"$staged" &&
    chown "$2:$2" "$staged" && chmod 0600 "$staged" && mv -T "$staged" "$db"
}

# --- 1. stop, back up ------------------------------------------------------------------
# the newest pre-upgrade backup of each bot from the target's version (a downgrade): all
# there before anything stops, or nothing happens
if [ -n "$restore_glob" ]; then
  while read -r user bot uid port program; do
    [ -n "$user" ] || continue
    newest "$user" "$bot"
    if [ -z "$found" ] && [ -e "$(db_of "$bot")" ]; then
      say "pool $pool: no pre-upgrade backup of $user/$bot from freqtrade ${restore_glob#\*-from-} to go back to: nothing was changed"
      exit 1
    fi
  done <<EOF
$bots
EOF
fi

docker stop -t 45 "$container" >/dev/null || { say "pool $pool: could not stop $container"; exit 1; }
install -d -m 0700 "$root/backups" "$root/upgrades"
if ! docker run --rm --network none --user 0:0 --cap-drop ALL --cap-add SETUID \
  --cap-add SETGID --cap-add KILL --security-opt no-new-privileges \
  -v "$job:/job:ro" -v "$root/pools:/pools:rw" -v "$root/backups:/backups:rw" \
  "$source" python3 /job/backup.py pre-upgrade "$source_tag" --stamp "$stamp" >&2; then
  docker start "$container" >/dev/null
  say "pool $pool: its pre-upgrade backup failed (above), so it was not upgraded: it runs on $source again"
  exit 1
fi

if [ -n "$restore_glob" ]; then
  while read -r user bot uid port program; do
    [ -n "$user" ] || continue
    newest "$user" "$bot"
    put_back "$bot" "$uid" "$found" "before-downgrade-$stamp" ||
      { say "pool $pool: could not put back $user/$bot's backup $found"; exit 1; }
    say "$user/$bot: back to its pre-upgrade backup ${found##*/} (its database kept as $database.before-downgrade-$stamp)"
  done <<EOF
$bots
EOF
fi

# --- 2. the old container aside, the new one in its place ---------------------------------
owner=$(docker inspect -f "{{index .Config.Labels \"$root_label\"}}" "$aside" 2>/dev/null) || owner=none
if [ "$owner" = "$root" ]; then
  docker rm -f "$aside" >/dev/null # a leftover of an interrupted upgrade
elif [ "$owner" != none ]; then
  docker start "$container" >/dev/null
  say "pool $pool: a container named $aside exists that botpool (root $root) did not create: rename or remove it"
  exit 1
fi
docker rename "$container" "$aside" || { docker start "$container" >/dev/null; exit 1; }

# --- 3. the gate ---------------------------------------------------------------------------
failed_program=""
why=""

running() { # every program RUNNING in the status given; else the first that is not
  for p in $programs; do
    if ! printf '%s\n' "$1" | grep -qE "^$p +RUNNING"; then failed_program=$p; return 1; fi
  done
}

answering() { # every bot's API answers /api/v1/ping inside the pool; else the first that does not
  while read -r user bot uid port program; do
    [ -n "$user" ] || continue
    docker exec "$container" python3 -c "import urllib.request as u; u.urlopen('http://127.0.0.1:$port/api/v1/ping', timeout=3)" \
      >/dev/null 2>&1 || { failed_program=$program; return 1; }
  done <<EOF
$bots
EOF
}

pids() { printf '%s\n' "$1" | awk '$2 == "RUNNING" {print $1, $4}' | sort; }

given_up() { # the first program supervisor gave up starting (FATAL: it never retries)
  for p in $programs; do
    if printf '%s\n' "$1" | grep -qE "^$p +FATAL"; then failed_program=$p; return 0; fi
  done
  return 1
}

gate() {
  deadline=$(($(now) + timeout))
  until current=$(status) && running "$current" && answering; do
    if given_up "$current"; then
      why="$failed_program is FATAL: it exited at every start and supervisor gave up"
      return 1
    fi
    if [ "$(now)" -ge "$deadline" ]; then
      why="$failed_program was not RUNNING with its API answering within ${timeout}s (upgrades.health_timeout_seconds)"
      return 1
    fi
    sleep 2
  done
  before=$(pids "$current")
  end=$(($(now) + settle))
  while [ "$(now)" -lt "$end" ]; do
    sleep 2
    current=$(status)
    if ! running "$current" || [ "$(pids "$current")" != "$before" ]; then
      [ -n "$failed_program" ] || failed_program=$(printf '%s\n%s\n' "$before" "$(pids "$current")" | sort | uniq -u | head -n 1 | cut -d' ' -f1)
      why="$failed_program restarted or stopped within ${settle}s of starting (upgrades.settle_seconds)"
      return 1
    fi
  done
  answering || { why="$failed_program stopped answering its API"; return 1; }
}

evidence() { # the pool's programs and the failing bot's last log lines, read as that bot
  say "supervisor in the new container:"
  status | clean >&2
  while read -r user bot uid port program; do
    [ "$program" = "$failed_program" ] || continue
    say "the last lines of $user/$bot's log:"
    docker exec --user "$uid:$uid" "$container" tail -n 15 "$mount/bots/$bot/logs/freqtrade.log" 2>&1 | clean >&2
  done <<EOF
$bots
EOF
}

rollback() {
  docker rm -f "$container" >/dev/null 2>&1
  while read -r user bot uid port program; do
    [ -n "$user" ] || continue
    backup=$(backup_of "$user" "$bot" "$source_tag")
    [ -f "$backup" ] || backup="" # it never had a database: nothing to put back
    put_back "$bot" "$uid" "$backup" "after-failed-upgrade-$stamp" ||
      say "pool $pool: could not restore $user/$bot from $backup: restore it with botpool restore"
  done <<EOF
$bots
EOF
  if ! { docker rename "$aside" "$container" && docker start "$container" >/dev/null; }; then
    say "pool $pool: its old container $aside could not be started again: start it by hand"
  fi
  install -d -m 0700 "$root/upgrades/failed"
  printf '%s\n' "$failed_program: $why (at $stamp)" >"$root/upgrades/failed/$target_tag"
}

if ! { eval "$prepare" && eval "$run_new"; }; then
  failed_program=$container
  why="the new container did not start"
elif gate; then
  docker rm "$aside" >/dev/null
  rm -f "$root/upgrades/failed/$target_tag"
  retired="$root/upgrades/retired"
  { grep -vxF "$source" "$retired" 2>/dev/null; printf '%s\n' "$source"; } >"$retired.new"
  mv -f "$retired.new" "$retired"
  say "pool $pool: on $target, passed its health gate (the pre-upgrade backups: backups/<user>/<bot>/pre-upgrade/$stamp-from-$source_tag.sqlite.gz)"
  exit 0
fi

evidence
rollback
say "pool $pool FAILED its upgrade to $target: $why."
say "It was rolled back: it runs on $source again with every bot's pre-upgrade database (the databases of the failed attempt are kept beside each as $database.after-failed-upgrade-$stamp)."
say "The other pools of this host were not touched. The next converge will not retry this image: change the layout, or converge with --data botpool_retry_upgrade=true."
exit 1
