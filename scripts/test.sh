#!/usr/bin/env bash
# Installs what the tests need (Debian packages when run as root, Python packages in .venv)
# and runs the whole suite: ruff, mypy --strict, pytest. The tests start and stop their own
# services (a docker-registry on 127.0.0.1, a private dockerd); nothing is left running.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(gcc libc6-dev gcc-multilib musl-tools golang-go binutils
              binutils-s390x-linux-gnu binutils-powerpc-linux-gnu
              docker.io docker-registry skopeo apache2-utils podman file
              rpm patchelf)
APT_PACKAGES+=(postgresql)  # issue 12: the PostgreSQL store tests run a real server

install_system_packages() {
  local missing=()
  for pkg in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing+=("$pkg")
  done
  if [ "${#missing[@]}" -eq 0 ]; then return; fi
  if [ "$(id -u)" -ne 0 ]; then
    echo "test.sh: missing Debian packages (install them as root): ${missing[*]}" >&2
    return
  fi
  echo "test.sh: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

install_python_packages() {
  if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
  fi
  .venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]'
}

install_system_packages
install_python_packages
export PATH="$PWD/.venv/bin:$PATH"

echo "== ruff"
ruff check imagescan tests benchmarks sample-images
ruff format --check imagescan
echo "== mypy --strict"
mypy imagescan
echo "== pytest"
set +e
python -m pytest -n 2 --dist loadfile -q -p no:cacheprovider "$@"
status=$?
set -e
# pytest's 5 means "no tests collected": that is a failure here, never a pass.
exit "$status"
