#!/usr/bin/env bash
# Archive retention where the store has no lifecycle rtdi may own (on-prem HDFS, or a prefix of
# an existing S3-compatible bucket): delete every hour partition of the archive whose records are
# all older than its topic's retention.
#
#   expire.sh [-D key=value]... [--dry-run] ROOT PREFIX=DAYS [PREFIX=DAYS]...
#
# ROOT is the archive's root as `hadoop fs` addresses it (hdfs://namenode:8020/rtdi/dc1/archive,
# s3a://bucket/dc1/archive); each PREFIX (`aws-us-east-1.trips/`) is a topic's directory below
# it, kept DAYS days. The archive job (infra/components/flink/archive.py) writes
#   ROOT/PREFIX/dt=YYYY-MM-DD/hr=HH/part-*
# where dt and hr are the records' Kafka timestamps in UTC, so the directory names say how old
# the records are, which is what the retention is about (file modification times say when Flink
# wrote them: a replay or a late record would keep an old hour forever). An hour is deleted once
# it has ended DAYS*24 hours ago; a day directory whose hours all go is deleted with them.
# Nothing else is ever touched: a name that is not a partition, a file where a directory should
# be, a prefix not given. Deleted data skips the trash (HDFS's trash would keep it, S3A's would
# copy it). Any error from `hadoop fs` stops the run before it deletes, exit 1; bad arguments exit
# 2. Run hourly with one run at a time (infra/targets/onprem.py declares the CronJob).
# -D options go to every `hadoop fs` call (the S3-compatible endpoint of the store).
set -euo pipefail

BATCH=200 # paths per `hadoop fs` call: one JVM for many paths, far below the argument limit
PARTITION_DT='^dt=[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$'
PARTITION_HR='^hr=([01][0-9]|2[0-3])$'
PREFIX_RE='^[A-Za-z0-9._-]+/$'

die() {
  echo "expire.sh: $*" >&2
  exit 2
}

options=()
dry_run=0
while (($#)); do
  case "$1" in
    -D)
      (($# >= 2)) || die "-D needs key=value"
      [[ "$2" == *=* ]] || die "-D $2: allowed: key=value"
      options+=(-D "$2")
      shift 2
      ;;
    --dry-run)
      dry_run=1
      shift
      ;;
    --)
      shift
      break
      ;;
    -*) die "unknown option $1; allowed: -D key=value, --dry-run" ;;
    *) break ;;
  esac
