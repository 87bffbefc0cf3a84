# Helpers shared by the scripts (sourced, not run).

# Prints the path of a program: on PATH, or in the sbin/bin folders Debian installs servers into
# (/usr/sbin is not on every user's PATH).
find_bin() {
  local name="$1"
  command -v "$name" 2>/dev/null && return 0
  for d in /usr/sbin /usr/bin /usr/local/bin; do
    [ -x "$d/$name" ] && { echo "$d/$name"; return 0; }
  done
  return 1
}

# Installs the project's dependencies (npm ci) when node_modules is missing or older than the lock file.
# $1: the tag of the calling script, for the message.
ensure_node_modules() {
  if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    echo "[$1] installing dependencies (npm ci)"
    npm ci --no-audit --no-fund
  fi
}
