#!/usr/bin/env bash
# The test command: builds the executables the tests run and the tests, then runs every test in release mode.
# Extra arguments go to `swift test` (for example: --filter MediaIOTests).
# `swift test -c release` on its own would compile every module again with testing enabled; the tests use no
# @testable import, so building them beside the release products and running them with --skip-build reuses
# one build (a fresh clone's CI saves a second full compile of SwiftNIO, Hummingbird and GRDB).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
swift build -c release --build-tests
swift test -c release --skip-build "$@"
