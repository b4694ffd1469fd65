#!/usr/bin/env bash
# The kernel's protection-key path, run for real. The machines here have no
# PKU, so vkd's unit suites only ever take the mprotect path on them; this
# boots the distribution's Linux under QEMU's software CPU with protection keys
# (-cpu max) from an initramfs holding busybox, the given test programs and
# their libraries, and in the guest:
#   - checks that the CPU and kernel report pku and ospke;
#   - runs isolation_bench --switch unprivileged, which must say protection=pkeys;
#   - runs each suite twice, with protection keys and with VKD_PKEYS=0.
# Every run must pass. The guest prints markers on its serial console; this
# script reads them and names each failure.
#
# usage: pkeys_qemu.sh ISOLATION_BENCH SUITE...
# Needs x86_64, qemu-system-x86_64, a kernel in /boot (linux-image-amd64) and
# busybox (busybox-static); otherwise it says what is missing and exits 77
# (ctest: skipped; under CI=true a failure, tests/lib/vkdskip.sh). Bounded: the
# guest is killed after 600 s.
set -euo pipefail

prog=${0##*/}
. "$(dirname "$0")/../lib/vkdskip.sh"
fail() {
        echo "$prog: FAIL: $*" >&2
        exit 1
}

(($# >= 2)) || {
        echo "usage: $prog ISOLATION_BENCH SUITE..." >&2
        exit 2
}
[[ $(uname -m) == x86_64 ]] || vkd_skip pkeys_qemu/not-x86_64 "not x86_64"
qemu=$(command -v qemu-system-x86_64) ||
        vkd_skip pkeys_qemu/no-qemu "no qemu-system-x86_64 (package qemu-system-x86)"
busybox=$(command -v busybox) || vkd_skip pkeys_qemu/no-busybox "no busybox (package busybox-static)"
kernel=$(find /boot -maxdepth 1 -name 'vmlinuz-*' -readable 2>/dev/null | sort -V | tail -n 1)
[[ -n $kernel ]] ||
        vkd_skip pkeys_qemu/no-kernel "no readable kernel in /boot (package linux-image-amd64)"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
root=$tmp/root
mkdir -p "$root"/{bin,proc,sys,dev,tmp,t}
cp "$busybox" "$root/bin/busybox"
for a in sh mount poweroff grep ip; do
        ln -s busybox "$root/bin/$a"
done
# The programs and every library they load, at the same paths.
for b in "$@"; do
        [[ -x $b ]] || fail "$b: not an executable"
        cp "$b" "$root/t/"
        ldd "$b" | awk '/=>/ { print $3 } $1 ~ /^\/.*ld-linux/ { print $1 }' | while read -r lib; do
                [[ -f $lib ]] || continue
                mkdir -p "$root$(dirname "$lib")"
                cp -L "$lib" "$root$lib"
        done
done
bench=${1##*/}
shift
suites=()
for s in "$@"; do
        suites+=("${s##*/}")
done

cat >"$root/init" <<EOF
#!/bin/sh
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mount -t tmpfs tmp /tmp
ip link set lo up
echo # the console's first line starts with terminal escapes
echo "PKEYS-CPU pku=\$(grep -c -w pku /proc/cpuinfo) ospke=\$(grep -c -w ospke /proc/cpuinfo)"
cd /t
echo "PKEYS-BENCH \$(./$bench --switch 2000 --isolation unprivileged 2>&1)"
for s in ${suites[*]}; do
        for k in 1 0; do
                VKD_PKEYS=\$k ./\$s >/tmp/out 2>&1
                rc=\$?
                grep -E ':[EF]:|^[0-9]+%' /tmp/out | sed "s/^/PKEYS-OUT \$s \$k: /"
                echo "PKEYS-RC \$s \$k \$rc"
        done
done
echo PKEYS-DONE
poweroff -f
EOF
chmod +x "$root/init"
(cd "$root" && find . | "$busybox" cpio -o -H newc 2>/dev/null | gzip -1) >"$tmp/initrd"

echo "$prog: booting $kernel under $qemu (TCG, -cpu max)" >&2
timeout 600 "$qemu" -accel tcg -cpu max -smp 1 -m 1024 -nographic -no-reboot \
        -kernel "$kernel" -initrd "$tmp/initrd" \
        -append "console=ttyS0 quiet panic=-1" </dev/null 2>&1 | tr -d '\r' >"$tmp/console" || true
grep '^PKEYS-' "$tmp/console" >&2 || true

grep -q '^PKEYS-DONE' "$tmp/console" || {
        tail -n 40 "$tmp/console" >&2
        fail "the guest did not finish"
}
grep -Eq '^PKEYS-CPU pku=[1-9][0-9]* ospke=[1-9]' "$tmp/console" ||
        fail "the emulated CPU or the guest kernel has no protection keys"
grep -q '^PKEYS-BENCH .*protection=pkeys ' "$tmp/console" ||
        fail "an unprivileged kernel did not choose protection keys"
bad=0
for s in "${suites[@]}"; do
        for k in 1 0; do
                if ! grep -q "^PKEYS-RC $s $k 0\$" "$tmp/console"; then
                        echo "$prog: $s with VKD_PKEYS=$k failed" >&2
                        bad=1
                fi
        done
done
((bad == 0)) || fail "suites failed in the guest"
echo "$prog: ${#suites[@]} suites passed with protection keys and without" >&2
