#!/usr/bin/env bash
# Regenerates docs/screenshot.png: the app in --demo mode under a virtual X display.
# Needs xvfb, xdotool and imagemagick (apt-get install xvfb xdotool imagemagick). Usage: scripts/screenshot.sh [--release]
set -euo pipefail
cd "$(dirname "$0")/.."
profile=debug
[[ "${1:-}" == "--release" ]] && profile=release
cargo build ${1:+"$1"} -p bastionless
bin="${CARGO_TARGET_DIR:-target}/$profile/bastionless"

display=:97
Xvfb "$display" -screen 0 1280x800x24 -nolisten tcp &
xvfb=$!
trap 'kill "$app" "$xvfb" 2>/dev/null || true' EXIT
sleep 0.5
DISPLAY="$display" "$bin" --demo &
app=$!
# The inventory loads from the in-process simulator within a second; give the window time to map.
sleep "${SCREENSHOT_WAIT:-6}"
window=$(DISPLAY="$display" xdotool search --name "^Bastionless$" | head -n1)
DISPLAY="$display" /usr/bin/import -window "${window:-root}" docs/screenshot.png
echo "wrote docs/screenshot.png"
