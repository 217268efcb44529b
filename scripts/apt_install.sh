# Sourced by ensure_sshd.sh, ensure_promtool.sh and ensure_chromium.sh: install one Debian package for tests
# that need a system tool, only where apt-get can run as root (as root, or through
# password-less sudo); otherwise say what to install by hand. The package's init script is
# kept from starting a service (policy-rc.d, only added, and removed, when the machine has
# none). Never exits: the caller decides, and its own exit status stays 0.
#
#   apt_install PACKAGE MISSING TESTS HOW LOG
#     PACKAGE  the Debian package, e.g. openssh-server
#     MISSING  what is missing, for messages (a command or a path)
#     TESTS    which tests need it, for messages ("the SSH tests")
#     HOW      what to install where there is no apt-get ("an OpenSSH server")
#     LOG      apt-get install's output (apt-get update's goes to /tmp/whoosh-apt-update.log)
#   Status 0 when apt-get installed the package, 1 when it could not (already said why).

say() { echo "whoosh: $*" >&2; }

apt_install() {
  local package="$1" missing="$2" tests="$3" how="$4" log="$5"
  if ! command -v apt-get >/dev/null 2>&1; then
    say "$missing not found and no apt-get here: install $how to run $tests"
    return 1
  fi
  local sudo=""
  if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
      sudo="sudo -n"
    else
      say "$missing not found and not root: run 'apt-get install $package' to run $tests"
      return 1
    fi
  fi

  say "installing $package for $tests (first run only)"
  # The package's init script would start its service (sshd on :22, Prometheus on :9090):
  # only the binary is wanted.
  APT_INSTALL_POLICY=/usr/sbin/policy-rc.d
  APT_INSTALL_SUDO="$sudo"
  if [ ! -e "$APT_INSTALL_POLICY" ] &&
    $sudo sh -c "printf '#!/bin/sh\nexit 101\n' > $APT_INSTALL_POLICY && chmod +x $APT_INSTALL_POLICY"; then
    trap '$APT_INSTALL_SUDO rm -f "$APT_INSTALL_POLICY"' EXIT
  fi

  local status=0
  # A fresh machine may have no package lists yet (or stale ones): update once and retry.
  if ! _apt_get_install "$sudo" "$package" "$log"; then
    $sudo apt-get update -q >/tmp/whoosh-apt-update.log 2>&1 || true
    if ! _apt_get_install "$sudo" "$package" "$log"; then
      say "could not install $package (see $log); $tests will skip"
      status=1
    fi
  fi
  return $status
}

_apt_get_install() {
  $1 env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    "$2" >"$3" 2>&1
}
