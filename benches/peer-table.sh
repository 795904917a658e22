#!/usr/bin/env bash
# Runs benches/peers.sh on several tarballs and prints one markdown table:
# every job a row, each tarball its columns (median seconds, the reference's
# median divided by the rootforge job's — how many times longer the peer
# takes — and bytes).
#
#   benches/peer-table.sh TARBALL[:RUNS]...     RUNS defaults to 3
#   e.g. benches/peer-table.sh minbase.tar:3 large.tar:1
#
# The environment is passed on to peers.sh (ROOTFORGE, ONLY, WORKDIR). Each
# tarball's full report, with its machine and tool versions, follows the table.
set -euo pipefail

[ $# -ge 1 ] || { echo "usage: $0 TARBALL[:RUNS]..." >&2; exit 2; }
here=$(dirname -- "$0")
work=$(mktemp -d "${TMPDIR:-/tmp}/peer-table.XXXXXX")
trap 'rm -rf -- "$work"' EXIT

status=0
names=() tsvs=()
for arg in "$@"; do
    tarball=${arg%:*} runs=3
    [ "$tarball" = "$arg" ] || runs=${arg##*:}
    name=$(basename -- "$tarball")
    names+=("$name")
    tsvs+=("$work/$name.tsv")
    echo "$0: $name, $runs runs per job ..." >&2
    TSV=$work/$name.tsv bash "$here/peers.sh" "$tarball" "$runs" >"$work/$name.md" || status=1
done

echo "## rootforge and its peers"
echo
echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "- machine: $(nproc) cpus, $(sed -n 's/^model name[[:space:]]*: //p;T;q' /proc/cpuinfo), $(uname -sr)"
echo "- command: benches/peer-table.sh $*"
echo "- x = this job's median / its reference's (the rootforge job making the same image):"
echo "  how many times longer the peer takes; rootforge rows read 1.00"
echo
head="| job | reference |"
rule="|---|---|"
for n in "${names[@]}"; do
    head+=" $n s | x | $n bytes |"
    rule+="---:|---:|---:|"
done
echo "$head"
echo "$rule"
# One row per job in peers.sh's order, joined across the tarballs' TSVs.
awk -F'\t' -v names="${names[*]}" '
    BEGIN { nn = split(names, n, " ") }
    {
        f = FILENAME; sub(/.*\//, "", f); sub(/\.tsv$/, "", f)
        if (!($1 in seen)) { seen[$1] = 1; order[++rows] = $1; label[$1] = $2; ref[$1] = $3 }
        med[$1, f] = $4; bytes[$1, f] = $7
    }
    END {
        for (r = 1; r <= rows; r++) {
            k = order[r]
            line = "| " label[k] " | " label[ref[k]] " |"
            for (i = 1; i <= nn; i++) {
                m = med[k, n[i]]; rm = med[ref[k], n[i]]
                if (m == "") { line = line " | | |"; continue }
                if (m == "failed") { line = line " failed | | |"; continue }
                x = (rm != "" && rm != "failed" && rm > 0) ? sprintf("%.2f", m / rm) : "n/a"
                line = line sprintf(" %.3f | %s | %s |", m, x, bytes[k, n[i]] == "" ? "-" : bytes[k, n[i]])
            }
            print line
        }
    }' "${tsvs[@]}"
for n in "${names[@]}"; do
    echo
    sed 's/^## /### /' "$work/$n.md"
done
exit "$status"
