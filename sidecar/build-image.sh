#!/usr/bin/env bash
# Build sidecar's image without a registry: compile a static binary on this host and put it into the
# final stage of sidecar/Dockerfile (the same image the multi-stage build makes, FROM scratch).
#
#   bash sidecar/build-image.sh [--tag openclaw-sidecar:0.1.0] [--binary PATH]
#
# --binary: use an already built static binary instead of compiling one
#   (RUSTFLAGS='-C target-feature=+crt-static' cargo build --profile image --target x86_64-unknown-linux-gnu).
# Prints the image id and its size. Needs docker, cargo (unless --binary), strip and
# /etc/ssl/certs/ca-certificates.crt (Debian: ca-certificates).
set -euo pipefail
cd "$(dirname "$0")/.."

version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
tag="openclaw-sidecar:${version}"
binary=""
while [ $# -gt 0 ]; do
  case "$1" in
    --tag) tag="$2"; shift 2 ;;
    --binary) binary="$2"; shift 2 ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "build-image.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done

if [ -z "$binary" ]; then
  RUSTFLAGS='-C target-feature=+crt-static' cargo build --profile image --locked --target x86_64-unknown-linux-gnu >&2
  binary=target/x86_64-unknown-linux-gnu/image/sidecar
fi
if ! file -b "$binary" 2>/dev/null | grep -q 'statically linked\|static-pie linked'; then
  if ldd "$binary" >/dev/null 2>&1; then
    echo "build-image.sh: $binary is dynamically linked; a scratch image needs a static binary (RUSTFLAGS='-C target-feature=+crt-static')" >&2
    exit 2
  fi
fi

ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
root="$ctx/rootfs"
mkdir -p "$root/usr/local/bin" "$root/etc/ssl/certs" "$root/etc/sidecar" "$root/var/lib/sidecar" "$root/backups" "$root/data"
strip -o "$root/usr/local/bin/sidecar" "$binary"
cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/"
chmod 0700 "$root/var/lib/sidecar" "$root/backups"
# The final stage of the Dockerfile, with the build stage's output taken from this context.
sed -n '/^# final stage$/,$p' sidecar/Dockerfile | sed 's|^COPY --from=build /out/ /$|COPY rootfs/ /|' > "$ctx/Dockerfile"
grep -q '^COPY rootfs/ /$' "$ctx/Dockerfile" || { echo "build-image.sh: sidecar/Dockerfile has no 'COPY --from=build /out/ /' in its final stage" >&2; exit 2; }
docker build -q --build-arg "VERSION=${version}" -t "$tag" "$ctx"
size=$(docker image inspect -f '{{.Size}}' "$tag")
echo "built $tag: $size bytes ($((size / 1048576)) MiB)" >&2
