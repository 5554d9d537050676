#!/usr/bin/env bash
# Makes Fashion-MNIST available to the experiments and tests.
#
# Sources, in order (see DESIGN.md, "Real data"):
#   1. /usr/share/datasets/fashion-mnist, from the Debian package
#      dataset-fashion-mnist, if already installed and intact;
#   2. the destination directory below, if it already holds intact files;
#   3. as root: apt-get install -y dataset-fashion-mnist;
#   4. otherwise: apt-get download the package and unpack it without
#      installing, then copy the four files to the destination.
#
# Destination (for 2 and 4): $UNTRAINABLE_FASHION_MNIST if set, else
# ${UNTRAINABLE_DATA:-<repository>/data}/fashion-mnist -- the places the
# loader searches. When $UNTRAINABLE_FASHION_MNIST is set the loader looks
# only there, so the files are copied there even if the system has them.
#
# UNTRAINABLE_SETUP_NO_ROOT=1 skips 1 and 3, to exercise the unprivileged
# path on a machine where it would otherwise not run.
#
# Safe to run again: intact files are left alone. Every file is checked
# against its sha256 before the script reports success.
set -euo pipefail

PACKAGE=dataset-fashion-mnist
SYSTEM_DIR=/usr/share/datasets/fashion-mnist
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
EXPLICIT="${UNTRAINABLE_FASHION_MNIST:-}"
DEST="${EXPLICIT:-${UNTRAINABLE_DATA:-$REPO_ROOT/data}/fashion-mnist}"
NO_ROOT="${UNTRAINABLE_SETUP_NO_ROOT:-0}"

# File names and sha256 sums; the same values are constants in
# crates/tasks/src/fashion_mnist.rs.
FILES=(
  "train-images-idx3-ubyte.gz b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7"
  "train-labels-idx1-ubyte.gz 0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056"
  "t10k-images-idx3-ubyte.gz cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa"
  "t10k-labels-idx1-ubyte.gz 8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05"
)

say() { echo "setup-data: $*"; }
die() {
  echo "setup-data: ERROR: $*" >&2
  exit 1
}

# verify DIR [loud]: succeeds if DIR holds all four files with the right
# sha256; with "loud", names each missing or differing file.
verify() {
  local dir="$1" loud="${2:-}" ok=0 entry name sum actual
  for entry in "${FILES[@]}"; do
    name="${entry%% *}"
    sum="${entry##* }"
    if [[ ! -f "$dir/$name" ]]; then
      [[ -n "$loud" ]] && echo "  missing: $dir/$name" >&2
      ok=1
      continue
    fi
    actual="$(sha256sum "$dir/$name" | cut -d' ' -f1)"
    if [[ "$actual" != "$sum" ]]; then
      [[ -n "$loud" ]] && echo "  sha256 mismatch: $dir/$name: expected $sum, found $actual" >&2
      ok=1
    fi
  done
  return "$ok"
}

# Copies the four files from $1 into $DEST and checks them there.
install_into_dest() {
  local src="$1" entry name
  mkdir -p "$DEST"
  for entry in "${FILES[@]}"; do
    name="${entry%% *}"
    cp "$src/$name" "$DEST/$name.partial"
    mv -f "$DEST/$name.partial" "$DEST/$name"
  done
  if ! verify "$DEST" loud; then
    die "files copied to $DEST do not have the expected sha256 (above). Delete $DEST and run this script again; if it persists, the $PACKAGE package differs from the version this project was written against."
  fi
  say "Fashion-MNIST is in $DEST (sha256 verified)."
  if [[ -z "$EXPLICIT" && -z "${UNTRAINABLE_DATA:-}" ]]; then
    say "The loader finds it when run from $REPO_ROOT; elsewhere set UNTRAINABLE_FASHION_MNIST=$DEST."
  fi
}

if [[ -z "$EXPLICIT" && "$NO_ROOT" != 1 ]] && verify "$SYSTEM_DIR"; then
  say "Fashion-MNIST already installed in $SYSTEM_DIR (sha256 verified)."
  exit 0
fi

if verify "$DEST"; then
  say "Fashion-MNIST already in $DEST (sha256 verified)."
  exit 0
fi

if [[ "$NO_ROOT" != 1 ]] && verify "$SYSTEM_DIR"; then
  # Only reached with UNTRAINABLE_FASHION_MNIST set: copy the system files there.
  install_into_dest "$SYSTEM_DIR"
  exit 0
fi

command -v apt-get >/dev/null 2>&1 || die "apt-get not found: this script needs a Debian-based system.
Get the four files (${FILES[*]%% *}) from the Fashion-MNIST project's canonical
release and put them in $DEST, or set UNTRAINABLE_FASHION_MNIST to their directory."

if [[ "$(id -u)" == 0 && "$NO_ROOT" != 1 ]]; then
  if ! apt-cache show "$PACKAGE" >/dev/null 2>&1; then
    say "package $PACKAGE not in the package lists; running apt-get update"
    apt-get update
  fi
  REINSTALL=()
  # An installed package whose files were damaged needs a reinstall to repair.
  if dpkg-query -W -f='${Status}' "$PACKAGE" 2>/dev/null | grep -q 'install ok installed'; then
    REINSTALL=(--reinstall)
  fi
  say "installing $PACKAGE"
  DEBIAN_FRONTEND=noninteractive apt-get install -y "${REINSTALL[@]}" "$PACKAGE"
  if ! verify "$SYSTEM_DIR" loud; then
    die "$PACKAGE installed, but $SYSTEM_DIR does not hold the expected files (above)."
  fi
  if [[ -n "$EXPLICIT" ]]; then
    install_into_dest "$SYSTEM_DIR"
  else
    say "Fashion-MNIST installed in $SYSTEM_DIR (sha256 verified)."
  fi
  exit 0
fi

# Unprivileged: fetch the .deb and unpack it, without installing it.
command -v dpkg-deb >/dev/null 2>&1 || die "dpkg-deb not found; it is needed to unpack $PACKAGE."
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
APT_OPTS=()
# Only reached as root when forced: apt's unprivileged sandbox user cannot
# write to a private temporary directory, so do not switch to it.
[[ "$(id -u)" == 0 ]] && APT_OPTS=(-o APT::Sandbox::User=root)
say "downloading $PACKAGE into a temporary directory (no root needed)"
if ! (cd "$WORK" && apt-get "${APT_OPTS[@]}" download "$PACKAGE"); then
  die "apt-get download $PACKAGE failed. If the package is unknown, the package lists may be missing or stale: ask an administrator to run 'apt-get update' (or 'apt-get install $PACKAGE', which makes this script unnecessary)."
fi
shopt -s nullglob
DEBS=("$WORK"/"$PACKAGE"_*.deb)
shopt -u nullglob
[[ ${#DEBS[@]} == 1 ]] || die "expected one downloaded .deb in $WORK, found ${#DEBS[@]}."
dpkg-deb -x "${DEBS[0]}" "$WORK/unpacked"
UNPACKED="$WORK/unpacked$SYSTEM_DIR"
if ! verify "$UNPACKED" loud; then
  die "the downloaded $PACKAGE does not contain the expected files (above)."
fi
install_into_dest "$UNPACKED"
