#!/usr/bin/env bash
# Smoke test of a running sidecar (after `bash sidecar/up.sh`, or any `sidecar run` on this host): a
# throwaway container prints a made-up OpenAI-style key, and `docker logs` must show it masked.
#
#   bash sidecar/smoke.sh
#
# The container (sidecar-smoke) runs the busybox image when it is here or can be pulled, else an
# image built FROM scratch with this host's static busybox (/bin/busybox from Debian's
# busybox-static). It is removed at the end.
# Exit status: 0 the key was masked, 1 it was still in clear after 10 s, 2 the test could not run.
set -euo pipefail

name=sidecar-smoke
say() { echo "smoke.sh: $*" >&2; }
die() { say "$*"; exit 2; }

command -v docker >/dev/null 2>&1 || die "docker is not installed"
docker info >/dev/null 2>&1 || die "the Docker daemon is not reachable (run as root or as a member of the docker group)"

image=busybox
if ! docker image inspect "$image" >/dev/null 2>&1 && ! timeout 60 docker pull -q "$image" >/dev/null 2>&1; then
  image=sidecar-smoke-busybox:1
  if ! docker image inspect "$image" >/dev/null 2>&1; then
    bb=$(readlink -f "$(command -v busybox || echo /bin/busybox)")
    # A static binary: ldd says it is not dynamic.
    [ -x "$bb" ] && ! ldd "$bb" >/dev/null 2>&1 \
      || die "no busybox image can be pulled and no static busybox is installed: apt-get install busybox-static, or make the busybox image pullable"
    ctx=$(mktemp -d)
    trap 'rm -rf "$ctx"' EXIT
    cp "$(readlink -f "$bb")" "$ctx/busybox"
    printf 'FROM scratch\nCOPY busybox /bin/busybox\nENTRYPOINT ["/bin/busybox"]\n' > "$ctx/Dockerfile"
    docker build -q -t "$image" "$ctx" >/dev/null || die "cannot build $image"
  fi
fi

# A made-up key of the shape OpenAI issues (sk-proj-…T3BlbkFJ…); it grants nothing.
rand() { head -c 36 /dev/urandom | base64 | tr -d '+/=\n'; }
key="sk-proj-$(rand)T3BlbkFJ$(rand)"

docker rm -f "$name" >/dev/null 2>&1 || true
cleanup() { docker rm -f "$name" >/dev/null 2>&1 || true; }
trap 'cleanup; rm -rf "${ctx:-}"' EXIT
docker run -d --name "$name" --log-driver json-file "$image" sh -c "echo \"smoke test: OPENAI_API_KEY=$key\"; sleep 30" >/dev/null \
  || die "cannot start the $name container"

# Masked: `docker logs` works, shows the line, and the key is not in it.
end=$((SECONDS + 10))
while [ "$SECONDS" -lt "$end" ]; do
  if logs=$(docker logs "$name" 2>&1) && grep -q '^smoke test: OPENAI_API_KEY=sk-proj-' <<<"$logs" \
    && ! grep -qF "$key" <<<"$logs"; then
    echo "docker logs $name:"
    echo "$logs"
    say "the key was masked in Docker's log file: sidecar is guarding this host"
    exit 0
  fi
  sleep 0.2
done
say "the key is still in clear after 10 s: is sidecar running? (docker ps; docker logs of the sidecar container; bash sidecar/up.sh)"
exit 1
