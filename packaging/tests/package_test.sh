#!/usr/bin/env bash
# Packaging tests (CTest prefix "packaging: "), one verb per test:
#
#   build      BUILD OUT   cpack the agent and server .deb and .rpm into OUT
#   lintian    BUILD OUT   no lintian errors (overrides: packaging/lintian/)
#   units      BUILD OUT   systemd-analyze verify + security, agent unit without mount namespace
#   agent-deb  BUILD OUT   install, upgrade, remove, purge mamori-agent in a throwaway root
#   server-deb BUILD OUT   the same for mamori-server (and its user)
#   mountns    BUILD OUT   the packaged agent protects from the host's mount namespace only
#   caps       BUILD OUT   the packaged agent protects under the unit's capabilities and no_new_privs
#   server-sandbox BUILD OUT  the packaged server runs unprivileged on a read-only system
#   rpm        BUILD OUT   files, %config(noreplace), scriptlets and requirements of the rpms
#
# Nothing is installed into the real root: dpkg runs with --root on a temporary
# directory and --force-script-chrootless, so the maintainer scripts run on the
# host with DPKG_ROOT set (they and deb-systemd-helper honor it).
set -euo pipefail

verb=$1
build=$2
out=$3

fail() {
  echo "FAIL: $*" >&2
  exit 1
}

need() {
  for tool in "$@"; do
    command -v "$tool" >/dev/null 2>&1 || fail "$tool is missing (scripts/install-deps installs it)"
  done
}

pkg() {  # pkg agent|server deb|rpm -> path of the built package
  local f
  if [ "$2" = deb ]; then f=$(ls "$out"/mamori-"$1"_*.deb 2>/dev/null | head -n1); else f=$(ls "$out"/mamori-"$1"-*.rpm 2>/dev/null | head -n1); fi
  [ -n "$f" ] || fail "no mamori-$1 .$2 in $out (the build test makes it)"
  echo "$f"
}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/mamori-pkg-test.XXXXXX")
trap 'umount -l "$tmp/watch" 2>/dev/null || true; rm -rf "$tmp"' EXIT

