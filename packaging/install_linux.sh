#!/usr/bin/env bash
# Install the built one-folder SinusApp on Linux, with its desktop entry and icon.
#
#   sudo bash packaging/install_linux.sh                 # /opt/sinusapp, menu entry for all users
#   bash packaging/install_linux.sh --prefix ~/sinusapp  # per-user, no root
#   bash packaging/install_linux.sh --user --prefix DIR  # per-user even when run as root
#
# Copies packaging/dist/sinusapp to PREFIX, links PREFIX/sinusapp to BIN (/usr/local/bin for
# root, ~/.local/bin otherwise), and installs sinusapp.desktop (Exec/Icon pointing at PREFIX)
# into /usr/share/applications (root) or ~/.local/share/applications.
set -euo pipefail
cd "$(dirname "$0")/.."
PREFIX=/opt/sinusapp
SYSTEM=$([ "$(id -u)" = 0 ] && echo 1 || echo 0)
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) PREFIX=${2:?--prefix needs a folder}; shift 2 ;;
    --user) SYSTEM=0; shift ;;
    *) echo "usage: install_linux.sh [--user] [--prefix DIR]" >&2; exit 2 ;;
  esac
done
SRC=packaging/dist/sinusapp
test -x "$SRC/sinusapp" || { echo "build first: bash packaging/build.sh" >&2; exit 2; }
if [ "$SYSTEM" = 1 ]; then
  APPS=/usr/share/applications BIN=/usr/local/bin
else
  APPS="$HOME/.local/share/applications" BIN="$HOME/.local/bin"
fi
PREFIX=$(mkdir -p "$PREFIX" && cd "$PREFIX" && pwd)
rm -rf "${PREFIX:?}/sinusapp" "${PREFIX:?}/_internal"
cp -a "$SRC/." "$PREFIX/"
mkdir -p "$APPS" "$BIN"
ln -sf "$PREFIX/sinusapp" "$BIN/sinusapp"
sed -e "s#/opt/sinusapp#$PREFIX#g" packaging/sinusapp.desktop > "$APPS/sinusapp.desktop"
chmod 644 "$APPS/sinusapp.desktop"
command -v update-desktop-database > /dev/null && update-desktop-database "$APPS" 2>/dev/null || true
echo "installed to $PREFIX; command $BIN/sinusapp; menu entry $APPS/sinusapp.desktop"
