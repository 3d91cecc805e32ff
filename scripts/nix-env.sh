# Sourced by scripts/serve and scripts/test: a Nix configuration that works
# as root without the daemon (Debian's nix-bin), unless the user has one.
# Single-user root installs have no `nixbld` group, so builds run as root
# without build users, and without the sandbox (it needs build users).
if [[ -z "${NIX_CONFIG:-}" && ! -e /etc/nix/nix.conf ]] && ! getent group nixbld >/dev/null; then
  export NIX_CONFIG=$'build-users-group =\nsandbox = false\nbuild-poll-interval = 1'
fi