case "$verb" in
build)
  need cpack dpkg-deb dpkg-shlibdeps rpmbuild gzip
  prefix=$(sed -n 's/^CMAKE_INSTALL_PREFIX:PATH=//p' "$build/CMakeCache.txt")
  [ "$prefix" = /usr ] || fail "configure with -DCMAKE_INSTALL_PREFIX=/usr (the release preset does): the binaries carry /usr/share/mamori as their default paths, this build has '$prefix'"
  rm -rf "$out"
  mkdir -p "$out"
  start=$(date +%s)
  cpack --config "$build/CPackConfig.cmake" -B "$tmp/cpack" -G "DEB;RPM" >"$tmp/cpack.log" 2>&1 || {
    cat "$tmp/cpack.log"
    fail "cpack"
  }
  mv "$tmp"/cpack/*.deb "$tmp"/cpack/*.rpm "$out"/
  ls -l "$out"
  echo "cpack took $(($(date +%s) - start)) s"
  for p in agent server; do
    pkg $p deb >/dev/null
    pkg $p rpm >/dev/null
  done
  [ "$(ls "$out" | wc -l)" -eq 4 ] || fail "expected exactly 4 packages in $out"
  ;;

lintian)
  need lintian
  # --fail-on error: warnings are printed (docs/packaging.md lists them) but
  # only errors fail; justified overrides ship in /usr/share/lintian/overrides.
  lintian --allow-root --fail-on error --display-level ">=warning" --show-overrides "$(pkg agent deb)" "$(pkg server deb)" \
    || fail "lintian reports errors (above)"
  ;;

units)
  need systemd-analyze dpkg-deb
  # A root holding the packaged units plus the system's own units (targets
  # the units order against) and /bin/kill (ExecReload).
  root=$tmp/root
  mkdir -p "$root/usr/lib/systemd/system" "$root/bin"
  dpkg-deb -x "$(pkg agent deb)" "$root"
  dpkg-deb -x "$(pkg server deb)" "$root"
  for d in /usr/lib/systemd/system /lib/systemd/system; do
    [ -d "$d" ] && cp -rn "$d"/. "$root/usr/lib/systemd/system/" 2>/dev/null || true
  done
  for k in /bin/kill /usr/bin/kill; do
    if [ -x "$k" ]; then cp "$k" "$root/bin/kill"; break; fi
  done
  [ -x "$root/bin/kill" ] || fail "no kill(1) to copy (procps)"
  units=("$root"/usr/lib/systemd/system/mamori-agent.service "$root"/usr/lib/systemd/system/mamori-server.service)
  # verify exits 0 on unknown keys and bad values (it only warns): any output fails.
  if ! systemd-analyze verify --man=no --root="$root" "${units[@]}" >"$tmp/verify.log" 2>&1 || [ -s "$tmp/verify.log" ]; then
    cat "$tmp/verify.log"
    fail "systemd-analyze verify"
  fi
  echo "systemd-analyze verify: OK"
  # Exposure (0 safest .. 10): a bound per unit, so hardening is not lost silently.
  for u in mamori-agent:5.7 mamori-server:1.5; do
    name=${u%%:*}
    max=${u##*:}
    level=$(systemd-analyze security --offline=yes --root="$root" "$name.service" 2>&1 | sed -n "s/.*Overall exposure level for $name.service: \([0-9.]*\).*/\1/p")
    [ -n "$level" ] || fail "systemd-analyze security gave no exposure level for $name"
    echo "$name.service exposure $level (bound $max)"
    awk -v l="$level" -v m="$max" 'BEGIN { exit !(l <= m) }' || fail "$name.service exposure $level is above $max"
  done
  # The agent must share the host's mount namespace: fanotify mount marks set
  # in a private namespace mark copies of the mounts and see no access made
  # through the host's (docs/packaging.md). These directives create one.
  ns='^(ProtectSystem|ProtectHome|PrivateTmp|PrivateDevices|PrivateMounts|PrivateUsers|ProtectKernelTunables|ProtectKernelModules|ProtectKernelLogs|ProtectControlGroups|ProtectProc|ProcSubset|ReadWritePaths|ReadOnlyPaths|InaccessiblePaths|ExecPaths|NoExecPaths|TemporaryFileSystem|BindPaths|BindReadOnlyPaths|RootDirectory|RootImage|MountAPIVFS|DynamicUser|NetworkNamespacePath)='
  if grep -E "$ns" "$root/usr/lib/systemd/system/mamori-agent.service"; then
    fail "mamori-agent.service sets a directive that gives it a private mount namespace (above)"
  fi
  grep -qx 'Type=notify' "${units[0]}" || fail "mamori-agent.service is not Type=notify"
  grep -q '^WatchdogSec=' "${units[0]}" || fail "mamori-agent.service has no WatchdogSec"
  grep -qx 'User=mamori' "${units[1]}" || fail "mamori-server.service does not run as user mamori"
  grep -qx 'CapabilityBoundingSet=' "${units[1]}" || fail "mamori-server.service keeps capabilities"
  ;;

