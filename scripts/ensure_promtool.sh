#!/usr/bin/env bash
# Make sure `promtool` exists for the tests that check deploy/prometheus/ (`promtool check
# config`, `check rules`, `test rules`). Installs Debian's `prometheus` package (which ships
# promtool) only when promtool is missing, and only where apt-get can run as root;
# otherwise it says so and those tests skip with that reason (CI requires them:
# WHOOSH_REQUIRE_PROMTOOL). The package's own Prometheus service is kept from starting.
# Never fails the caller: exit status is 0 whether or not promtool could be installed.
PROMTOOL="${WHOOSH_PROMTOOL:-promtool}"
command -v "$PROMTOOL" >/dev/null 2>&1 && exit 0

say() { echo "whoosh: $*" >&2; }

if ! command -v apt-get >/dev/null 2>&1; then
  say "promtool not found and no apt-get here: install Prometheus' promtool to run its tests"
  exit 0
fi
SUDO=""
if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO="sudo -n"
  else
    say "promtool not found and not root: run 'apt-get install prometheus' to run its tests"
    exit 0
  fi
fi

say "installing Debian's prometheus package for promtool (first run only)"
# The package's init script would start a Prometheus server on :9090: only promtool is
# wanted. policy-rc.d is only added (and removed) when the machine has none.
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
    prometheus >/tmp/whoosh-apt-promtool.log 2>&1
}
# A fresh machine may have no package lists yet (or stale ones): update once and retry.
if ! install; then
  $SUDO apt-get update -q >/tmp/whoosh-apt-update.log 2>&1 || true
  if ! install; then
    say "could not install prometheus (see /tmp/whoosh-apt-promtool.log); promtool tests will skip"
    exit 0
  fi
fi
if command -v promtool >/dev/null 2>&1; then
  say "promtool installed"
else
  say "prometheus installed but promtool is missing; promtool tests will skip"
fi
exit 0
