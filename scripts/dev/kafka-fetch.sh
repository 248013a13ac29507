#!/usr/bin/env bash
# Fetch the Apache Kafka broker (ZooKeeper mode) as plain jars into a cache dir.
#
# Kafka is not packaged by Debian or PyPI; its jars are on Maven Central, so a
# generated pom and `mvn dependency:copy-dependencies` stand in for the release
# tarball. 3.9.x is the last Kafka line that still runs with ZooKeeper.
#
# The jar set is pinned: kafka-<version>-<scala>.sha256 beside this script lists
# every file of libs/ and config/ with its SHA-256. A fetch, and a cache found
# complete, must match it exactly (no file more, none less), or the cache is
# fetched again and a fetch refused. A version with no manifest is refused unless
# KAFKA_UNPINNED=1; `--pin` fetches it unpinned and writes its manifest (review
# it, commit it). KAFKA_MANIFEST names another manifest file.
#
# Usage: scripts/dev/kafka-fetch.sh [--pin]   prints the Kafka home dir on stdout
# Safe to re-run: a complete fetch (marker file present) is not fetched again.
# Exit status: 0 done, 1 error, 3 Maven or Java missing here.
set -euo pipefail

KAFKA_VERSION="${KAFKA_VERSION:-3.9.1}"
SCALA_VERSION="${SCALA_VERSION:-2.13}"
SLF4J_VERSION="${SLF4J_VERSION:-1.7.36}"
DEPENDENCY_PLUGIN_VERSION="${DEPENDENCY_PLUGIN_VERSION:-3.8.1}"
GPUCOST_CACHE="${GPUCOST_CACHE:-$HOME/.cache/gpucost}"
KAFKA_HOME="${KAFKA_HOME:-$GPUCOST_CACHE/kafka-$KAFKA_VERSION}"
KAFKA_UNPINNED="${KAFKA_UNPINNED:-0}"
MVN="${MVN:-mvn}"
# MVN_ARGS: extra Maven options, e.g. -Dmaven.repo.local=DIR or -o (offline).

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
manifest="${KAFKA_MANIFEST:-$here/kafka-$KAFKA_VERSION-$SCALA_VERSION.sha256}"
# shellcheck source=scripts/roles/lib.sh
source "$here/../roles/lib.sh"

libs_dir="$KAFKA_HOME/libs"
config_dir="$KAFKA_HOME/config"
# Written last: its presence means libs/ and config/ are complete.
marker="$KAFKA_HOME/.fetched"

log() { printf 'kafka-fetch: %s\n' "$*" >&2; }

pinned() { [[ "$KAFKA_UNPINNED" != 1 ]]; }

is_complete() {
    [[ -f "$marker" && -d "$libs_dir" ]] || return 1
    local expected actual problem
    if pinned; then
        problem="$(check_manifest "$KAFKA_HOME" "$manifest")" && return 0
        log "cache $KAFKA_HOME: $problem; fetching again"
        return 1
    fi
    expected="$(sed -n 's/^jars=//p' "$marker")"
    actual="$(find "$libs_dir" -maxdepth 1 -name '*.jar' | wc -l)"
    [[ -n "$expected" && "$expected" == "$actual" ]]
}

# The manifest of a fetched tree: one `sha256sum` line per file, sorted by path.
write_manifest() {
    (cd "$1" && find libs config -type f | LC_ALL=C sort | xargs sha256sum) >"$2"
}

write_pom() {
    cat >"$1" <<POM
<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0"
         xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
         xsi:schemaLocation="http://maven.apache.org/POM/4.0.0 http://maven.apache.org/xsd/maven-4.0.0.xsd">
  <modelVersion>4.0.0</modelVersion>
  <groupId>dev.gpucost</groupId>
  <artifactId>kafka-runtime</artifactId>
  <version>$KAFKA_VERSION</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka_$SCALA_VERSION</artifactId>
      <version>$KAFKA_VERSION</version>
    </dependency>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka-tools</artifactId>
      <version>$KAFKA_VERSION</version>
    </dependency>
    <!-- Kafka 3.x logs through slf4j; reload4j routes it to the log4j config below. -->
    <dependency>
      <groupId>org.slf4j</groupId>
      <artifactId>slf4j-reload4j</artifactId>
      <version>$SLF4J_VERSION</version>
    </dependency>
  </dependencies>
  <build>
    <pluginManagement>
      <plugins>
        <!-- Pinned: Maven's default version of this plugin differs between Maven releases. -->
        <plugin>
          <groupId>org.apache.maven.plugins</groupId>
          <artifactId>maven-dependency-plugin</artifactId>
          <version>$DEPENDENCY_PLUGIN_VERSION</version>
        </plugin>
      </plugins>
    </pluginManagement>
  </build>
</project>
POM
}