agent-deb | server-deb)
  need dpkg dpkg-deb dpkg-query
  comp=${verb%-deb}
  name=mamori-$comp
  deb=$(pkg "$comp" deb)
  root=$tmp/root
  # A minimal root: dpkg's database and the account files a system has.
  mkdir -p "$root/var/lib/dpkg/info" "$root/var/lib/dpkg/updates" "$root/var/lib/dpkg/triggers" "$root/etc" "$root/var/log"
  touch "$root/var/lib/dpkg/status" "$root/var/lib/dpkg/available"
  echo 'root:x:0:0:root:/root:/bin/bash' >"$root/etc/passwd"
  echo 'root:x:0:' >"$root/etc/group"
  echo 'root:*:19000:0:99999:7:::' >"$root/etc/shadow"
  echo 'root:*::' >"$root/etc/gshadow"
  chmod 0640 "$root/etc/shadow" "$root/etc/gshadow"
  snapshot() {  # files and links, without dpkg's own records and account-file backups
    (cd "$root" && find . \( -type f -o -type l \) ! -path './var/lib/dpkg/*' ! -path './var/log/dpkg.log' \
      ! -name '*-' ! -name '.pwd.lock' | sort)
  }
  snapshot >"$tmp/before"
  rdpkg() { dpkg --root="$root" --force-script-chrootless --force-depends --log=/dev/null "$@" </dev/null; }
  status() { dpkg-query --root="$root" -W -f='${Status} ${Version}' "$name" 2>/dev/null || true; }
  mode() { stat -c '%a %u' "$root/$1" 2>/dev/null || echo "missing"; }
  expect_mode() { [ "$(mode "$1")" = "$2" ] || fail "$1: mode/owner '$(mode "$1")', expected '$2'"; }

  # --- install
  rdpkg -i "$deb" >"$tmp/dpkg.log" 2>&1 || { cat "$tmp/dpkg.log"; fail "dpkg -i $deb"; }
  [ "$(status)" = "install ok installed 0.1.0" ] || [[ "$(status)" == "install ok installed "* ]] || fail "status after install: $(status)"
  # Every file under /usr or /etc/mamori; nothing in /var (data is made by postinst).
  bad=$(dpkg-query --root="$root" -L "$name" | grep -vE '^(/\.|/usr(/.*)?|/etc|/etc/mamori(/.*)?)$' || true)
  [ -z "$bad" ] || fail "files outside /usr and /etc/mamori: $bad"
  conffiles=$(dpkg-query --root="$root" -W -f='${Conffiles}' "$name")
  [[ "$conffiles" == *"/etc/mamori/$comp.yaml"* ]] || fail "conffiles: '$conffiles' lacks /etc/mamori/$comp.yaml"
  expect_mode usr/lib/systemd/system/$name.service "644 0"
  expect_mode usr/share/doc/$name/copyright "644 0"
  expect_mode usr/share/doc/$name/changelog.gz "644 0"
  [ -n "$(ls "$root"/usr/share/man/man8/$name.8.gz 2>/dev/null)" ] || fail "no manual page $name(8)"
  [ -L "$root/etc/systemd/system/multi-user.target.wants/$name.service" ] || fail "$name.service was not enabled"
  if [ "$comp" = agent ]; then
    expect_mode usr/sbin/mamori-agent "755 0"
    expect_mode usr/bin/mamori "755 0"
    expect_mode etc/mamori/agent.yaml "600 0"
    expect_mode var/lib/mamori "700 0"
    [ -s "$root/usr/share/mamori/signatures/yara/eicar.yar" ] || fail "default signatures missing"
    ls "$root"/usr/share/mamori/behavior/*.yml >/dev/null 2>&1 || fail "default behavior rules missing"
    # The shipped config, with the shipped paths moved into the root.
    sed "s#/usr/share/mamori#$root/usr/share/mamori#g; s#/var/lib/mamori#$root/var/lib/mamori#g" \
      "$root/etc/mamori/agent.yaml" >"$tmp/agent.yaml"
    "$root/usr/sbin/mamori-agent" --config "$tmp/agent.yaml" --check-config | tee "$tmp/check.log" \
      || fail "mamori-agent --check-config rejects the shipped config"
    grep -Eq 'OK \([1-9][0-9]* hashes, [1-9][0-9]* YARA rules, [1-9][0-9]* behavior rules\)' "$tmp/check.log" \
      || fail "the shipped config loads no signatures or rules"
    "$root/usr/bin/mamori" --version >/dev/null || fail "mamori --version"
    data=var/lib/mamori
    owner=0
  else
    expect_mode usr/sbin/mamori-server "755 0"
    expect_mode usr/bin/mamori-sig "755 0"
    expect_mode etc/mamori/server.yaml "644 0"
    expect_mode usr/lib/sysusers.d/mamori-server.conf "644 0"
    uid=$(awk -F: '$1 == "mamori" { print $3 }' "$root/etc/passwd")
    [ -n "$uid" ] && [ "$uid" -gt 0 ] && [ "$uid" -lt 1000 ] || fail "no system user mamori in the root's /etc/passwd"
    grep -q '^mamori:' "$root/etc/group" || fail "no group mamori"
    grep -q '^mamori:.*:/usr/sbin/nologin$' "$root/etc/passwd" || fail "user mamori can log in"
    expect_mode var/lib/mamori-server "700 $uid"
    sed "s#/var/lib/mamori-server#$root/var/lib/mamori-server#g" "$root/etc/mamori/server.yaml" >"$tmp/server.yaml"
    "$root/usr/sbin/mamori-server" --config "$tmp/server.yaml" --check-config \
      || fail "mamori-server --check-config rejects the shipped config"
    "$root/usr/bin/mamori-sig" --help >/dev/null 2>&1 || fail "mamori-sig --help"
    if [ "${MAMORI_PKG_EXPECT_MAMORICTL:-0}" = 1 ]; then
      expect_mode usr/bin/mamorictl "755 0"
    fi
    data=var/lib/mamori-server
    owner=$uid
  fi

  # --- upgrade to a newer version: data and a changed conffile are kept
  # Stand-ins for what the programs write at run time.
  if [ "$comp" = agent ]; then
    kept=(quarantine/0001.vault spool/000001.seg enrollment/client.key)
  else
    kept=(ca/ca.key ca/ca.crt mamori.db)
  fi
  for f in "${kept[@]}"; do
    mkdir -p "$(dirname "$root/$data/$f")"
    echo "written at run time: $f" >"$root/$data/$f"
    chmod 0600 "$root/$data/$f"
  done
  chmod 0711 "$root/$data"  # an admin's change: upgrades must not reset it
  (cd "$root/$data" && find . -type f -exec sha256sum {} + | sort) >"$tmp/data.sum"
  echo "# changed by the admin" >>"$root/etc/mamori/$comp.yaml"
  conf_sum=$(sha256sum <"$root/etc/mamori/$comp.yaml")
  dpkg-deb -R "$deb" "$tmp/next"
  sed -i 's/^Version: .*/Version: 0.1.0+upgradetest/' "$tmp/next/DEBIAN/control"
  dpkg-deb --root-owner-group -Zgzip -b "$tmp/next" "$tmp/next.deb" >/dev/null
  rdpkg -i "$tmp/next.deb" >"$tmp/dpkg.log" 2>&1 || { cat "$tmp/dpkg.log"; fail "upgrade"; }
  [ "$(status)" = "install ok installed 0.1.0+upgradetest" ] || fail "status after upgrade: $(status)"
  [ "$(sha256sum <"$root/etc/mamori/$comp.yaml")" = "$conf_sum" ] || fail "upgrade replaced the changed /etc/mamori/$comp.yaml"
  (cd "$root/$data" && find . -type f -exec sha256sum {} + | sort) | cmp -s - "$tmp/data.sum" || fail "upgrade changed $data"
  expect_mode "$data" "711 $owner"
  [ -L "$root/etc/systemd/system/multi-user.target.wants/$name.service" ] || fail "$name.service not enabled after upgrade"

  # --- remove: programs go; configuration and data stay
  rdpkg -r "$name" >"$tmp/dpkg.log" 2>&1 || { cat "$tmp/dpkg.log"; fail "dpkg -r"; }
  [[ "$(status)" == "deinstall ok config-files"* ]] || fail "status after remove: $(status)"
  [ ! -e "$root/usr/sbin/$name" ] || fail "remove left /usr/sbin/$name"
  [ ! -e "$root/usr/lib/systemd/system/$name.service" ] || fail "remove left the unit"
  [ "$(sha256sum <"$root/etc/mamori/$comp.yaml")" = "$conf_sum" ] || fail "remove changed /etc/mamori/$comp.yaml"
  (cd "$root/$data" && find . -type f -exec sha256sum {} + | sort) | cmp -s - "$tmp/data.sum" || fail "remove changed $data"
  if [ "$comp" = server ]; then grep -q '^mamori:' "$root/etc/passwd" || fail "remove deleted the user"; fi
  left=$(comm -13 "$tmp/before" <(snapshot))
  echo "left after remove (purge removes these):"
  echo "$left" | sed 's/^/  /'
  # As with debhelper: the unit is masked and its enablement remembered
  # (a reinstall enables it again); purge clears both.
  unexpected=$(echo "$left" | grep -vE "^\./(etc/mamori/$comp\.yaml|$data/.*|etc/systemd/system/(multi-user\.target\.wants/)?$name\.service|var/lib/systemd/deb-systemd-helper-(enabled|masked)/.*$name.*)$" || true)
  [ -z "$unexpected" ] || fail "remove left more than configuration, data and the unit's mask and enablement: $unexpected"

  # --- purge: nothing of ours is left
  rdpkg -P "$name" >"$tmp/dpkg.log" 2>&1 || { cat "$tmp/dpkg.log"; fail "dpkg -P"; }
  [ -z "$(status)" ] || [[ "$(status)" == "unknown ok not-installed"* ]] || fail "status after purge: $(status)"
  snapshot | diff "$tmp/before" - || fail "purge left files (above)"
  remains=$(cd "$root" && find . -name '*mamori*' ! -path './var/lib/dpkg/*')
  [ -z "$remains" ] || fail "purge left: $remains"
  if grep -q mamori "$root/etc/passwd" "$root/etc/group" "$root/etc/shadow" "$root/etc/gshadow"; then
    fail "purge left the user or group mamori"
  fi
  echo "$name: install, upgrade, remove and purge OK"
  ;;

