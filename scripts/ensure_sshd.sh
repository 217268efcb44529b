#!/usr/bin/env bash
# Make sure an OpenSSH server binary exists for the SSH transport's tests (they start their
# own sshd on a loopback port with a throwaway config; nothing here configures or starts one).
# Installs Debian's openssh-server only when /usr/sbin/sshd is missing, and only where
# apt-get can run as root (apt_install.sh); otherwise it says so and the sshd tests skip
# with that reason. Never fails the caller: exit status is 0 whether or not sshd could be
# installed.
SSHD="${WHOOSH_SSHD:-/usr/sbin/sshd}"
[ -x "$SSHD" ] && exit 0

source "$(dirname "${BASH_SOURCE[0]}")/apt_install.sh"
apt_install openssh-server "$SSHD" "the SSH tests" "an OpenSSH server" \
  /tmp/whoosh-apt-install.log || exit 0
if [ -x "$SSHD" ]; then
  say "openssh-server installed"
else
  say "openssh-server installed but $SSHD is missing; SSH tests will skip"
fi
exit 0