done
(($# >= 2)) || die "usage: expire.sh [-D key=value]... [--dry-run] ROOT PREFIX=DAYS..."
root="${1%/}"
shift
[[ "$root" == *://* ]] || die "ROOT $root: allowed: a URI (hdfs://..., s3a://...)"

declare -A keep_days=()
for rule in "$@"; do
  prefix="${rule%=*}"
  days="${rule##*=}"
  [[ "$rule" == *=* && "$prefix" =~ $PREFIX_RE && "$prefix" != ../ && "$prefix" != ./ ]] ||
    die "$rule: allowed: TOPIC/=DAYS, a topic's directory below the root"
  [[ "$days" =~ ^[1-9][0-9]{0,9}$ ]] && ((days <= 2147483647)) ||
    die "$rule: days $days; allowed: 1 to 2147483647"
  keep_days["${prefix%/}"]="$days"
done

fs() {
  hadoop fs ${options[@]+"${options[@]}"} "$@"
}

failed() {
  echo "expire.sh: $*" >&2
  exit 1
}

# `hadoop fs -ls` of directories: "<type+permissions> <replication> <owner> <group> <size> <date>
# <time> <path>" per entry ("Found N items" lines aside). Prints "d <path>" or "- <path>".
list() {
  local out
  out="$(fs -ls "$@")" || return 1
  awk '$1 ~ /^[-d]/ && NF >= 8 { p = $8; for (i = 9; i <= NF; i++) p = p " " $i;
       print substr($1, 1, 1), p }' <<<"$out"
}

# Runs "fs ARGS... PATH..." over the paths on stdin, BATCH at a time.
batched() {
  local paths=() p
  while IFS= read -r p; do
    paths+=("$p")
    if ((${#paths[@]} == BATCH)); then
      "$@" "${paths[@]}" || return 1
      paths=()
    fi
  done
  if ((${#paths[@]})); then
    "$@" "${paths[@]}" || return 1
  fi
}

errors="$(mktemp)"
trap 'rm -f "$errors"' EXIT

now="$(date -u +%s)"
# The last hour to delete, per topic, as "YYYY-MM-DDTHH": an hour [start, start + 1 h) goes when
# start + 1 h <= now - days, i.e. start <= now - days - 1 h, i.e. start <= that hour's start.
# ISO dates compare as strings.
declare -A last_hour=()
for topic in "${!keep_days[@]}"; do
  cutoff=$((now - keep_days[$topic] * 86400 - 3600))
  # Before 1970 no Kafka timestamp exists: nothing of this topic can have expired yet.
  ((cutoff >= 0)) || continue
  last_hour["$topic"]="$(date -u -d "@$cutoff" +%Y-%m-%dT%H)"
done

# The topics with a retention that exist under the root. A root not there yet is nothing
# archived yet; any other failure (the store unreachable, refused) is one.
if ! listing="$(list "$root" 2>"$errors")"; then
  if grep -qF "\`$root': No such file or directory" "$errors"; then
    echo "expire.sh: $root does not exist yet: nothing archived, nothing to expire"
    exit 0
  fi
  cat "$errors" >&2
  failed "listing $root failed: nothing deleted"
fi
topic_dirs=()
while read -r kind path; do
  [[ -n "$path" ]] || continue
  name="${path##*/}"
  if [[ "$kind" == d && -n "${last_hour[$name]+set}" ]]; then
    topic_dirs+=("$path")
  fi
done <<<"$listing"
if ((${#topic_dirs[@]} == 0)); then
  echo "expire.sh: no topic with a retention has data yet"
  exit 0
fi

# Their day directories that may hold an expired hour (the day of the topic's last hour or older).
listing="$(printf '%s\n' "${topic_dirs[@]}" | batched list)" || failed "listing the topics failed: nothing deleted"
day_dirs=()
while read -r kind path; do
  [[ -n "$path" ]] || continue
  name="${path##*/}"
  parent="${path%/*}"
  topic="${parent##*/}"
  [[ "$kind" == d && "$name" =~ $PARTITION_DT ]] || continue
  if [[ ! "${name#dt=}" > "${last_hour[$topic]%T*}" ]]; then
    day_dirs+=("$path")
  fi
done <<<"$listing"

# Within them, the expired hours; a day whose every entry is an expired hour goes whole.
declare -A expired_in=() others_in=()
hours=()
if ((${#day_dirs[@]})); then
  listing="$(printf '%s\n' "${day_dirs[@]}" | batched list)" || failed "listing the days failed: nothing deleted"
  while read -r kind path; do
    [[ -n "$path" ]] || continue
    name="${path##*/}"
    day_path="${path%/*}"
    day="${day_path##*/dt=}"
    topic_path="${day_path%/*}"
    topic="${topic_path##*/}"
    if [[ "$kind" == d && "$name" =~ $PARTITION_HR && ! "${day}T${name#hr=}" > "${last_hour[$topic]}" ]]; then
      hours+=("$path")
      expired_in["$day_path"]=$((${expired_in[$day_path]:-0} + 1))
    else
      others_in["$day_path"]=1
    fi
  done <<<"$listing"
fi

doomed=()
for day_path in "${!expired_in[@]}"; do
  if [[ -z "${others_in[$day_path]+set}" ]]; then
    doomed+=("$day_path")
  fi
done
for hour in ${hours[@]+"${hours[@]}"}; do
  if [[ -n "${others_in[${hour%/*}]+set}" ]]; then
    doomed+=("$hour")
  fi
done

if ((${#doomed[@]} == 0)); then
  echo "expire.sh: nothing has expired (${#topic_dirs[@]} topics, ${#day_dirs[@]} days looked at)"
  exit 0
fi
mapfile -t doomed < <(printf '%s\n' "${doomed[@]}" | sort)
for path in "${doomed[@]}"; do
  echo "expire: $path"
done
if ((dry_run)); then
  echo "expire.sh: dry run: ${#doomed[@]} paths (${#hours[@]} hours) would be deleted"
  exit 0
fi
printf '%s\n' "${doomed[@]}" | batched fs -rm -r -skipTrash >/dev/null ||
  failed "deleting failed: some of the paths above may be left"
echo "expire.sh: deleted ${#hours[@]} hours in ${#doomed[@]} paths"
