#!/usr/bin/env bash
# Bundles the web UI into ui/dist (committed; the server embeds it, so
# building Cairn needs neither npm nor the network). Run after editing
# ui/src: npm ci fetches uPlot and esbuild at the versions in
# package-lock.json, esbuild bundles src/app.js with uPlot.
set -euo pipefail
cd "$(dirname "$0")"
npm ci --no-audit --no-fund
npm run -s build
ls -l dist
