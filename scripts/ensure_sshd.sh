#!/usr/bin/env bash
# Make sure an OpenSSH server binary exists for the SSH transport's tests (they start their
# own sshd on a loopback port with a throwaway config; nothing here configures or starts one).
# Installs Debian's openssh-server only when /usr/sbin/sshd is missing, and only where
# apt-get can run as root; otherwise it says so and the sshd tests skip with that reason.
# Never fails the caller: exit status is 0 whether or not sshd could be installed.
SSHD="${WHOOSH_SSHD:-/usr/sbin/sshd}"
[ -x "$SSHD" ] && exit 0

say() { echo "whoosh: $*" >&2; }

if ! command -v apt-get >/dev/null 2>&1; then
  say "$SSHD not found and no apt-get here: install an OpenSSH server to run the SSH tests"
  exit 0
fi
SUDO=""
if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO="sudo -n"
  else
    say "$SSHD not found and not root: run 'apt-get install openssh-server' to run the SSH tests"
    exit 0
  fi
fi

say "installing openssh-server for the SSH tests (first run only)"
# Keep the package's init script from starting a system sshd on port 22: the tests start
# their own. policy-rc.d is only added (and removed) when the machine has none.
POLICY=/usr/sbin/policy-rc.d
ADDED_POLICY=""
if [ ! -e "$POLICY" ]; then
  if $SUDO sh -c "printf '#!/bin/sh\nexit 101\n' > $POLICY && chmod +x $POLICY"; then
    ADDED_POLICY=1
  fi
fi
cleanup() { [ -n "$ADDED_POLICY" ] && $SUDO rm -f "$POLICY"; }
trap cleanup EXIT

install() {
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    openssh-server >/tmp/whoosh-apt-install.log 2>&1
}
# A fresh machine may have no package lists yet (or stale ones): update once and retry.
if ! install; then
  $SUDO apt-get update -q >/tmp/whoosh-apt-update.log 2>&1 || true
  if ! install; then
    say "could not install openssh-server (see /tmp/whoosh-apt-install.log); SSH tests will skip"
    exit 0
  fi
fi
if [ -x "$SSHD" ]; then
  say "openssh-server installed"
else
  say "openssh-server installed but $SSHD is missing; SSH tests will skip"
fi
exit 0
