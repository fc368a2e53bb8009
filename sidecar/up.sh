#!/usr/bin/env bash
# Bring sidecar up on this host with its built-in defaults: the compose stack of compose/ (OpenClaw,
# caddy and sidecar guarding them), or sidecar alone when the OpenClaw and caddy images cannot be
# pulled. No edits needed:
#
#   bash sidecar/up.sh [--audit] [compose up options…]
#
# 1. Checks Docker and Compose (docker-compose, or the docker compose plugin); stops at once with one
#    message when either is missing, before any build.
# 2. Creates compose/.env (mode 0600) from compose/.env.example on the first run, with a random
#    OPENCLAW_GATEWAY_TOKEN; an existing .env is kept (an empty token in it is filled in, its mode
#    tightened to 0600).
# 3. Builds sidecar's image on this host (sidecar/build-image.sh; no registry needed).
# 4. `up -d`: the whole stack, or the sidecar service alone (log guard and log hygiene) when the
#    OpenClaw or caddy image can be neither found nor pulled, saying so in one line.
#
# --audit adds docker-compose.audit.yml (the Docker socket for the live container audit and for
# pausing containers during backups: a declared, accepted risk). Other arguments go to `up`.
# Backups stay off until SIDECAR_BACKUP_RECIPIENT (the age1… public key of an identity made and kept
# off this host) is set in compose/.env; run this again afterwards.
# Exit status: 0 up, 2 a prerequisite is missing or a step failed.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

say() { echo "up.sh: $*" >&2; }
die() { say "$*"; exit 2; }

files=(-f docker-compose.yml)
up_args=()
for a in "$@"; do
  case "$a" in
    --audit) files+=(-f docker-compose.audit.yml) ;;
    -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
    *) up_args+=("$a") ;;
  esac
done

# 1. Prerequisites, before anything slow.
command -v docker >/dev/null 2>&1 || die "docker is not installed: install Docker (Debian: apt-get install docker.io) and run this again"
docker info >/dev/null 2>&1 || die "the Docker daemon is not reachable: start it (systemctl start docker) and run this as root or as a member of the docker group"
if docker-compose version >/dev/null 2>&1; then
  compose=(docker-compose)
elif docker compose version >/dev/null 2>&1; then
  compose=(docker compose)
else
  die "neither docker-compose nor the docker compose plugin is installed: apt-get install docker-compose (or docker-compose-plugin) and run this again"
fi
for tool in cargo strip; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool is needed to build sidecar's image on this host: install Rust (rustup.rs) and binutils, and run this again"
done
[ -r /etc/ssl/certs/ca-certificates.crt ] || die "/etc/ssl/certs/ca-certificates.crt is missing: apt-get install ca-certificates and run this again"

# 2. compose/.env: created 0600 with a random gateway token, never printed.
env_file=compose/.env
token() { od -An -tx1 -N32 /dev/urandom | tr -d ' \n'; }
if [ ! -e "$env_file" ]; then
  tmp="$env_file.tmp.$$"
  (umask 077 && sed "s/^OPENCLAW_GATEWAY_TOKEN=\$/OPENCLAW_GATEWAY_TOKEN=$(token)/" compose/.env.example > "$tmp")
  sync "$tmp" 2>/dev/null || true
  mv "$tmp" "$env_file"
  say "created $env_file (mode 0600) with a random OPENCLAW_GATEWAY_TOKEN"
else
  [ -f "$env_file" ] || die "$env_file is not a regular file: move it away and run this again"
  if [ -n "$(find "$env_file" -perm /077)" ]; then
    chmod 600 "$env_file"
    say "$env_file was readable by others: its mode is now 0600"
  fi
  if grep -q '^OPENCLAW_GATEWAY_TOKEN=$' "$env_file"; then
    tmp="$env_file.tmp.$$"
    (umask 077 && sed "s/^OPENCLAW_GATEWAY_TOKEN=\$/OPENCLAW_GATEWAY_TOKEN=$(token)/" "$env_file" > "$tmp")
    mv "$tmp" "$env_file"
    say "OPENCLAW_GATEWAY_TOKEN was empty in $env_file: set to a random token"
  fi
fi
# The values compose will use (the environment wins over .env, as in compose).
env_value() {
  local name=$1 default=$2 v
  if [ -n "${!name:-}" ]; then echo "${!name}"; return; fi
  v=$(sed -n "s/^$name=//p" "$env_file" | tail -1)
  echo "${v:-$default}"
}

# 3. sidecar's image, built here.
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
sidecar_image=$(env_value SIDECAR_IMAGE "openclaw-sidecar:$version")
say "building $sidecar_image (the first build compiles every dependency: several minutes)"
bash sidecar/build-image.sh --tag "$sidecar_image" || die "the image build failed (see above)"

# 4. The whole stack when its images are here or can be pulled; else sidecar alone.
have_image() { docker image inspect "$1" >/dev/null 2>&1 || docker pull -q "$1" >/dev/null 2>&1; }
missing=()
for name in OPENCLAW_IMAGE:ghcr.io/openclaw/openclaw:latest CADDY_IMAGE:caddy:2; do
  image=$(env_value "${name%%:*}" "${name#*:}")
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
if ! grep -q '^SIDECAR_BACKUP_RECIPIENT=.' .env; then
  say "backups are off until SIDECAR_BACKUP_RECIPIENT (an age1… public key; the identity stays off this host) is set in compose/.env"
fi
