#!/bin/sh
# Install the official chat widget (npm package open-chat-studio-widget) into
# adapters/web/static/vendor, so the demo page works without internet access.
# Idempotent: does nothing when that version is already installed. Without npm it says so and
# exits 0 (the demo page then loads the widget from the public CDN).
set -eu

VERSION="${WIDGET_VERSION:-0.6.0}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DEST="$ROOT/adapters/web/static/vendor"
STAMP="$DEST/open-chat-studio-widget/.version"

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$VERSION" ]; then
    exit 0
fi
if ! command -v npm >/dev/null 2>&1; then
    echo "install-widget: npm not found; the demo page will load the widget from the public CDN" >&2
    exit 0
fi

TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
echo "install-widget: installing open-chat-studio-widget@$VERSION"
if ! npm install --prefix "$TMP" --no-audit --no-fund --no-save --loglevel=error \
        "open-chat-studio-widget@$VERSION" >"$TMP/npm.log" 2>&1; then
    cat "$TMP/npm.log" >&2
    echo "install-widget: npm install failed; the demo page will load the widget from the public CDN" >&2
    exit 0
fi

SRC="$TMP/node_modules/open-chat-studio-widget/dist/open-chat-studio-widget"
mkdir -p "$DEST"
rm -rf "$DEST/open-chat-studio-widget.new"
mkdir "$DEST/open-chat-studio-widget.new"
# The browser build only: the ES module entry and its chunks (no source maps).
find "$SRC" -maxdepth 1 -type f -name '*.js' -exec cp {} "$DEST/open-chat-studio-widget.new/" \;
cp "$TMP/node_modules/open-chat-studio-widget/package.json" "$DEST/open-chat-studio-widget.new/"
echo "$VERSION" >"$DEST/open-chat-studio-widget.new/.version"
rm -rf "$DEST/open-chat-studio-widget"
mv "$DEST/open-chat-studio-widget.new" "$DEST/open-chat-studio-widget"
echo "install-widget: installed into ${DEST#"$ROOT"/}/open-chat-studio-widget"
