#!/usr/bin/env bash
# Kafka (ZooKeeper mode) and ZooKeeper as systemd units.
#
# The distribution is the uploaded $GPUCOST_WORKDIR/kafka.tgz (the pinned jar set,
# or a `dist` of the user's: Apache's release or a libs/ + config/ tree) or Apache's
# archive, SHA-512 checked. With KAFKA_MANIFEST_SHA256 the upload carries its
# manifest ($MANIFEST): it must have that SHA-256, and every file its digest.
# ZooKeeper listens on 127.0.0.1 only; the broker on LISTEN_IP:9092.
set -euo pipefail

KAFKA_VERSION="${KAFKA_VERSION:-3.9.1}"
SCALA_VERSION="${SCALA_VERSION:-2.13}"
KAFKA_SOURCE="${KAFKA_SOURCE:-archive}"
KAFKA_MIRROR="${KAFKA_MIRROR:-https://archive.apache.org/dist/kafka}"
KAFKA_SHA512="${KAFKA_SHA512:-}"
KAFKA_MANIFEST_SHA256="${KAFKA_MANIFEST_SHA256:-}"
MANIFEST=gpucost-kafka.sha256
LISTEN_IP="${LISTEN_IP:?set LISTEN_IP to the private IP of the broker}"
WORKDIR="${GPUCOST_WORKDIR:-.}"
KAFKA_HOME=/opt/kafka
CONF=/etc/kafka
KAFKA_HEAP="${KAFKA_HEAP:--Xms256m -Xmx1g}"
ZK_HEAP="${ZK_HEAP:--Xms32m -Xmx256m}"

# shellcheck source=scripts/roles/lib.sh
source "$(dirname "$0")/lib.sh"

install_dist() {
    local tarball want work root
    if [[ "$KAFKA_SOURCE" == upload ]]; then
        tarball="$WORKDIR/kafka.tgz"
        [[ -f "$tarball" ]] || die "no uploaded $tarball"
        want="upload:$(sha256sum "$tarball" | cut -d' ' -f1)"
    else
        want="archive:$SCALA_VERSION-$KAFKA_VERSION"
    fi
    if [[ -f "$KAFKA_HOME/.gpucost-source" && "$(<"$KAFKA_HOME/.gpucost-source")" == "$want" ]]; then
        return 0
    fi
    work="$(mktemp -d)"
    # shellcheck disable=SC2064  # expand now: $work is local.
    trap "rm -rf '$work'" RETURN
    if [[ "$KAFKA_SOURCE" != upload ]]; then
        local name="kafka_$SCALA_VERSION-$KAFKA_VERSION.tgz" expected actual
        tarball="$work/$name"
        log "downloading $KAFKA_MIRROR/$KAFKA_VERSION/$name"
        curl -fsSL --retry 3 -o "$tarball" "$KAFKA_MIRROR/$KAFKA_VERSION/$name"
        expected="$KAFKA_SHA512"
        if [[ -z "$expected" ]]; then
            # Apache's .sha512 is gpg --print-md output: "name: HEX HEX ...", wrapped.
            expected="$(curl -fsSL --retry 3 "$KAFKA_MIRROR/$KAFKA_VERSION/$name.sha512" \
                | tr -d ' \n\r' | sed 's/^.*://')"
        fi
        actual="$(sha512sum "$tarball" | cut -d' ' -f1)"
        [[ "${expected,,}" == "${actual,,}" ]] || die "SHA-512 of $name does not match"
        log "SHA-512 of $name checked"
    fi
    mkdir -p "$work/x"
    tar -xzf "$tarball" -C "$work/x"
    root="$(dirname "$(find "$work/x" -maxdepth 3 -type d -name libs | head -1)")"
    [[ -n "$root" && -d "$root/libs" ]] || die "no libs/ in the Kafka distribution"
    compgen -G "$root/libs/kafka_*.jar" >/dev/null || die "no kafka_*.jar in libs/"
    if [[ -n "$KAFKA_MANIFEST_SHA256" ]]; then
        local problem
        problem="$(check_manifest "$root" "$root/$MANIFEST" "$KAFKA_MANIFEST_SHA256")" \
            || die "uploaded Kafka refused: $problem"
        log "every file of the upload matches the pinned manifest"
    fi
    rm -rf "$KAFKA_HOME.new"
    mv "$root" "$KAFKA_HOME.new"
    # The tarball keeps the modes it was packed with (a 0700 cache here): the services
    # run as `kafka`, which must read the jars but never change them.
    chown -R root:root "$KAFKA_HOME.new"
    chmod -R u=rwX,go=rX "$KAFKA_HOME.new"
    rm -rf "$KAFKA_HOME"
    mv "$KAFKA_HOME.new" "$KAFKA_HOME"
    printf '%s' "$want" >"$KAFKA_HOME/.gpucost-source"
    log "Kafka installed in $KAFKA_HOME ($want)"
}