mountns | caps)
  # The packaged agent, on-access "deny" on a temporary folder, and a read of
  # an EICAR file there from this shell.
  #   mountns: why the agent unit has no mount-namespace hardening: the read
  #            is denied, and is not when the agent runs in a private mount
  #            namespace.
  #   caps:    the unit's CapabilityBoundingSet and NoNewPrivileges are
  #            enough: under exactly those the eBPF sensor starts and the read
  #            is denied. (Its seccomp filter needs systemd; not run here.)
  need dpkg-deb unshare setpriv timeout
  [ "$(id -u)" -eq 0 ] || fail "needs root (fanotify, eBPF)"
  root=$tmp/root
  dpkg-deb -x "$(pkg agent deb)" "$root"
  mkdir -p "$tmp/watch" "$tmp/data"
  # On-access marks whole mounts: the watched folder is a tmpfs of its own, so
  # no other process on the machine is scanned or denied by this agent.
  mount -t tmpfs -o size=1m,mode=0755 mamori-pkg-test "$tmp/watch" || fail "cannot mount a tmpfs for the test"
  printf '%s' 'X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR' '-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*' >"$tmp/watch/eicar.txt"
  if [ "$verb" = mountns ]; then
    behavior=("behavior:" "  enabled: false")
  else
    # Alerts only: responses (kills) could hit other processes on the machine.
    behavior=("behavior:" "  enabled: true" "  sensor: ebpf" "  responses: false" "  rules: [$root/usr/share/mamori/behavior]")
  fi
  printf '%s\n' "data_dir: $tmp/data" "control_socket: $tmp/agent.sock" \
    "signatures: [$root/usr/share/mamori/signatures]" "onaccess:" "  open_paths: [$tmp/watch]" "  action: deny" \
    "${behavior[@]}" >"$tmp/agent.yaml"
  read_with_agent() {  # read_with_agent WRAPPER... -> "denied" or "allowed"
    "$@" timeout 120 "$root/usr/sbin/mamori-agent" --config "$tmp/agent.yaml" >"$tmp/agent.log" 2>&1 &
    local pid=$!
    # Up to 60 s: the machine may be busy with a whole parallel test suite.
    for _ in $(seq 600); do
      grep -qs 'mamori-agent started' "$tmp/agent.log" && break
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    if ! grep -qs 'mamori-agent started' "$tmp/agent.log"; then
      kill -TERM "$pid" 2>/dev/null || true
      local status=0
      wait "$pid" || status=$?
      cat "$tmp/agent.log" >&2
      fail "the agent did not start (${*:-no wrapper}; exit status $status)"
    fi
    if cat "$tmp/watch/eicar.txt" >/dev/null 2>&1; then echo allowed; else echo denied; fi
    kill -TERM "$pid"
    wait "$pid" || true
    rm -f "$tmp/agent.sock"
  }
  if [ "$verb" = mountns ]; then
    host=$(read_with_agent env)
    private=$(read_with_agent unshare --mount --propagation slave)
    echo "agent in the host's mount namespace: read $host; in a private one: read $private"
    [ "$host" = denied ] || fail "the agent did not deny the EICAR read in the host namespace"
    [ "$private" = allowed ] || fail "the agent in a private mount namespace now sees the host's accesses: mount-namespace hardening may be possible (docs/packaging.md)"
  else
    unit=$root/usr/lib/systemd/system/mamori-agent.service
    grep -qx 'NoNewPrivileges=yes' "$unit" || fail "the agent unit lost NoNewPrivileges"
    caps=$(sed -n 's/^CapabilityBoundingSet=//p' "$unit" | tr 'A-Z ' 'a-z,' | sed 's/cap_/+/g')
    [ -n "$caps" ] || fail "the agent unit has no CapabilityBoundingSet"
    echo "bounding set: $caps"
    result=$(read_with_agent setpriv --bounding-set="-all,$caps" --no-new-privs)
    echo "read under the unit's capabilities: $result"
    grep -q 'behavior sensor ebpf: started' "$tmp/agent.log" || { cat "$tmp/agent.log" >&2; fail "the eBPF sensor did not start"; }
    [ "$result" = denied ] || fail "the agent did not deny the EICAR read under the unit's capabilities"
  fi
  ;;

