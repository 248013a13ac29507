#!/usr/bin/env bash
# Create the pipeline's topics, or raise their partition count (never lowered:
# Kafka cannot shrink a topic).
set -euo pipefail

BOOTSTRAP="${BOOTSTRAP:?host:port of the broker}"
TOPICS="${TOPICS:-token_usage token_usage.dlq}"
PARTITIONS="${PARTITIONS:-3}"
KAFKA_HOME=/opt/kafka

# shellcheck source=scripts/roles/lib.sh
source "$(dirname "$0")/lib.sh"

topics() {
    java -Xmx256m -Dlog4j.configuration=file:/etc/kafka/tools-log4j.properties \
        -cp "$KAFKA_HOME/libs/*" org.apache.kafka.tools.TopicCommand \
        --bootstrap-server "$BOOTSTRAP" "$@"
}

for topic in $TOPICS; do
    topics --create --if-not-exists --topic "$topic" --partitions "$PARTITIONS" \
        --replication-factor 1 >/dev/null
    have="$(topics --describe --topic "$topic" | sed -n 's/.*PartitionCount: *\([0-9]*\).*/\1/p' | head -1)"
    [[ -n "$have" ]] || die "cannot describe topic $topic"
    if ((have < PARTITIONS)); then
        topics --alter --topic "$topic" --partitions "$PARTITIONS"
        log "$topic: partitions raised from $have to $PARTITIONS"
    elif ((have > PARTITIONS)); then
        log "warning: $topic has $have partitions, more than $PARTITIONS; Kafka cannot lower it"
    else
        log "$topic: $have partitions"
    fi
done
