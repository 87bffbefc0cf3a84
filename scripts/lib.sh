# Helpers shared by the scripts (sourced, not run): the project's Node toolchain, its servers, and Debian
# package installs. Every script that runs the project (test.sh, demo.sh, bench.sh, faults.sh, compat.sh,
# servers.sh, .ci/run) goes through use_project_node and use_servers, so they all run the same versions and
# print them.
#
# Node (docs/OPERATIONS.md#toolchain):
#   NODE_VERSION   the Node.js version to run under: default 22.23.5 (the baseline, Node 22 LTS), installed
#                  once from the npm registry (package node-<os>-<arch>) into .cache/toolchain/node-<version>;
#                  `system`: the node already on PATH (must be 22 or newer).
# nats-server (minimum 2.10; docs/OPERATIONS.md#tested-versions):
#   NATS_SERVER_BIN       a nats-server binary to use, as is (checked against the minimum)
#   NATS_SERVER_VERSION   current (default): Debian unstable's package (2.15.x); minimum: Debian trixie's
#                         (2.10.x); system: the machine's nats-server. Debian packages are fetched with
#                         `apt-get download` from the project's own source list and unpacked with `dpkg -x`
#                         into .cache/servers/nats-server-<version>/: the machine's apt sources and installed
#                         packages are never changed. When they cannot be fetched (no apt-get, no network),
#                         the machine's nats-server is used if it is 2.10 or newer.
#   NATS_SERVER_REFRESH=1 fetch the package again (otherwise the one fetched first is kept)
# Chromium (the console's browser test, test/e2e/console.e2e-spec.ts; ensure_chromium):
#   CHROMIUM_BIN       a Chromium binary to use, as is
#   otherwise Debian 12's chromium (bookworm-security, 156.x: built for this glibc, unlike trixie's or
#   unstable's), packages chromium and chromium-common fetched and unpacked like nats-server into
#   .cache/browsers/chromium-<version>/; CHROMIUM_REFRESH=1 fetches again.
# Redis (docs/OPERATIONS.md#tested-versions):
#   REDIS_FLAVOR   redis (default): the machine's redis-server, installed from the machine's own Debian
#                  release (bookworm: 7.0) with apt-get when missing; valkey: Valkey 8.0, Debian
#                  bookworm-backports' valkey-server and valkey-tools, fetched and unpacked like nats-server
#                  into .cache/servers/valkey-<version>/ (VALKEY_REFRESH=1 fetches again).
#   REDIS_SERVER_BIN / REDIS_CLI_BIN   a server / CLI binary to use, as is (the CLI: by default the one beside
#                  the server, else the machine's redis-cli).
#
# The chosen binaries are exported as NATS_SERVER_BIN / REDIS_SERVER_BIN / REDIS_CLI_BIN, with REDIS_FLAVOR
# (test/support/servers.ts, test/support/clusters.ts, test/faults/procs.ts and bench/run.mjs read them), and
# a folder with them under their plain names (nats-server, redis-server, redis-cli) is put first on PATH,
# so a test that starts `nats-server` by name gets the same one.

LIB_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE_DIR="${META_AGENT_CACHE_DIR:-$LIB_ROOT/.cache}"
PROJECT_NODE_VERSION=22.23.5
NATS_SERVER_MIN_VERSION=2.10.0
DEBIAN_MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
DEBIAN_KEYRING="${DEBIAN_KEYRING:-/usr/share/keyrings/debian-archive-keyring.gpg}"
DEBIAN_SECURITY_MIRROR="${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}"

lib_log() { printf '[%s] %s\n' "$1" "${*:2}" >&2; }

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

# machine_bin NAME: like find_bin, but never one of the links use_servers puts first on PATH (a script run
# by a script of another REDIS_FLAVOR would find valkey-server there under the name redis-server).
machine_bin() {
  local d
  local IFS=:
  for d in $PATH /usr/sbin /usr/bin /usr/local/bin; do
    case "$d" in "" | "$CACHE_DIR/servers/path/"*) continue ;; esac
    if [ -x "$d/$1" ] && [ ! -d "$d/$1" ]; then echo "$d/$1"; return 0; fi
  done
  return 1
}

