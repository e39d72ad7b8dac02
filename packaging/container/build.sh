#!/usr/bin/env bash
# Build both images (and run each one's --help) when a container builder really works;
# otherwise say why and exit 0. Run from anywhere; the build context is the repo root.
#   packaging/container/build.sh            # tags konorkestra-center:ci, konorkestra-agent:ci
# A builder that works but cannot get the base image (no registry access) is a skip too;
# a build that starts and fails is a failure.
set -euo pipefail
cd "$(dirname "$0")/../.."
BASE=python:3.11-slim
if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
  build() { docker build -q "$@"; }; run() { docker run --rm "$@"; }
  have_base() { docker image inspect "$BASE" >/dev/null 2>&1 || docker pull -q "$BASE" >/dev/null 2>&1; }
elif command -v podman >/dev/null 2>&1 && podman info >/dev/null 2>&1; then
  build() { podman build -q "$@"; }; run() { podman run --rm "$@"; }
  have_base() { podman image exists "$BASE" || podman pull -q "$BASE" >/dev/null 2>&1; }
elif command -v buildah >/dev/null 2>&1; then
  build() { buildah build -q "$@"; }; run() { :; }  # buildah builds; it does not run
  have_base() { buildah inspect --type image "$BASE" >/dev/null 2>&1 || buildah pull -q "$BASE" >/dev/null 2>&1; }
else
  echo "container images: skipped (no working docker, podman or buildah)"; exit 0
fi
if ! have_base; then
  echo "container images: skipped (base image $BASE not available to the builder)"; exit 0
fi
for daemon in center agent; do
  build -f "packaging/container/Containerfile.$daemon" -t "konorkestra-$daemon:ci" .
  run "konorkestra-$daemon:ci" --help >/dev/null
  echo "container image konorkestra-$daemon:ci: built"
done
