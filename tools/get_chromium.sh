#!/usr/bin/env bash
# Headless Chromium from Debian's own packages, for the procurement report's render test.
#
# Prints the path of a runnable `chromium` wrapper on the last line of stdout and exits 0,
# or explains on stderr why it could not get one and exits 1.
#
# Why this way: CI runs on a fresh Debian 12 clone without root and with only the Debian
# archive (plus PyPI/npm) reachable. So, in order:
#   1. a wrapper already in the cache folder;
#   2. a chromium-headless-shell / chromium already on PATH;
#   3. `apt-get download` chromium-headless-shell and every dependency not installed on
#      this machine, `dpkg -x` them into the cache folder (no root needed). When the
#      machine's package lists do not know the package (fresh containers ship without
#      lists), a private `apt-get update` into the cache folder fetches them first;
#   4. as root only: `apt-get install chromium-headless-shell`.
#
# Cache folder: $HARNESS_CHROMIUM_DIR, else ${XDG_CACHE_HOME:-~/.cache}/harness/chromium.
set -uo pipefail

PKG=chromium-headless-shell
EXTRA="fonts-dejavu-core"   # one font, so text renders on machines with no fonts at all
CACHE="${HARNESS_CHROMIUM_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/harness/chromium}"
ROOT="$CACHE/root"
WRAPPER="$CACHE/bin/chromium"

log() { echo "get_chromium: $*" >&2; }

works() { "$1" --headless --no-sandbox --version >/dev/null 2>&1 || "$1" --version >/dev/null 2>&1; }

if [ -x "$WRAPPER" ] && works "$WRAPPER"; then echo "$WRAPPER"; exit 0; fi

for name in chromium-headless-shell chromium chromium-browser; do
  found="$(command -v "$name" 2>/dev/null || true)"
  if [ -n "$found" ] && works "$found"; then echo "$found"; exit 0; fi
done

command -v apt-get >/dev/null 2>&1 || { log "no apt-get: not a Debian machine, cannot fetch Chromium"; exit 1; }
command -v dpkg >/dev/null 2>&1 || { log "no dpkg: cannot unpack Chromium"; exit 1; }

mkdir -p "$CACHE/debs" "$CACHE/apt/lists/partial" "$CACHE/apt/cache/archives/partial" || exit 1

APT_OPTS=()
has_candidate() {  # (no `| grep -q` under pipefail: an early exit of grep fails the pipe)
  local out; out="$(apt-cache "${APT_OPTS[@]}" policy "$PKG" 2>/dev/null)"; [[ "$out" == *"Candidate: "[0-9]* ]]; }

private_lists() {
  # Private package lists: the system's sources, our own (writable) state folders.
  APT_OPTS=(-o "Dir::State::Lists=$CACHE/apt/lists" -o "Dir::Cache=$CACHE/apt/cache"
            -o "Dir::State::status=/var/lib/dpkg/status" -o Debug::NoLocking=1
            -o APT::Sandbox::User="$(id -un)")
  log "fetching Debian's package lists into $CACHE/apt ($1)"
  apt-get "${APT_OPTS[@]}" -q update >&2 || log "apt-get update reported problems"
}

if [ "${HARNESS_CHROMIUM_PRIVATE_LISTS:-}" = 1 ]; then
  private_lists "asked for by HARNESS_CHROMIUM_PRIVATE_LISTS"
elif ! has_candidate; then
  private_lists "this machine's lists do not know $PKG"
fi

download_and_unpack() {
  has_candidate || { log "$PKG is not in the Debian archive this machine uses"; return 1; }
  # Dependency closure (Depends and Pre-Depends only), minus what is installed already.
  local wanted=() pkg
  while read -r pkg; do
    [ -z "$pkg" ] && continue
    [ "$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null)" = "install ok installed" ] && continue
    wanted+=("$pkg")
  done < <(apt-cache "${APT_OPTS[@]}" depends --recurse --no-recommends --no-suggests --no-conflicts \
             --no-breaks --no-replaces --no-enhances "$PKG" $EXTRA 2>/dev/null \
           | grep -v '^ ' | grep -v '^<' | sed 's/:any$//' | sort -u)
  rm -f "$CACHE"/debs/*.deb
  log "downloading ${#wanted[@]} packages into $CACHE/debs"
  (cd "$CACHE/debs" && apt-get "${APT_OPTS[@]}" -q download "${wanted[@]}" >&2) || {
    log "apt-get download failed"; return 1; }
  rm -rf "$ROOT.tmp" && mkdir -p "$ROOT.tmp"
  local deb
  for deb in "$CACHE"/debs/*.deb; do
    dpkg -x "$deb" "$ROOT.tmp" || { log "dpkg -x $deb failed"; return 1; }
  done
  rm -rf "$ROOT" && mv "$ROOT.tmp" "$ROOT"
  return 0
}

write_wrapper() {
  local bin
  bin="$(find "$ROOT/usr/lib/chromium" -maxdepth 1 -type f \( -name 'chromium-headless-shell' -o -name 'headless_shell' -o -name chromium \) 2>/dev/null | head -n1)"
  [ -n "$bin" ] || { log "no chromium binary under $ROOT/usr/lib/chromium"; return 1; }
  mkdir -p "$CACHE/bin" "$CACHE/fontconfig"
  cat > "$CACHE/fonts.conf" <<EOF
<?xml version="1.0"?>
<!DOCTYPE fontconfig SYSTEM "fonts.dtd">
<fontconfig>
  <dir>$ROOT/usr/share/fonts</dir>
  <dir>/usr/share/fonts</dir>
  <cachedir>$CACHE/fontconfig</cachedir>
</fontconfig>
EOF
  # Every folder of the unpacked tree that holds shared libraries (some, like
  # libpulsecommon, live in private subfolders that the packages' rpath would name).
  local libs
  libs="$(find "$ROOT" \( -name '*.so' -o -name '*.so.*' \) -printf '%h\n' 2>/dev/null | sort -u | paste -sd: -)"
  cat > "$WRAPPER" <<EOF
#!/bin/sh
# Written by tools/get_chromium.sh: Debian's $PKG unpacked into this cache folder.
export LD_LIBRARY_PATH="$libs\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}"
export FONTCONFIG_FILE="$CACHE/fonts.conf"
exec "$bin" "\$@"
EOF
  chmod +x "$WRAPPER"
  works "$WRAPPER" || { log "the unpacked Chromium does not start: $("$WRAPPER" --version 2>&1 | tail -n 3)"; return 1; }
  return 0
}

if download_and_unpack && write_wrapper; then echo "$WRAPPER"; exit 0; fi
if [ ${#APT_OPTS[@]} -eq 0 ]; then
  # Stale system lists name versions the archive no longer has: retry with fresh lists.
  private_lists "the system's lists may be out of date"
  if download_and_unpack && write_wrapper; then echo "$WRAPPER"; exit 0; fi
fi

if [ "$(id -u)" = 0 ]; then
  log "falling back to apt-get install $PKG (root)"
  if DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$PKG" $EXTRA >&2; then
    for name in chromium-headless-shell chromium; do
      found="$(command -v "$name" 2>/dev/null || true)"
      [ -z "$found" ] && [ -x /usr/lib/chromium/"$name" ] && found=/usr/lib/chromium/"$name"
      if [ -n "$found" ] && works "$found"; then echo "$found"; exit 0; fi
    done
  fi
fi
log "could not obtain Chromium (see the messages above)"
exit 1
