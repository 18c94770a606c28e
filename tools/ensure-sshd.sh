#!/usr/bin/env bash
# Makes sure Debian's OpenSSH server, SFTP server and client are installed: the lab's
# nodes run a real sshd on loopback (tests start it; nothing is started here), and a
# node's shell hands SFTP sessions to a chrooted `sshd -i` through the `ssh` client.
set -euo pipefail
if [[ -x /usr/sbin/sshd && -x /usr/lib/openssh/sftp-server && -x /usr/bin/ssh ]]; then
  exit 0
fi
SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get install -y --no-install-recommends openssh-server openssh-sftp-server openssh-client >&2 \
  || { $SUDO apt-get update >&2 && $SUDO apt-get install -y --no-install-recommends openssh-server openssh-sftp-server openssh-client >&2; }
# The package may start its own daemon on port 22; the lab does not use it.
$SUDO systemctl disable --now ssh.service >/dev/null 2>&1 || true
test -x /usr/sbin/sshd