write_configs() {
    local changed=1
    write_if_changed "$CONF/zookeeper.properties" 0644 <<EOF_ZK && changed=0
dataDir=/var/lib/zookeeper
clientPortAddress=127.0.0.1
clientPort=2181
tickTime=2000
maxClientCnxns=60
4lw.commands.whitelist=ruok,srvr
# The AdminServer is an HTTP server on 0.0.0.0:8080 by default: it would expose
# ZooKeeper beyond loopback and collide with the processor's port.
admin.enableServer=false
EOF_ZK
    write_if_changed "$CONF/server.properties" 0644 <<EOF_KAFKA && changed=0
broker.id=0
listeners=PLAINTEXT://$LISTEN_IP:9092
advertised.listeners=PLAINTEXT://$LISTEN_IP:9092
zookeeper.connect=127.0.0.1:2181
log.dirs=/var/lib/kafka
num.partitions=3
auto.create.topics.enable=false
default.replication.factor=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=0
log.retention.hours=168
EOF_KAFKA
    write_if_changed "$CONF/log4j.properties" 0644 <<'EOF_LOG' && changed=0
log4j.rootLogger=INFO, file
log4j.appender.file=org.apache.log4j.RollingFileAppender
log4j.appender.file.File=${gpucost.log.file}
log4j.appender.file.MaxFileSize=20MB
log4j.appender.file.MaxBackupIndex=3
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.request.logger=WARN
log4j.logger.org.apache.kafka.clients=WARN
EOF_LOG
    write_if_changed "$CONF/tools-log4j.properties" 0644 <<'EOF_TOOLS' && changed=0
log4j.rootLogger=WARN, stderr
log4j.appender.stderr=org.apache.log4j.ConsoleAppender
log4j.appender.stderr.Target=System.err
log4j.appender.stderr.layout=org.apache.log4j.PatternLayout
log4j.appender.stderr.layout.ConversionPattern=%p %m%n
EOF_TOOLS
    unit zookeeper "ZooKeeper (Kafka's metadata)" "" "$ZK_HEAP" \
        org.apache.zookeeper.server.quorum.QuorumPeerMain "$CONF/zookeeper.properties" && changed=0
    unit kafka "Kafka broker" "zookeeper.service" "$KAFKA_HEAP" \
        kafka.Kafka "$CONF/server.properties" && changed=0
    return "$changed"
}

unit() {
    local name="$1" description="$2" requires="$3" heap="$4" main="$5" config="$6"
    write_if_changed "/etc/systemd/system/$name.service" 0644 <<EOF_UNIT
[Unit]
Description=$description
After=network-online.target $requires
Wants=network-online.target
${requires:+Requires=$requires}

[Service]
User=kafka
Group=kafka
ExecStart=/usr/bin/java $heap -Djava.net.preferIPv4Stack=true -Djava.awt.headless=true -Dlog4j.configuration=file:$CONF/log4j.properties -Dgpucost.log.file=/var/log/kafka/$name.log -cp $KAFKA_HOME/libs/* $main $config
Restart=on-failure
RestartSec=5
LimitNOFILE=100000
TimeoutStopSec=60

[Install]
WantedBy=multi-user.target
EOF_UNIT
}

command -v java >/dev/null || die "no java: the java step runs first"
ensure_user kafka
install -d -o kafka -g kafka -m 0750 /var/lib/kafka /var/lib/zookeeper /var/log/kafka
install_dist
if write_configs; then
    systemctl daemon-reload
    systemctl enable zookeeper kafka >/dev/null 2>&1
    systemctl restart zookeeper
    systemctl restart kafka
    log "zookeeper and kafka (re)started"
else
    systemctl start zookeeper kafka
fi
wait_port 127.0.0.1 2181 90
wait_port "$LISTEN_IP" 9092 120
log "broker answers on $LISTEN_IP:9092"