# version_ge A B: whether dotted version A >= B (numeric parts; a suffix such as -beta.1 is ignored).
version_ge() {
  local a b i
  IFS=. read -r -a a <<<"${1%%[-+]*}"
  IFS=. read -r -a b <<<"${2%%[-+]*}"
  for i in 0 1 2; do
    if (( 10#${a[i]:-0} > 10#${b[i]:-0} )); then return 0; fi
    if (( 10#${a[i]:-0} < 10#${b[i]:-0} )); then return 1; fi
  done
  return 0
}

# apt_install TAG PACKAGE...: installs Debian packages with the machine's apt (as root, or with sudo), without
# letting them start their system services (a policy-rc.d that refuses every start, only for the length of
# the install and only when the machine has none of its own: redis-server would take 6379, prometheus 9090).
apt_install() {
  local tag="$1"; shift
  if ! command -v apt-get >/dev/null 2>&1; then
    lib_log "$tag" "missing: $*; install them (Debian/Ubuntu: apt-get install -y $*) and retry"
    return 1
  fi
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
      lib_log "$tag" "missing: $*; run as root or install them: apt-get install -y $*"
      return 1
    fi
  fi
  local policy=/usr/sbin/policy-rc.d own_policy=""
  if [ ! -e "$policy" ]; then
    own_policy=1
    printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
    $sudo chmod 755 "$policy"
  fi
  lib_log "$tag" "installing Debian's $*"
  local status=0
  $sudo apt-get update -qq >/dev/null || status=$?
  if [ "$status" -eq 0 ]; then
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$@" >/dev/null || status=$?
  fi
  if [ -n "$own_policy" ]; then $sudo rm -f "$policy"; fi
  return "$status"
}

# ---- Node ----------------------------------------------------------------------------------------------

node_platform_package() {
  local os arch
  case "$(uname -s)" in Linux) os=linux ;; Darwin) os=darwin ;; *) return 1 ;; esac
  case "$(uname -m)" in x86_64 | amd64) arch=x64 ;; aarch64 | arm64) arch=arm64 ;; *) return 1 ;; esac
  echo "node-$os-$arch"
}

# Installs Node $1 from the npm registry into .cache/toolchain/node-$1 (once) and prints its bin folder.
install_node() {
  local version="$1" tag="$2" pkg
  pkg="$(node_platform_package)" || { lib_log "$tag" "no Node package for $(uname -s)/$(uname -m); use NODE_VERSION=system"; return 1; }
  local dir="$CACHE_DIR/toolchain/node-$version"
  local bin="$dir/node_modules/$pkg/bin"
  if [ ! -x "$bin/node" ]; then
    command -v npm >/dev/null 2>&1 || { lib_log "$tag" "npm is needed once to install Node $version (any Node.js 18+ with npm)"; return 1; }
    lib_log "$tag" "installing Node $version ($pkg from the npm registry) into ${dir#"$LIB_ROOT"/}"
    mkdir -p "$CACHE_DIR/toolchain"
    local tmp; tmp="$(mktemp -d "$CACHE_DIR/toolchain/.node-$version.XXXXXX")"
    if ! npm install --prefix "$tmp" --no-save --no-package-lock --no-audit --no-fund --loglevel=error "$pkg@$version" >&2; then
      rm -rf "$tmp"
      lib_log "$tag" "could not install $pkg@$version"
      return 1
    fi
    # Another script may have installed it meanwhile: then keep theirs.
    mv -T "$tmp" "$dir" 2>/dev/null || rm -rf "$tmp"
  fi
  echo "$bin"
}

# use_project_node TAG: puts the project's Node first on PATH (see NODE_VERSION above) and prints its version.
use_project_node() {
  local tag="$1" want="${NODE_VERSION:-$PROJECT_NODE_VERSION}"
  if [ "$want" != system ] && [ "$(node -v 2>/dev/null)" != "v$want" ]; then
    local bin
    bin="$(install_node "$want" "$tag")" || return 1
    export PATH="$bin:$PATH"
    hash -r
  fi
  local major
  major="$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)"
  if [ "$major" -lt 22 ]; then
    lib_log "$tag" "Node $(node -v 2>/dev/null || echo '(none)') is too old: 22 or newer is required (unset NODE_VERSION to use the project's Node $PROJECT_NODE_VERSION)"
    return 1
  fi
  if [ "${META_AGENT_NODE_SHOWN:-}" != "$(command -v node)" ]; then
    lib_log "$tag" "node $(node -v) ($(command -v node))"
    export META_AGENT_NODE_SHOWN; META_AGENT_NODE_SHOWN="$(command -v node)"
  fi
}

