#!/usr/bin/env bash
# Make sure `promtool` exists for the tests that check deploy/prometheus/ (`promtool check
# config`, `check rules`, `test rules`). Installs Debian's `prometheus` package (which ships
# promtool) only when promtool is missing, and only where apt-get can run as root
# (apt_install.sh); otherwise it says so and those tests skip with that reason (CI requires
# them: WHOOSH_REQUIRE_PROMTOOL). The package's own Prometheus service is kept from starting.
# Never fails the caller: exit status is 0 whether or not promtool could be installed.
PROMTOOL="${WHOOSH_PROMTOOL:-promtool}"
command -v "$PROMTOOL" >/dev/null 2>&1 && exit 0

source "$(dirname "${BASH_SOURCE[0]}")/apt_install.sh"
apt_install prometheus "$PROMTOOL" "the promtool tests" "Prometheus' promtool" \
  /tmp/whoosh-apt-promtool.log || exit 0
if command -v promtool >/dev/null 2>&1; then
  say "promtool installed"
else
  say "prometheus installed but promtool is missing; promtool tests will skip"
fi
exit 0
