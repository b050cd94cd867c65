#!/usr/bin/env bash
# Installs rewire on a list of nodes: copies the executable that matches each node's CPU and
# the systemd unit with scp, then enables and (re)starts the service over ssh.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
dist="${here}/../dist"
unit="${here}/rewire.service"
config=""
key=""
nodes_file=""
dry_run=0
ssh_opts=(-o BatchMode=yes -o ConnectTimeout=10)

usage() {
  cat <<USAGE
Usage: build/install.sh [options] NODE...
       build/install.sh [options] -f NODES_FILE

Copies dist/rewire-linux-x64 or dist/rewire-linux-arm64 (by each node's 'uname -m') to
/usr/local/bin/rewire and build/rewire.service to /etc/systemd/system/ on every NODE, then
runs 'systemctl daemon-reload', 'enable' and 'restart' for rewire. Build first with
'bun run build'. NODE is a host or user@host; remote steps use sudo unless the user is root.

Options:
  -f FILE  read nodes from FILE, one per line ('#' starts a comment)
  -c FILE  also install FILE as /etc/rewire/rewire.toml
  -k FILE  also install FILE as /var/lib/rewire/cluster.key (mode 0600); give every node the same key
  -d DIR   directory holding the executables (default: dist/ beside build/)
  -i FILE  ssh identity file
  -n       dry run: print the commands instead of running them
  -h       show this help
USAGE
}

die() {
  echo "install.sh: $*" >&2
  exit 1
}

run() {
  if [ "$dry_run" -eq 1 ]; then
    printf '%q ' "$@"
    echo
  else
    "$@"
  fi
}

# The executable for a node's 'uname -m'.
binary_for() {
  case "$1" in
    x86_64 | amd64) echo "${dist}/rewire-linux-x64" ;;
    aarch64 | arm64) echo "${dist}/rewire-linux-arm64" ;;
    *) return 1 ;;
  esac
}

install_node() {
  local node="$1" facts arch uid tmp sudo binary
  echo "== ${node}"
  if [ "$dry_run" -eq 1 ]; then
    facts=$'x86_64\n0\n/tmp/rewire-install'
  else
    facts="$(ssh "${ssh_opts[@]}" "$node" 'uname -m; id -u; mktemp -d')" ||
      die "cannot reach ${node} with ssh"
  fi
  { read -r arch; read -r uid; read -r tmp; } <<<"$facts"
  binary="$(binary_for "$arch")" || die "${node}: no rewire executable for CPU '${arch}'"
  [ -x "$binary" ] || [ "$dry_run" -eq 1 ] || die "${binary} is missing: run 'bun run build' first"
  sudo=""
  [ "$uid" = "0" ] || sudo="sudo"

  run scp "${ssh_opts[@]}" -q "$binary" "${node}:${tmp}/rewire"
  run scp "${ssh_opts[@]}" -q "$unit" "${node}:${tmp}/rewire.service"
  [ -z "$config" ] || run scp "${ssh_opts[@]}" -q "$config" "${node}:${tmp}/rewire.toml"
  [ -z "$key" ] || run scp "${ssh_opts[@]}" -q "$key" "${node}:${tmp}/cluster.key"

  local steps=(
    "$sudo install -m 0755 '${tmp}/rewire' /usr/local/bin/rewire"
    "$sudo install -m 0644 '${tmp}/rewire.service' /etc/systemd/system/rewire.service"
  )
  [ -z "$config" ] ||
    steps+=("$sudo install -D -m 0644 '${tmp}/rewire.toml' /etc/rewire/rewire.toml")
  [ -z "$key" ] ||
    steps+=("$sudo install -d -m 0700 /var/lib/rewire"
      "$sudo install -m 0600 '${tmp}/cluster.key' /var/lib/rewire/cluster.key")
  steps+=(
    "$sudo systemctl daemon-reload"
    "$sudo systemctl enable rewire"
    "$sudo systemctl restart rewire"
    "rm -rf '${tmp}'"
  )
  local joined
  joined="$(printf '%s && ' "${steps[@]}")"
  run ssh "${ssh_opts[@]}" "$node" "set -e; ${joined% && }"
}

main() {
  local opt
  while getopts ':f:c:k:d:i:nh' opt; do
    case "$opt" in
      f) nodes_file="$OPTARG" ;;
      c) config="$OPTARG" ;;
      k) key="$OPTARG" ;;
      d) dist="$OPTARG" ;;
      i) ssh_opts+=(-i "$OPTARG") ;;
      n) dry_run=1 ;;
      h) usage; exit 0 ;;
      :) usage >&2; die "option -${OPTARG} needs a value" ;;
      *) usage >&2; die "unknown option -${OPTARG}" ;;
    esac
  done
  shift $((OPTIND - 1))

  local nodes=("$@")
  if [ -n "$nodes_file" ]; then
    [ -r "$nodes_file" ] || die "cannot read nodes file '${nodes_file}'"
    local line
    while IFS= read -r line || [ -n "$line" ]; do
      line="${line%%#*}"
      line="${line//[[:space:]]/}"
      [ -z "$line" ] || nodes+=("$line")
    done <"$nodes_file"
  fi
  if [ "${#nodes[@]}" -eq 0 ]; then
    usage >&2
    exit 2
  fi
  [ -z "$config" ] || [ -r "$config" ] || die "cannot read config file '${config}'"
  [ -z "$key" ] || [ -r "$key" ] || die "cannot read cluster key '${key}'"
  [ -r "$unit" ] || die "cannot read unit file '${unit}'"

  local node
  for node in "${nodes[@]}"; do install_node "$node"; done
  echo "Installed rewire on ${#nodes[@]} node(s). Check with: ssh NODE systemctl status rewire"
}

main "$@"