# Installs the project's dependencies (npm ci, under the project's Node) when node_modules is missing or
# older than the lock file. $1: the tag of the calling script, for the message. A node_modules that is a
# symlink (a git worktree sharing another checkout's) is used as it is: `npm ci` through the link would
# empty the other checkout's node_modules under whatever runs there.
ensure_node_modules() {
  if [ -L node_modules ]; then
    return 0
  fi
  if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    echo "[$1] installing dependencies (npm ci, node $(node -v))"
    npm ci --no-audit --no-fund
  fi
}

# ---- Servers -------------------------------------------------------------------------------------------

# Prints the version of a nats-server binary (2.15.1), or nothing.
nats_server_version() {
  "$1" --version 2>/dev/null | sed -n 's/^nats-server: v\{0,1\}\([0-9][0-9.]*[^ ]*\).*/\1/p' | head -n 1
}

redis_server_version() {
  "$1" --version 2>/dev/null | sed -n 's/.* v=\([0-9][0-9.]*\).*/\1/p' | head -n 1
}

# The project's own apt configuration: a source list, package lists, a cache and preferences of its own in
# .cache/servers/apt (the keyring is Debian's, read only), so that `apt-get download` can fetch packages of
# other Debian suites without writing anything of the machine's apt configuration. Sets PRIVATE_APT_OPTS.
# The list has its own name (project-sources.list), written under the fetch lock: older copies of this
# file write sources.list (two suites only) outside the lock, and must not take a suite away mid-fetch.
private_apt_setup() {
  local apt="$CACHE_DIR/servers/apt"
  mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial" "$apt/sources.list.d" "$apt/preferences.d" "$apt/debs"
  PRIVATE_APT_OPTS=(
    -o "Dir::Etc::SourceList=$apt/project-sources.list" -o "Dir::Etc::SourceParts=$apt/sources.list.d"
    -o "Dir::State::Lists=$apt/lists" -o "Dir::Cache=$apt/cache"
    -o "Dir::Etc::Preferences=$apt/preferences" -o "Dir::Etc::PreferencesParts=$apt/preferences.d"
    -o Acquire::Languages=none -o Acquire::IndexTargets::deb::Contents-deb::DefaultEnabled=false
    -o APT::Get::List-Cleanup=false
  )
  # As root, apt downloads as the _apt user, which cannot write into the project's folder.
  if [ "$(id -u)" -eq 0 ]; then PRIVATE_APT_OPTS+=(-o APT::Sandbox::User=root); fi
}

# private_apt_download SUITE TAG PACKAGE...: downloads Debian SUITE's PACKAGEs (the .deb files, nothing
# installed) into a fresh folder under .cache/servers/apt/debs and prints that folder. Must run under the
# fetch lock (fd 9 on .cache/servers/apt/fetch.lock).
private_apt_download() {
  local suite="$1" tag="$2"; shift 2
  local apt="$CACHE_DIR/servers/apt"
  {
    echo "# The project's own source list (scripts/lib.sh): packages to unpack (servers, Chromium), never installed."
    echo "deb [signed-by=$DEBIAN_KEYRING] $DEBIAN_MIRROR unstable main"
    echo "deb [signed-by=$DEBIAN_KEYRING] $DEBIAN_MIRROR trixie main"
    echo "deb [signed-by=$DEBIAN_KEYRING] $DEBIAN_MIRROR bookworm-backports main"
    echo "deb [signed-by=$DEBIAN_KEYRING] $DEBIAN_SECURITY_MIRROR bookworm-security main"
  } >"$apt/project-sources.list"
  # Lists older than a day are fetched again; a fresh set is reused by the other suites' fetches.
  if [ -n "${NATS_SERVER_REFRESH:-}${VALKEY_REFRESH:-}" ] || [ -z "$(find "$apt/lists" -maxdepth 1 -name "*_dists_${suite}_InRelease" -mmin -1440 2>/dev/null)" ]; then
    apt-get "${PRIVATE_APT_OPTS[@]}" -qq update >&2 || return 1
  fi
  local dir="$apt/debs/$1-$suite"
  rm -rf "$dir"
  mkdir -p "$dir"
  local specs=() p
  for p in "$@"; do specs+=("$p/$suite"); done
  (cd "$dir" && apt-get "${PRIVATE_APT_OPTS[@]}" -qq download "${specs[@]}" >&2) || return 1
  echo "$dir"
}

