# Sourced by the install scripts. `apt_install NAME PACKAGE...` installs
# Debian packages quietly, without recommends, through sudo unless root,
# saying so under NAME. A fresh machine may have no package lists yet, so
# they are updated first.
apt_install() {
  local name=$1
  shift
  local sudo=()
  [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  echo "$name: apt-get install $*"
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
    --no-install-recommends "$@" >/dev/null
}
