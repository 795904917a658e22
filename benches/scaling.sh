#!/usr/bin/env bash
# The five-image Buildroot build (cpio+gzip, squashfs gzip 9, ext4, iso9660,
# tar) at 1, 2, ... threads up to the machine's cores: prints a markdown
# table of medians and speed-ups, and draws them as an SVG.
#
#   benches/scaling.sh TARBALL [RUNS] [SVG]      RUNS 3, SVG docs/scaling.svg
#
# ROOTFORGE names the binary (default: target/release/rootforge). Runs are
# interleaved over thread counts so a noisy spell hits each count alike.
set -euo pipefail

[ $# -ge 1 ] && [ $# -le 3 ] || { echo "usage: $0 TARBALL [RUNS] [SVG]" >&2; exit 2; }
here=$(dirname -- "$0")
tarball=$(realpath -- "$1")
runs=${2:-3}
svg=${3:-$here/../docs/scaling.svg}
rf=$(realpath -- "${ROOTFORGE:-$here/../target/release/rootforge}")
cores=$(nproc)
work=$(mktemp -d "${TMPDIR:-/tmp}/scaling.XXXXXX")
trap 'rm -rf -- "$work"' EXIT
cp -- "$rf" "$work/rootforge"
cat -- "$tarball" >/dev/null

declare -A wall
for ((r = 1; r <= runs; r++)); do
    for ((j = 1; j <= cores; j++)); do
        rm -rf -- "$work/out"
        s=$EPOCHREALTIME
        "$work/rootforge" build "$tarball" -q -o "$work/out" -j "$j" --profile buildroot \
            -f cpio,squashfs,ext4,iso9660,tar --cpio-compress gzip --squashfs-level 9
        e=$EPOCHREALTIME
        wall[$j]+="$(awk -v s="$s" -v e="$e" 'BEGIN {printf "%.6f", e - s}') "
        sync
    done
done
rm -rf -- "$work/out"

median() { tr ' ' '\n' | sed '/^$/d' | sort -g | awk '{v[NR] = $1} END {
    if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
rows=$work/rows
for ((j = 1; j <= cores; j++)); do
    echo "$j $(median <<<"${wall[$j]}")"
done >"$rows"

echo "## Scaling: five images from $(basename -- "$tarball")"
echo
echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC'); machine: $cores cpus," \
    "$(sed -n 's/^model name[[:space:]]*: //p;T;q' /proc/cpuinfo); $runs runs per count"
echo "- command: benches/scaling.sh $*"
echo
echo "| threads | median s | speed-up over 1 | efficiency |"
echo "|---:|---:|---:|---:|"
awk 'NR == 1 {t1 = $2} {printf "| %d | %.3f | %.2fx | %.0f%% |\n", $1, $2, t1 / $2, 100 * t1 / $2 / $1}' "$rows"

# Speed-up against threads, with the ideal line; plain SVG, no tools.
mkdir -p -- "$(dirname -- "$svg")"
awk -v cores="$cores" -v title="rootforge: five images from $(basename -- "$tarball")" '
    NR == 1 { t1 = $2 }
    { x[NR] = $1; y[NR] = t1 / $2; n = NR }
    END {
        W = 480; H = 360; L = 60; R = 20; T = 40; B = 50
        xmax = cores < 2 ? 2 : cores; ymax = xmax
        sx = (W - L - R) / (xmax - 1); sy = (H - T - B) / ymax
        printf "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" font-family=\"sans-serif\" font-size=\"12\">\n", W, H
        printf "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n"
        printf "<text x=\"%d\" y=\"22\" text-anchor=\"middle\" font-size=\"14\">%s</text>\n", W / 2, title
        for (i = 1; i <= xmax; i++) {
            px = L + (i - 1) * sx
            printf "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#ddd\"/>\n", px, T, px, H - B
            printf "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%d</text>\n", px, H - B + 16, i
        }
        for (v = 0; v <= ymax; v += 0.5) {
            py = H - B - v * sy
            printf "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#ddd\"/>\n", L, py, W - R, py
            printf "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%.1fx</text>\n", L - 6, py + 4, v
        }
        printf "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">threads (--jobs)</text>\n", (L + W - R) / 2, H - 12
        printf "<text x=\"16\" y=\"%d\" text-anchor=\"middle\" transform=\"rotate(-90 16 %d)\">speed-up over 1 thread</text>\n", (T + H - B) / 2, (T + H - B) / 2
        printf "<line x1=\"%d\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#999\" stroke-dasharray=\"4 4\"/>\n", L, H - B - sy, L + (xmax - 1) * sx, H - B - xmax * sy
        printf "<text x=\"%.1f\" y=\"%.1f\" fill=\"#999\" text-anchor=\"end\">ideal</text>\n", L + (xmax - 1) * sx - 12, H - B - xmax * sy + 28
        pts = ""
        for (i = 1; i <= n; i++) pts = pts sprintf("%.1f,%.1f ", L + (x[i] - 1) * sx, H - B - y[i] * sy)
        printf "<polyline points=\"%s\" fill=\"none\" stroke=\"#1f77b4\" stroke-width=\"2\"/>\n", pts
        for (i = 1; i <= n; i++) {
            px = L + (x[i] - 1) * sx; py = H - B - y[i] * sy
            printf "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"4\" fill=\"#1f77b4\"/>\n", px, py
            printf "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"%s\">%.2fx</text>\n", px + (i == n ? -8 : 8), py - 8, i == n ? "end" : "start", y[i]
        }
        print "</svg>"
    }' "$rows" >"$svg"
echo
echo "Figure: $svg"