# deb_upstream_version DEB: the upstream part of a package's version (1:8.0.1+dfsg1-1~bpo12+1 -> 8.0.1).
deb_upstream_version() {
  local version
  version="$(dpkg-deb -f "$1" Version)"
  version="${version#*:}"
  version="${version%%-*}"
  echo "${version%%+*}"
}

# unpack_debs DEST DEB...: unpacks the packages into DEST (once: a DEST already there is kept; built in a
# temporary folder beside it and renamed, so a concurrent script never sees half of it).
unpack_debs() {
  local dest="$1"; shift
  [ -d "$dest" ] && return 0
  local tmp deb
  tmp="$(mktemp -d "$(dirname "$dest")/.$(basename "$dest").XXXXXX")"
  for deb in "$@"; do
    dpkg-deb -x "$deb" "$tmp" || { rm -rf "$tmp"; return 1; }
  done
  mv -T "$tmp" "$dest" 2>/dev/null || rm -rf "$tmp"
}

# fetch_nats_server SUITE TAG: Debian SUITE's nats-server package, downloaded with apt-get from the
# project's own source list (private_apt_setup) and unpacked into .cache/servers/nats-server-<version>;
# prints the binary (in usr/bin or usr/sbin, by the package's version).
fetch_nats_server() {
  fetch_debs "$2" nats-server "$1" servers "${NATS_SERVER_REFRESH:-}" 'usr/bin/nats-server|usr/sbin/nats-server' nats-server
}

# missing_libs BINARY: the shared libraries the dynamic loader cannot find for BINARY (one a line).
missing_libs() {
  ldd "$1" 2>/dev/null | sed -n 's/^[[:space:]]*\([^[:space:]]*\) => not found.*/\1/p'
}

# fetch_debs TAG NAME SUITE SUBDIR REFRESH BIN PACKAGE...: the packages from Debian SUITE (the first names the
# version), downloaded with the private source list and unpacked into .cache/SUBDIR/NAME-<version> (their
# Depends kept there in depends.txt, the .debs removed); prints the path of BIN inside it (BIN may list
# several, `a|b`: the first that is there). A pointer file
# (.cache/SUBDIR/NAME-SUITE.path) remembers it for the next runs, unless REFRESH is non-empty.
fetch_debs() {
  local tag="$1" name="$2" suite="$3" sub="$4" refresh="$5" rel="$6"
  shift 6
  # The real folder (.cache may be a link shared by several checkouts): the pointer outlives this one.
  mkdir -p "$CACHE_DIR/$sub"
  local root apt="$CACHE_DIR/servers/apt"
  root="$(cd "$CACHE_DIR/$sub" && pwd -P)"
  local pointer="$root/$name-$suite.path"
  if [ -z "$refresh" ] && [ -f "$pointer" ] && [ -x "$(cat "$pointer")" ]; then
    cat "$pointer"
    return 0
  fi
  command -v apt-get >/dev/null 2>&1 && command -v dpkg-deb >/dev/null 2>&1 || { lib_log "$tag" "apt-get and dpkg-deb are needed to fetch $name"; return 1; }
  [ -r "$DEBIAN_KEYRING" ] || { lib_log "$tag" "no Debian archive keyring at $DEBIAN_KEYRING (package debian-archive-keyring)"; return 1; }
  private_apt_setup
  local dir
  dir="$(
    exec 9>"$apt/fetch.lock"
    flock 9
    if [ -z "$refresh" ] && [ -f "$pointer" ] && [ -x "$(cat "$pointer")" ]; then echo "cached"; exit 0; fi
    lib_log "$tag" "fetching $* from Debian $suite (apt-get download, private source list in ${apt#"$LIB_ROOT"/})"
    private_apt_download "$suite" "$tag" "$@"
  )" || { lib_log "$tag" "could not fetch $name from Debian $suite"; return 1; }
  if [ "$dir" = cached ]; then
    cat "$pointer"
    return 0
  fi
  local debs=() p deb
  for p in "$@"; do
    deb="$(ls "$dir/${p}_"*.deb 2>/dev/null | head -n 1)"
    [ -n "$deb" ] || { lib_log "$tag" "apt-get download brought no $p package into $dir"; return 1; }
    debs+=("$deb")
  done
  local dest
  dest="$root/$name-$(deb_upstream_version "${debs[0]}")"
  unpack_debs "$dest" "${debs[@]}" || return 1
  [ -f "$dest/depends.txt" ] || for deb in "${debs[@]}"; do dpkg-deb -f "$deb" Depends; done >"$dest/depends.txt"
  rm -rf "$dir"
  local bin="" candidate candidates
  IFS='|' read -ra candidates <<<"$rel"
  for candidate in "${candidates[@]}"; do
    [ -x "$dest/$candidate" ] && { bin="$dest/$candidate"; break; }
  done
  [ -n "$bin" ] || { lib_log "$tag" "no $rel in $dest"; return 1; }
  echo "$bin" >"$pointer.tmp.$$" && mv "$pointer.tmp.$$" "$pointer"
  echo "$bin"
}

