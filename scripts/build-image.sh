#!/usr/bin/env bash
# Builds the container image localhost/cairn:latest from the release binary
# without pulling a base image: the binary and the shared libraries `ldd`
# lists (the C library, the loader, libgcc_s, libm) go into an empty image
# (deploy/kubernetes/Containerfile). Uses buildah, or podman build.
#
#   [BIN=path/to/cairn] scripts/build-image.sh [TAG]
set -euo pipefail
cd "$(dirname "$0")/.."
tag=${1:-localhost/cairn:latest}
# BIN: the binary to package (tests use their debug build); by default the
# release build, built here.
bin=${BIN:-target/release/cairn}
if [ -z "${BIN:-}" ]; then
  cargo build --release --locked -p cairn
fi
ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
root="$ctx/rootfs"
mkdir -p "$root/tmp" "$ctx/data"
cp "$bin" "$root/cairn"
ldd "$bin" | awk '/=>/ {print $3} !/=>/ && /^[[:space:]]*\// {print $1}' | while read -r lib; do
  [ -f "$lib" ] || continue
  mkdir -p "$root$(dirname "$lib")"
  cp -L "$lib" "$root$lib"
done
chmod 1777 "$root/tmp"
touch "$ctx/data/.keep"
cp deploy/kubernetes/Containerfile "$ctx/Containerfile"
if command -v buildah >/dev/null 2>&1; then
  buildah bud --quiet -f "$ctx/Containerfile" -t "$tag" "$ctx"
else
  podman build --quiet -f "$ctx/Containerfile" -t "$tag" "$ctx"
fi
echo "built $tag"
