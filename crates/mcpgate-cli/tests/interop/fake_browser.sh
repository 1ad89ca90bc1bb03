#!/bin/sh
# The browser mcp-remote opens (through xdg-open's $BROWSER): browser.mjs, as the interop user.
exec node "$(dirname "$0")/browser.mjs" "$1"