# fetch_valkey TAG: Valkey 8.0 from Debian bookworm-backports (valkey-server: the server's link and its
# configuration; valkey-tools: the binaries, valkey-server's and valkey-cli), downloaded and unpacked like
# nats-server into .cache/servers/valkey-<version>; prints the server binary (valkey-cli is beside it).
# Built for bookworm, it runs on this glibc (2.36), unlike trixie's or unstable's; it is linked against
# shared libraries that dpkg-deb -x does not bring (libjemalloc2, liblzf1, libatomic1, libssl3,
# libsystemd0: the Depends of valkey-tools, all in bookworm main, the first two also needed by bookworm's
# redis-server): those the loader cannot find are installed from the machine's own Debian release.
fetch_valkey() {
  local tag="$1" bin
  bin="$(fetch_debs "$tag" valkey bookworm-backports servers "${VALKEY_REFRESH:-}" usr/bin/valkey-server valkey-server valkey-tools)" || return 1
  [ -x "$(dirname "$bin")/valkey-cli" ] || { lib_log "$tag" "no valkey-cli beside $bin"; return 1; }
  # valkey-server is a link to the one binary of valkey-tools (which picks its role by the name it runs under).
  local missing
  missing="$(missing_libs "$(readlink -f "$bin")"; missing_libs "$(dirname "$bin")/valkey-cli")"
  if [ -n "$missing" ]; then
    lib_log "$tag" "valkey-server needs shared libraries the machine lacks: $(echo "$missing" | sort -u | tr '\n' ' ')"
    apt_install "$tag" libjemalloc2 liblzf1 libatomic1 libssl3 libsystemd0 || return 1
    missing="$(missing_libs "$(readlink -f "$bin")")"
    [ -z "$missing" ] || { lib_log "$tag" "valkey-server still lacks: $missing"; return 1; }
  fi
  echo "$bin"
}

# ---- Browser -------------------------------------------------------------------------------------------