# One config for both JVMs: each passes -Dgpucost.log.file, so ZooKeeper and
# the broker log to their own file and nothing reaches the console.
write_log4j() {
    cat >"$1" <<'LOG4J'
log4j.rootLogger=INFO, file
log4j.appender.file=org.apache.log4j.RollingFileAppender
log4j.appender.file.File=${gpucost.log.file}
log4j.appender.file.MaxFileSize=10MB
log4j.appender.file.MaxBackupIndex=2
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n
# Per-request and authorizer logs are noise for a local broker.
log4j.logger.kafka.request.logger=WARN
log4j.logger.kafka.network.RequestChannel$=WARN
log4j.logger.kafka.authorizer.logger=WARN
log4j.logger.org.apache.kafka.clients=WARN
LOG4J
}

main() {
    local pin=0
    if [[ "${1:-}" == --pin ]]; then
        [[ ! -f "$manifest" ]] || die "$manifest exists: remove it first to pin again"
        pin=1 KAFKA_UNPINNED=1
    fi
    if pinned && [[ ! -f "$manifest" ]]; then
        die "no pinned manifest ${manifest##*/} for Kafka $KAFKA_VERSION (Scala $SCALA_VERSION);" \
            "make one with KAFKA_VERSION=$KAFKA_VERSION SCALA_VERSION=$SCALA_VERSION $0 --pin" \
            "(docs/aws.md, Artifacts), or set KAFKA_UNPINNED=1"
    fi
    if is_complete; then
        log "Kafka $KAFKA_VERSION already in $KAFKA_HOME"
        if ((pin)); then write_manifest "$KAFKA_HOME" "$manifest" && log "pinned in $manifest"; fi
        printf '%s\n' "$KAFKA_HOME"
        return 0
    fi
    if ! command -v "$MVN" >/dev/null; then
        log "error: '$MVN' not found: install Maven and a JDK"
        exit 3
    fi
    if ! command -v java >/dev/null && [[ -z "${JAVA_HOME:-}" ]]; then
        log "error: no Java for Maven: install a JDK"
        exit 3
    fi

    mkdir -p "$KAFKA_HOME"
    local work
    work="$(mktemp -d "$KAFKA_HOME/.fetch.XXXXXX")"
    # shellcheck disable=SC2064  # expand $work now: it is local to main.
    trap "rm -rf '$work'" EXIT

    log "fetching Kafka $KAFKA_VERSION (Scala $SCALA_VERSION) jars with Maven"
    write_pom "$work/pom.xml"
    # stdout is this script's answer (the Kafka home), so Maven talks on stderr.
    # shellcheck disable=SC2086  # MVN_ARGS is a list of extra Maven options.
    "$MVN" -q -B -Dstyle.color=never ${MVN_ARGS:-} -f "$work/pom.xml" \
        dependency:copy-dependencies -DoutputDirectory="$work/libs" -DincludeScope=runtime >&2
    mkdir -p "$work/config"
    write_log4j "$work/config/log4j.properties"

    local jars
    jars="$(find "$work/libs" -maxdepth 1 -name '*.jar' | wc -l)"
    compgen -G "$work/libs/kafka_$SCALA_VERSION-$KAFKA_VERSION.jar" >/dev/null \
        || { log "error: kafka_$SCALA_VERSION-$KAFKA_VERSION.jar missing after fetch"; exit 1; }
    compgen -G "$work/libs/zookeeper-[0-9]*.jar" >/dev/null \
        || { log "error: no zookeeper jar after fetch"; exit 1; }
    if pinned; then
        local problem
        problem="$(check_manifest "$work" "$manifest")" || die "fetch refused: $problem"
    fi

    # Replace, never merge: a half-written libs/ from an interrupted run must not survive.
    rm -rf "$marker" "$libs_dir" "$config_dir"
    mv "$work/libs" "$libs_dir"
    mv "$work/config" "$config_dir"
    printf 'version=%s\nscala=%s\njars=%s\n' "$KAFKA_VERSION" "$SCALA_VERSION" "$jars" >"$marker"
    log "fetched $jars jars into $libs_dir"
    if ((pin)); then write_manifest "$KAFKA_HOME" "$manifest" && log "pinned in $manifest"; fi
    printf '%s\n' "$KAFKA_HOME"
}

main "$@"
