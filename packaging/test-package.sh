#!/usr/bin/env bash
# Builds the Debian package the way a packager does, out of tree, and inspects it: a copy of the
# source tree with packaging/debian as debian/, `dpkg-buildpackage -us -uc -b`, then the
# contents (dpkg-deb -c), the conffiles, the maintainer scripts, the compiled-in paths, and
# lintian (no errors; warnings are printed). The .deb is left as OUT_DIR/vkd.deb for the e2e
# test. Exits 77 (ctest: skipped), saying why, when the tools to build a package are missing
# (under CI=true a failure: tests/lib/vkdskip.sh).
#
# usage: test-package.sh SOURCE_DIR OUT_DIR
set -euo pipefail

src=$(cd "${1:?source dir}" && pwd)
out=${2:?out dir}
mkdir -p "$out"
out=$(cd "$out" && pwd)
rm -f "$out/vkd.deb" # the e2e test must never install a stale one

. "$src/tests/lib/vkdskip.sh"
fail() {
        echo "FAIL: $*"
        exit 1
}

for tool in dpkg-buildpackage dpkg-checkbuilddeps dh fakeroot lintian; do
        command -v $tool >/dev/null ||
                vkd_skip package_deb/no-$tool "$tool is not installed" \
                        "(Debian: dpkg-dev debhelper fakeroot lintian; ./dev deps installs them)"
done

work=$(mktemp -d "${TMPDIR:-/tmp}/vkd-deb.XXXXXX")
trap 'rm -rf "$work"' EXIT
version=$(sed -n '1s/^vkd (\([^-)]*\).*/\1/p' "$src/packaging/debian/changelog")
tree=$work/vkd-$version

# The source as it is now (tracked and new files; no build trees, no .git).
mkdir -p "$tree"
if git -C "$src" rev-parse --git-dir >/dev/null 2>&1; then
        git -C "$src" ls-files -z --cached --others --exclude-standard |
                (cd "$src" && tar --null --ignore-failed-read -T - -cf - 2>/dev/null) |
                tar -C "$tree" -xf -
else
        tar -C "$src" --exclude='./build*' --exclude=./.git -cf - . | tar -C "$tree" -xf -
fi
rm -rf "$tree/debian"
cp -a "$src/packaging/debian" "$tree/debian"

cd "$tree"
if ! missing=$(dpkg-checkbuilddeps 2>&1); then
        vkd_skip package_deb/no-build-deps "build dependencies missing: ${missing#*: }"
fi

echo "== dpkg-buildpackage -us -uc -b (in $tree)"
start=$(date +%s)
if ! DEB_BUILD_OPTIONS="nocheck parallel=$(nproc)" dpkg-buildpackage -us -uc -b >"$work/build.log" 2>&1; then
        tail -n 60 "$work/build.log"
        fail "dpkg-buildpackage failed"
fi
echo "built in $(($(date +%s) - start)) s"
deb=$(ls "$work"/vkd_"$version"-*_*.deb | head -n 1)
[ -f "$deb" ] || fail "no .deb produced"
echo "== $(basename "$deb")"

# ---------------------------------------------------------------- contents
triplet=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
dpkg-deb -c "$deb" | awk '{print $6}' | sed 's|^\./|/|' >"$work/contents"
status=0
for f in /usr/sbin/vkd /usr/bin/vkdctl \
        "/usr/lib/$triplet/vkd/echo.so" "/usr/lib/$triplet/vkd/http11.so" \
        /usr/include/vk/vk.h /usr/include/vk/module.h "/usr/lib/$triplet/pkgconfig/vkd.pc" \
        /lib/systemd/system/vkd.service /lib/systemd/system/vkd.socket \
        /usr/lib/sysusers.d/vkd.conf /etc/vkd.conf /etc/vkd.d/echo.conf \
        /usr/share/man/man8/vkd.8.gz /usr/share/man/man8/vkdctl.8.gz \
        /usr/share/man/man5/vkd.conf.5.gz /usr/share/man/man3/vkd-module.3.gz \
        /usr/share/doc/vkd/examples/conf/http.conf \
        /usr/share/doc/vkd/examples/hello-module/hello.c \
        /usr/share/doc/vkd/getting-started.md; do
        if grep -qxF "$f" "$work/contents"; then
                echo "has $f"
        else
                echo "MISSING $f"
                status=1
        fi
done
[ $status -eq 0 ] || fail "files missing from the package (contents: see above)"

dpkg-deb -e "$deb" "$work/control"
dpkg-deb -x "$deb" "$work/root"
for c in /etc/vkd.conf /etc/vkd.d/echo.conf; do
        grep -qxF "$c" "$work/control/conffiles" || fail "$c is not a conffile"
done
echo "conffiles: $(tr '\n' ' ' <"$work/control/conffiles")"
grep -q '^User=vkd$' "$work/root/etc/vkd.conf" || fail "/etc/vkd.conf does not set User=vkd"
grep -q 'systemd-sysusers.*vkd.conf' "$work/control/postinst" ||
        fail "postinst does not create the vkd user"
grep -q 'deb-systemd-helper enable .*vkd.socket' "$work/control/postinst" ||
        fail "postinst does not enable vkd.socket"
if grep -A1 'was-enabled defaults to true' "$work/control/postinst" | grep -q vkd.service ||
        grep -q "deb-systemd-invoke .*start.* 'vkd.service'" "$work/control/postinst"; then
        fail "postinst enables or starts vkd.service; the socket is what starts it"
fi
grep -q 'deb-systemd-invoke stop vkd.service' "$work/control/prerm" ||
        fail "prerm does not stop vkd.service on removal"
awk '/systemd-sysusers/ {u = NR} /deb-systemd-invoke .*vkd.socket/ {s = NR}
        END {exit !(u && s && u < s)}' "$work/control/postinst" ||
        fail "postinst must create the user before it starts vkd.socket"
echo "postinst: creates the vkd user, enables and starts vkd.socket"
grep -q '^Depends:.*systemd' "$work/control/control" || fail "no dependency for systemd-sysusers"

# The daemon's compiled-in defaults are where the package puts things.
help=$("$work/root/usr/sbin/vkd" --help)
for p in "/usr/lib/$triplet/vkd" /etc/vkd.d /etc/vkd.conf; do
        grep -qF "$p" <<<"$help" || fail "vkd --help does not name $p: its defaults do not match the package"
done
echo "vkd's defaults: /usr/lib/$triplet/vkd, /etc/vkd.d, /etc/vkd.conf"
grep -q '^ExecStart=/usr/sbin/vkd --foreground$' "$work/root/lib/systemd/system/vkd.service" ||
        fail "vkd.service does not run /usr/sbin/vkd"

# ---------------------------------------------------------------- lintian
echo "== lintian"
lintian_rc=0
lintian --fail-on error --display-info "$deb" >"$work/lintian" 2>&1 || lintian_rc=$?
cat "$work/lintian"
if grep -q '^E: ' "$work/lintian" || [ $lintian_rc -ne 0 ]; then
        fail "lintian reports errors"
fi
echo "lintian: $(grep -c '^E: ' "$work/lintian" || true) errors, $(grep -c '^W: ' "$work/lintian" || true) warnings"

cp "$deb" "$out/vkd.deb"
echo "PASS: $out/vkd.deb"