# ensure_chromium TAG: a headless-capable Chromium for the console's browser test (see CHROMIUM_BIN at the top of
# this file): exports CHROMIUM_BIN (the real binary, usr/lib/chromium/chromium, not Debian's wrapper script) and
# prints its version. The shared libraries it is linked against (libnss3, libgbm, libcups2, libasound2, ...:
# what chromium's Depends name and dpkg-deb -x does not bring) are checked with ldd; when the loader cannot
# find one, the library packages of those Depends are installed from the machine's own Debian release, as for
# Valkey.
ensure_chromium() {
  local tag="$1" bin="${CHROMIUM_BIN:-}"
  if [ -n "$bin" ]; then
    [ -x "$bin" ] || { lib_log "$tag" "CHROMIUM_BIN=$bin is not an executable"; return 1; }
  else
    bin="$(fetch_debs "$tag" chromium bookworm-security browsers "${CHROMIUM_REFRESH:-}" usr/lib/chromium/chromium chromium chromium-common)" || {
      lib_log "$tag" "(or set CHROMIUM_BIN=<path>)"
      return 1
    }
    local missing
    missing="$(missing_libs "$bin")"
    if [ -n "$missing" ]; then
      lib_log "$tag" "chromium needs shared libraries the machine lacks: $(echo "$missing" | tr '\n' ' ')"
      # The library packages chromium's Depends name (the first of each set of alternatives, no versions)
      # that are not installed: those installed already are left as they are.
      local libs="" p
      for p in $(tr ',' '\n' <"$(dirname "$(dirname "$(dirname "$(dirname "$bin")")")")/depends.txt" 2>/dev/null | sed 's/|.*//; s/(.*//; s/[[:space:]]//g' | grep '^lib' | sort -u); do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || libs="$libs $p"
      done
      [ -n "$libs" ] || { lib_log "$tag" "no list of chromium's dependencies beside $bin; install the libraries above"; return 1; }
      # shellcheck disable=SC2086
      apt_install "$tag" $libs || return 1
      missing="$(missing_libs "$bin")"
      [ -z "$missing" ] || { lib_log "$tag" "chromium still lacks: $missing"; return 1; }
    fi
  fi
  export CHROMIUM_BIN="$bin"
  if [ "${META_AGENT_CHROMIUM_SHOWN:-}" != "$bin" ]; then
    lib_log "$tag" "$("$bin" --version 2>/dev/null | sed 's/[[:space:]]*$//' || echo chromium) (${bin#"$LIB_ROOT"/})"
    export META_AGENT_CHROMIUM_SHOWN="$bin"
  fi
}

