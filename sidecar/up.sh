#!/usr/bin/env bash
# Bring sidecar up on this host with its built-in defaults: the compose stack of compose/ (OpenClaw,
# caddy and sidecar guarding them), or sidecar alone when the OpenClaw and caddy images cannot be
# pulled. No edits needed:
#
#   bash sidecar/up.sh [--audit] [compose up options…]
#
# 1. Checks Docker (and that its data root is /var/lib/docker, which the stack mounts), Compose (the
#    docker compose plugin, or docker-compose) and the build tools; stops at once with one message
#    when something is missing, before any build.
# 2. Creates compose/.env (mode 0600) from compose/.env.example on the first run, with a random
#    OPENCLAW_GATEWAY_TOKEN (never printed); an existing .env is kept (an empty token in it is
#    filled in, its mode tightened to 0600).
# 3. Builds sidecar's image on this host (sidecar/build-image.sh; no registry needed).
# 4. `up -d`: the whole stack, or the sidecar service alone (log guard and log hygiene) when the
#    OpenClaw or caddy image can be neither found nor pulled (at most 2 minutes each), saying so in
#    one line.
#
# --audit adds docker-compose.audit.yml (the Docker socket for the live container audit and for
# pausing containers during backups: a declared, accepted risk). Other arguments go to `up`.
# Backups stay off until SIDECAR_BACKUP_RECIPIENT (the age1… public key of an identity made and kept
# off this host) is set in compose/.env; run this again afterwards.
# Exit status: 0 up, 2 a prerequisite is missing or a step failed.
set -euo pipefail
self=$(cd "$(dirname "$0")" && pwd)/$(basename "$0")
cd "$(dirname "$self")/.."
repo=$(pwd)

say() { echo "up.sh: $*" >&2; }
die() { say "$*"; exit 2; }
trap 'say "failed (see above)"; exit 2' ERR

files=(-f docker-compose.yml)
up_args=()
for a in "$@"; do
  case "$a" in
    --audit) files+=(-f docker-compose.audit.yml) ;;
    -h|--help) sed -n '2,23p' "$self"; exit 0 ;;
    *) up_args+=("$a") ;;
  esac
done

# 1. Prerequisites, before anything slow.
command -v docker >/dev/null 2>&1 || die "docker is not installed: install Docker (Debian: apt-get install docker.io) and run this again"
docker info >/dev/null 2>&1 || die "the Docker daemon is not reachable: start it (systemctl start docker) and run this as root or as a member of the docker group"
root_dir=$(docker info -f '{{.DockerRootDir}}' 2>/dev/null || true)
[ "$root_dir" = /var/lib/docker ] \
  || die "Docker keeps its data in ${root_dir:-an unknown place}, not /var/lib/docker, which the stack mounts to guard the logs: change the /var/lib/docker/containers mount of the sidecar service in compose/docker-compose.yml (rootless or snap Docker: see docs/compose.md)"
if docker compose version >/dev/null 2>&1; then
  compose=(docker compose)
elif docker-compose version >/dev/null 2>&1; then
  compose=(docker-compose)
else
  die "neither the docker compose plugin nor docker-compose is installed: apt-get install docker-compose-plugin (or docker-compose) and run this again"
fi
for tool in cargo cc strip; do
  command -v "$tool" >/dev/null 2>&1 \
    || die "$tool is needed to build sidecar's image on this host: install Rust (rustup.rs; under sudo, cargo must be on root's PATH), gcc and binutils (apt-get install build-essential), and run this again"
done
[ -r /etc/ssl/certs/ca-certificates.crt ] || die "/etc/ssl/certs/ca-certificates.crt is missing: apt-get install ca-certificates and run this again"

