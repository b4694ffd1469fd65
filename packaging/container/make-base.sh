#!/bin/sh
# Makes a local stand-in for debian:bookworm-slim, without a registry: debootstrap
# --variant=minbase of bookworm from the configured Debian mirror, then the same dpkg
# path-exclude configuration the official slim images carry (no docs, man pages or locales,
# and no later package will install them either), imported with podman as IMAGE.
#
#   make-base.sh IMAGE CACHE_DIR [MIRROR]
#
# The root filesystem is kept as CACHE_DIR/bookworm-minbase.tar: a later run (or a machine
# whose podman storage was wiped) only imports it again. Nothing is done when IMAGE exists.
set -eu
image=$1
cache=$2
mirror=${3:-http://deb.debian.org/debian}

if podman image exists "$image"; then
        exit 0
fi
mkdir -p "$cache"
tar="$cache/bookworm-minbase.tar"
if [ ! -s "$tar" ]; then
        root=$(mktemp -d "$cache/root.XXXXXX")
        trap 'rm -rf "$root"' EXIT
        debootstrap --variant=minbase bookworm "$root" "$mirror" >"$cache/debootstrap.log" 2>&1 || {
                tail -20 "$cache/debootstrap.log" >&2
                exit 1
        }
        # What debuerreotype's slimify puts in the official -slim images.
        cat >"$root/etc/dpkg/dpkg.cfg.d/docker" <<'CFG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
CFG
        find "$root/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
        rm -rf "$root/usr/share/man/"* "$root/usr/share/groff/"* "$root/usr/share/info/"* \
                "$root/usr/share/lintian/"* "$root/usr/share/locale/"*
        rm -rf "$root/var/lib/apt/lists/"* "$root/var/cache/apt/"*.bin \
                "$root/var/cache/apt/archives/"*.deb "$root/var/log/"*.log
        tar -C "$root" --numeric-owner -cf "$tar.tmp" .
        mv "$tar.tmp" "$tar"
fi
podman import --change 'CMD ["/bin/bash"]' "$tar" "$image" >/dev/null