# use_servers TAG: chooses nats-server and redis-server or valkey-server (see the top of this file), exports
# NATS_SERVER_BIN, REDIS_SERVER_BIN, REDIS_CLI_BIN and REDIS_FLAVOR, puts them first on PATH, and prints the
# versions.
use_servers() {
  local tag="$1" nats="${NATS_SERVER_BIN:-}" how
  if [ -n "$nats" ]; then
    how="NATS_SERVER_BIN"
    [ -x "$nats" ] || { lib_log "$tag" "NATS_SERVER_BIN=$nats is not an executable"; return 1; }
  else
    local choice="${NATS_SERVER_VERSION:-current}" suite=""
    case "$choice" in
      current) suite=unstable ;;
      minimum) suite=trixie ;;
      system) ;;
      *) lib_log "$tag" "NATS_SERVER_VERSION=$choice: use current, minimum or system (or NATS_SERVER_BIN=<path>)"; return 1 ;;
    esac
    if [ -n "$suite" ]; then
      how="Debian $suite, $choice"
      if ! nats="$(fetch_nats_server "$suite" "$tag")"; then
        nats="$(find_bin nats-server || true)"
        if [ -n "$nats" ] && version_ge "$(nats_server_version "$nats")" "$NATS_SERVER_MIN_VERSION"; then
          how="the machine's: Debian $suite's package could not be fetched"
        else
          lib_log "$tag" "could not fetch nats-server from Debian $suite, and the machine has no nats-server $NATS_SERVER_MIN_VERSION or newer; set NATS_SERVER_BIN=<path>"
          return 1
        fi
      fi
    else
      how="the machine's"
      nats="$(find_bin nats-server || true)"
      [ -n "$nats" ] || { lib_log "$tag" "NATS_SERVER_VERSION=system, but the machine has no nats-server"; return 1; }
    fi
  fi
  local nats_version
  nats_version="$(nats_server_version "$nats")"
  if ! version_ge "${nats_version:-0}" "$NATS_SERVER_MIN_VERSION"; then
    lib_log "$tag" "nats-server ${nats_version:-of unknown version} ($nats) is too old: $NATS_SERVER_MIN_VERSION or newer is required"
    return 1
  fi

  local flavor="${REDIS_FLAVOR:-redis}" redis="${REDIS_SERVER_BIN:-}" cli="${REDIS_CLI_BIN:-}" redis_how=""
  case "$flavor" in
    redis)
      if [ -z "$redis" ]; then
        redis="$(machine_bin redis-server || true)"
        if [ -z "$redis" ]; then
          apt_install "$tag" redis-server || return 1
          redis="$(machine_bin redis-server)" || { lib_log "$tag" "redis-server installed but not found"; return 1; }
        fi
      fi
      ;;
    valkey)
      if [ -z "$redis" ]; then
        redis="$(fetch_valkey "$tag")" || return 1
        redis_how="; Debian bookworm-backports"
      fi
      ;;
    *) lib_log "$tag" "REDIS_FLAVOR=$flavor: use redis or valkey (or REDIS_SERVER_BIN=<path>)"; return 1 ;;
  esac
  [ -x "$redis" ] || { lib_log "$tag" "REDIS_SERVER_BIN=$redis is not an executable"; return 1; }
  # The CLI (redis-cli --cluster create, for the cluster tests): the one beside the server (the same
  # release), else the machine's redis-cli (Debian's redis-tools, which redis-server depends on).
  if [ -z "$cli" ]; then
    local beside
    for beside in "$(dirname "$redis")/$flavor-cli" "$(dirname "$redis")/redis-cli" "$(dirname "$redis")/valkey-cli"; do
      if [ -x "$beside" ]; then cli="$beside"; break; fi
    done
    if [ -z "$cli" ]; then
      cli="$(machine_bin redis-cli || true)"
      if [ -z "$cli" ]; then
        apt_install "$tag" redis-tools || return 1
        cli="$(machine_bin redis-cli)" || { lib_log "$tag" "redis-tools installed but redis-cli not found"; return 1; }
      fi
    fi
  fi
  [ -x "$cli" ] || { lib_log "$tag" "REDIS_CLI_BIN=$cli is not an executable"; return 1; }
  local redis_version redis_name=redis-server
  redis_version="$(redis_server_version "$redis")"
  if "$redis" --version 2>/dev/null | grep -q '^Valkey'; then redis_name=valkey-server; fi

  # Both under their plain names, first on PATH, for whatever starts them by name (valkey-server and
  # valkey-cli as redis-server and redis-cli too: valkey picks its role by its name, and a plain name is
  # not one of its checker names). One folder per combination: scripts of other flavors or versions may
  # run side by side, each with its own PATH.
  local path_dir="$CACHE_DIR/servers/path/nats-$nats_version-$redis_name-$redis_version"
  mkdir -p "$path_dir"
  ln -sfn "$nats" "$path_dir/nats-server"
  ln -sfn "$redis" "$path_dir/redis-server"
  ln -sfn "$cli" "$path_dir/redis-cli"
  if [ "$redis_name" = valkey-server ]; then
    ln -sfn "$redis" "$path_dir/valkey-server"
    ln -sfn "$cli" "$path_dir/valkey-cli"
  fi
  case ":$PATH:" in *":$path_dir:"*) ;; *) export PATH="$path_dir:$PATH" ;; esac
  export NATS_SERVER_BIN="$nats" REDIS_SERVER_BIN="$redis" REDIS_CLI_BIN="$cli" REDIS_FLAVOR="$flavor"
  if [ "${META_AGENT_SERVERS_SHOWN:-}" != "$nats $redis" ]; then
    lib_log "$tag" "nats-server $nats_version (${nats#"$LIB_ROOT"/}; $how), $redis_name $redis_version (${redis#"$LIB_ROOT"/}$redis_how)"
    export META_AGENT_SERVERS_SHOWN="$nats $redis"
  fi
}

# fresh_bench_servers NAME NATS_PORT REDIS_PORT: a fresh nats-server + redis-server pair (scripts/servers.sh)
# for a bench on these ports, data in $TMPDIR/meta-agent-NAME-servers-NATS_PORT, stopped when the calling
# script exits. Exports NATS_PORT, REDIS_PORT and SERVERS_DIR (for scripts/servers.sh) and BENCH_NATS_URL,
# BENCH_REDIS_URL (for the bench's drivers).
fresh_bench_servers() {
  export NATS_PORT="$2" REDIS_PORT="$3"
  export SERVERS_DIR="${TMPDIR:-/tmp}/meta-agent-$1-servers-${NATS_PORT}"
  trap 'bash scripts/servers.sh stop >/dev/null 2>&1 || true' EXIT
  # A fresh pair every run: no state of an earlier run can leak into the figures.
  bash scripts/servers.sh stop >/dev/null 2>&1 || true
  bash scripts/servers.sh start
  export BENCH_NATS_URL="nats://127.0.0.1:${NATS_PORT}"
  export BENCH_REDIS_URL="redis://127.0.0.1:${REDIS_PORT}"
}
