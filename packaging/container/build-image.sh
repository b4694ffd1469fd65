#!/bin/sh
# Builds the vkd image (packaging/Containerfile) with podman from a built Debian package:
# assembles the build context (vkd.deb and the project's conf/) in a temporary directory.
#
#   build-image.sh --deb PATH [-t TAG] [--base IMAGE] [--source URL] [-- PODMAN-BUILD-ARGS...]
#
# --base defaults to debian:bookworm-slim; the tests pass the local stand-in that make-base.sh
# imports. Built in Docker format so that the HEALTHCHECK is kept.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
deb= tag=vkd base=docker.io/library/debian:bookworm-slim source=unknown
while [ $# -gt 0 ]; do
        case $1 in
        --deb) deb=$2; shift 2 ;;
        -t) tag=$2; shift 2 ;;
        --base) base=$2; shift 2 ;;
        --source) source=$2; shift 2 ;;
        --) shift; break ;;
        *) echo "build-image.sh: unknown argument $1" >&2; exit 2 ;;
        esac
done
[ -s "$deb" ] || { echo "build-image.sh: no package at '$deb' (run the package_deb test)" >&2; exit 2; }
version=$(dpkg-deb -f "$deb" Version)
ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
cp "$deb" "$ctx/vkd.deb"
cp -r "$top/conf" "$ctx/conf"
podman build --format docker -f "$top/packaging/Containerfile" -t "$tag" \
        --build-arg BASE="$base" --build-arg VKD_VERSION="$version" \
        --build-arg VKD_SOURCE="$source" "$@" "$ctx"
