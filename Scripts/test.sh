#!/usr/bin/env bash
# The test command: builds the executables the tests run, then runs every test in release mode.
# Extra arguments go to `swift test` (for example: --filter MediaIOTests).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
swift build -c release
swift test -c release "$@"