server-sandbox)
  # The server unit's premise, without systemd: the packaged mamori-server
  # runs as an unprivileged user with no capabilities and no_new_privs, on a
  # file system that is read-only except its state directory (what
  # User=, CapabilityBoundingSet=, ProtectSystem=strict and StateDirectory=
  # give it): it makes its CA, keys and database there and serves TLS.
  need dpkg-deb unshare setpriv timeout findmnt python3
  [ "$(id -u)" -eq 0 ] || fail "needs root (mount namespace, user switch)"
  chmod 0755 "$tmp"
  root=$tmp/root
  dpkg-deb -x "$(pkg server deb)" "$root"
  state=$tmp/state
  mkdir -m 0700 "$state"
  chown 65534:65534 "$state"
  # Port 0: the kernel picks a free one and the server's log names it (a port
  # picked here and bound later could be taken by a test running beside this one).
  printf '%s\n' "listen: 127.0.0.1:0" "data_dir: $state" >"$tmp/server.yaml"
  chmod 0644 "$tmp/server.yaml"
  # In a private mount namespace (the host's mounts are never changed): the
  # state directory becomes its own mount, then / and the mount holding the
  # test directory are remounted read-only.
  tmpmount=$(findmnt -n -o TARGET --target "$tmp")
  unshare --mount --propagation private sh -c '
    mount --bind "$1" "$1" && mount -o remount,bind,ro / && mount -o remount,bind,ro "$2" || exit 90
    if touch "$3/probe" 2>/dev/null; then exit 91; fi
    exec setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all --bounding-set=-all --no-new-privs \
      timeout 120 "$4" --config "$5"' sh "$state" "$tmpmount" "$tmp" "$root/usr/sbin/mamori-server" "$tmp/server.yaml" \
    >"$tmp/server.log" 2>&1 &
  pid=$!
  for _ in $(seq 600); do
    grep -qs 'mamori-server listening' "$tmp/server.log" && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if ! grep -qs 'mamori-server listening' "$tmp/server.log"; then
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" || echo "exit status $?" >>"$tmp/server.log"
    cat "$tmp/server.log" >&2
    fail "the server did not start in the sandbox (exit 90: mounts, 91: / still writable)"
  fi
  port=$(sed -n 's/.*mamori-server listening on 127\.0\.0\.1:\([0-9][0-9]*\) .*/\1/p' "$tmp/server.log" | head -1)
  [ -n "$port" ] && [ "$port" != 0 ] || fail "no port in the server's log"
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || fail "nothing accepts connections on 127.0.0.1:$port"
  kill -TERM "$pid"
  status=0
  wait "$pid" || status=$?
  cat "$tmp/server.log"
  [ "$status" -eq 0 ] || fail "the server exited with status $status on SIGTERM"
  for f in ca/ca.key ca/ca.crt ca/server.key mamori.db; do
    [ "$(stat -c '%u' "$state/$f" 2>/dev/null)" = 65534 ] || fail "$f was not made by the unprivileged server"
  done
  [ "$(stat -c '%a' "$state/ca/ca.key")" = 600 ] || fail "ca.key is not 0600"
  [ ! -e "$tmp/probe" ] || fail "the sandbox was not read-only"
  echo "mamori-server: started, served and stopped as uid 65534 without capabilities on a read-only system"
  ;;

