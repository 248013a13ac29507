#!/usr/bin/env bash
# At every boot (a systemd unit from the instance's user data): admit the admin
# address that the instance's `gpucost:admin-cidr` tag names, read through IMDSv2.
#
# `gpucost up` with a new admin IP moves the security-group rule and the tag;
# when it can no longer SSH in (ufw still admits only the old address), it
# reboots the instance and this script rewrites the ufw rules harden.sh
# recorded: the old admin source becomes the new one, nothing else changes.
set -euo pipefail

RULES="${GPUCOST_UFW_RULES:-/etc/gpucost/ufw.rules}"
IMDS="${GPUCOST_IMDS:-http://169.254.169.254}"
TAG=gpucost:admin-cidr

say() { printf 'gpucost-admin-access: %s\n' "$*" >&2; }

# Not hardened yet: ufw is not enabled, nobody is locked out.
[[ -s "$RULES" ]] || exit 0

# No metadata service (the local provider's hosts have none): nothing to read.
token="$(curl -fsS -m 5 -X PUT "$IMDS/latest/api/token" \
    -H 'X-aws-ec2-metadata-token-ttl-seconds: 60')" || {
    say "no instance metadata service at $IMDS; rules unchanged"
    exit 0
}
new="$(curl -fsS -m 5 -H "X-aws-ec2-metadata-token: $token" \
    "$IMDS/latest/meta-data/tags/instance/$TAG")" || {
    say "no $TAG tag in the instance metadata; rules unchanged"
    exit 0
}
if [[ ! "$new" =~ ^[0-9A-Fa-f.:]+/[0-9]{1,3}$ ]]; then
    say "tag $TAG is not a CIDR: ${new:0:60}; rules unchanged"
    exit 1
fi

# The admin is whoever may reach SSH: the source of the port-22 rule.
old="$(awk '$1 == "allow" && $NF == "22" { print $5; exit }' "$RULES")"
if [[ -z "$old" || "$old" == "$new" ]]; then
    say "admin address $new already admitted"
    exit 0
fi
desired="$(awk -v old="$old" -v new="$new" '$5 == old { $5 = new } { print }' "$RULES")"

ufw --force reset >/dev/null
ufw default deny incoming >/dev/null
ufw default allow outgoing >/dev/null
while read -r -a words; do
    ((${#words[@]})) || continue
    ufw "${words[@]}" >/dev/null
done <<<"$desired"
ufw --force enable >/dev/null
printf '%s\n' "$desired" >"$RULES"
say "admin address moved from $old to $new"
