#!/usr/bin/env bash
# Make sure Debian's Chromium exists for the dashboard's browser tests (tests/browser/),
# which drive it headless through the `playwright` Python package with executable_path set
# to it: Playwright's own browser download is never used. Installs the `chromium` package
# only when /usr/bin/chromium is missing, and only where apt-get can run as root
# (apt_install.sh); otherwise it says so and the browser tests skip with that reason.
# Never fails the caller: exit status is 0 whether or not Chromium could be installed.
CHROMIUM="${WHOOSH_CHROMIUM:-/usr/bin/chromium}"
[ -x "$CHROMIUM" ] && exit 0

source "$(dirname "${BASH_SOURCE[0]}")/apt_install.sh"
apt_install chromium "$CHROMIUM" "the browser tests" "Chromium" \
  /tmp/whoosh-apt-install-chromium.log || exit 0
if [ -x "$CHROMIUM" ]; then
  say "chromium installed"
else
  say "chromium installed but $CHROMIUM is missing; browser tests will skip"
fi
exit 0