rpm)
  need rpm
  for comp in agent server; do
    r=$(pkg "$comp" rpm)
    rpm -qpl "$r" >"$tmp/files" 2>/dev/null
    rpm -qp --qf '[%{FILEFLAGS:fflags} %{FILENAMES}\n]' "$r" >"$tmp/flags" 2>/dev/null
    rpm -qpR "$r" >"$tmp/requires" 2>/dev/null
    rpm -qp --scripts "$r" >"$tmp/scripts" 2>/dev/null
    rpm -qpi "$r" >"$tmp/info" 2>/dev/null
    # (Files, not pipes into grep -q: with pipefail, rpm's SIGPIPE would fail the check.)
    grep -qx "cn /etc/mamori/$comp.yaml" "$tmp/flags" || fail "$r: /etc/mamori/$comp.yaml is not %config(noreplace): $(grep yaml "$tmp/flags")"
    grep -qx "/usr/lib/systemd/system/mamori-$comp.service" "$tmp/files" || fail "$r: no unit"
    grep -qx "/usr/sbin/mamori-$comp" "$tmp/files" || fail "$r: no /usr/sbin/mamori-$comp"
    # No system directory is claimed by the package.
    if grep -xE '/etc|/usr|/usr/bin|/usr/sbin|/usr/lib|/usr/lib/systemd|/usr/lib/systemd/system|/usr/share|/usr/share/doc' "$tmp/files"; then
      fail "$r owns a system directory (above)"
    fi
    grep -q 'systemctl' "$tmp/scripts" || fail "$r: no systemd scriptlets"
    if grep -q '^/usr/lib/\.build-id' "$tmp/files"; then fail "$r ships /usr/lib/.build-id links"; fi
    if grep -q '^Relocations *: /' "$tmp/info"; then fail "$r is relocatable"; fi
    grep -q '^Summary *: Mamori' "$tmp/info" || fail "$r has CMake's default summary"
    grep -q 'libc.so.6' "$tmp/requires" || fail "$r: no library requirements found"
  done
  rpm -qpR "$(pkg agent rpm)" >"$tmp/requires" 2>/dev/null
  grep -q 'libyara' "$tmp/requires" || fail "the agent rpm does not require libyara"
  rpm -qpl "$(pkg agent rpm)" >"$tmp/files" 2>/dev/null
  grep -qx /usr/bin/mamori "$tmp/files" || fail "the agent rpm lacks /usr/bin/mamori"
  rpm -qp --scripts "$(pkg server rpm)" >"$tmp/scripts" 2>/dev/null
  grep -q 'useradd\|systemd-sysusers' "$tmp/scripts" || fail "the server rpm makes no user"
  echo "rpm packages OK"
  ;;

*)
  fail "unknown verb '$verb'"
  ;;
esac
