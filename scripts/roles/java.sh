#!/usr/bin/env bash
# Java 17 for Kafka and ZooKeeper (Kafka 3.9 runs on 11, 17 and 21).
set -euo pipefail

JAVA_PACKAGE="${JAVA_PACKAGE:-openjdk-17-jre-headless}"

# shellcheck source=scripts/roles/lib.sh
source "$(dirname "$0")/lib.sh"

apt_install "$JAVA_PACKAGE" ca-certificates curl
java -version 2>&1 | head -1 >&2
