#!/usr/bin/env bash
# Checks the system packages the Python dependencies need; prints the install command if one is missing.
set -u
missing=()
command -v python3 >/dev/null || missing+=(python3)
python3 -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null || missing+=("python3 (3.10 or newer)")
python3 -c 'import venv, ensurepip' 2>/dev/null || missing+=(python3-venv)
# open3d's Python module links against libusb-1.0 and libgomp.
ldconfig -p 2>/dev/null | grep -q 'libusb-1.0.so.0' || missing+=(libusb-1.0-0)
ldconfig -p 2>/dev/null | grep -q 'libgomp.so.1' || missing+=(libgomp1)
if [ ${#missing[@]} -gt 0 ]; then
  echo "Missing system packages: ${missing[*]}" >&2
  echo "On Debian/Ubuntu install them with:" >&2
  echo "  sudo apt-get update && sudo apt-get install -y python3-venv libusb-1.0-0 libgomp1" >&2
  exit 1
fi