# 2. compose/.env: created 0600 with a random gateway token, never printed (the token goes to awk
#    through its environment, not its arguments, which other users can read in ps).
env_file=compose/.env
tmp="$env_file.tmp.$$"
trap 'rm -f "$tmp"' EXIT
with_token() { # copy $1 to $tmp, filling an empty OPENCLAW_GATEWAY_TOKEN
  (umask 077 && TOKEN=$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n') awk '
    /^OPENCLAW_GATEWAY_TOKEN=(""|'"''"')?\r?$/ { print "OPENCLAW_GATEWAY_TOKEN=" ENVIRON["TOKEN"]; next }
    { print }' "$1" > "$tmp")
}
if [ ! -e "$env_file" ] && [ ! -L "$env_file" ]; then
  with_token compose/.env.example
  # ln fails when another run created .env meanwhile: that one is kept.
  if ln "$tmp" "$env_file" 2>/dev/null; then
    say "created $env_file (mode 0600) with a random OPENCLAW_GATEWAY_TOKEN"
  fi
  rm -f "$tmp"
else
  target=$(readlink -f "$env_file")
  [ -f "$target" ] || die "$env_file is not a regular file: move it away and run this again"
  if [ -n "$(find "$target" -perm /077)" ]; then
    chmod 600 "$target"
    say "$env_file was readable by others: its mode is now 0600"
  fi
  if grep -Eq '^OPENCLAW_GATEWAY_TOKEN=(""|'"''"')?\r?$' "$target"; then
    with_token "$target"
    cat "$tmp" > "$target"
    rm -f "$tmp"
    say "OPENCLAW_GATEWAY_TOKEN was empty in $env_file: set to a random token"
  fi
fi
grep -q '^OPENCLAW_GATEWAY_TOKEN=.' "$(readlink -f "$env_file")" || [ -n "${OPENCLAW_GATEWAY_TOKEN:-}" ] \
  || die "$env_file has no OPENCLAW_GATEWAY_TOKEN line: add 'OPENCLAW_GATEWAY_TOKEN=' and run this again (it is filled in)"

# The images as compose resolves them (.env, the environment, defaults): service -> image.
cd compose
images=$("${compose[@]}" "${files[@]}" config 2>/dev/null | awk '
  /^services:/ { s = 1; next }
  /^[^ ]/ { s = 0 }
  s && /^  [A-Za-z0-9_.-]+:[ ]*$/ { svc = $1; sub(":", "", svc) }
  s && /^    image: / { img = $2; gsub(/["\047]/, "", img); print svc, img }') \
  || die "compose cannot read the stack: ${compose[*]} ${files[*]} config says why"
image_of() { awk -v s="$1" '$1 == s { print $2 }' <<<"$images"; }
cd "$repo"

# 3. sidecar's image, built here.
sidecar_image=$(image_of sidecar)
[ -n "$sidecar_image" ] || die "compose lists no image for the sidecar service"
say "building $sidecar_image (the first build compiles every dependency: a few minutes)"
bash sidecar/build-image.sh --tag "$sidecar_image" || die "the image build failed (see above)"

# 4. The whole stack when its images are here or can be pulled; else sidecar alone.
have_image() {
  docker image inspect "$1" >/dev/null 2>&1 && return 0
  say "pulling $1"
  timeout 120 docker pull -q "$1" >/dev/null 2>&1
}
missing=()
for svc in openclaw caddy; do
  image=$(image_of "$svc")
  have_image "$image" || missing+=("$image")
done
services=()
if [ ${#missing[@]} -gt 0 ]; then
  services=(sidecar)
  say "cannot find or pull ${missing[*]}: starting sidecar alone (log guard and log hygiene); run this again once they can be pulled"
fi
cd compose
"${compose[@]}" "${files[@]}" up -d ${up_args[@]+"${up_args[@]}"} ${services[@]+"${services[@]}"} || die "compose up failed (see above)"
say "up: ${compose[*]} ${files[*]} ps (from $repo/compose) shows it; the smoke test: bash sidecar/smoke.sh"
if ! grep -q '^SIDECAR_BACKUP_RECIPIENT=[^"'"'"'[:space:]]' "$(readlink -f .env)" && [ -z "${SIDECAR_BACKUP_RECIPIENT:-}" ]; then
  say "backups are off until SIDECAR_BACKUP_RECIPIENT (an age1… public key; the identity stays off this host) is set in compose/.env"
fi
