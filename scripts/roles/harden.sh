#!/usr/bin/env bash
# sshd key-only and ufw default-deny with the deployment's port matrix.
#
# ALLOW="PORT:SOURCE ..." lists the allowed TCP ports; SOURCE "admin" means the
# admin address: ADMIN_CIDR, or when empty the address this SSH session comes
# from (GPUCOST_SSH_CLIENT), so the rules can never lock the deployer out.
set -euo pipefail

ADMIN_CIDR="${ADMIN_CIDR:-}"
ALLOW="${ALLOW:-22:admin}"
SSH_CLIENT_ADDR="${GPUCOST_SSH_CLIENT:-}"
# 01-: sshd keeps the first value it reads, and cloud images ship later
# drop-ins (50-cloud-init.conf) that may turn passwords back on.
SSHD_DROPIN=/etc/ssh/sshd_config.d/01-gpucost.conf
RULES_RECORD=/etc/gpucost/ufw.rules

# shellcheck source=scripts/roles/lib.sh
source "$(dirname "$0")/lib.sh"

admin="${ADMIN_CIDR:-$SSH_CLIENT_ADDR}"
[[ -n "$admin" ]] || die "no admin address: set admin_cidr"

# --- sshd ---------------------------------------------------------------------
# Root may log in with a key only when root is the login user (some images).
permit_root=no
[[ -z "${SUDO_USER:-}" || "${SUDO_USER}" == root ]] && permit_root=prohibit-password

grep -qE '^Include /etc/ssh/sshd_config.d/\*\.conf' /etc/ssh/sshd_config \
    || sed -i '1i Include /etc/ssh/sshd_config.d/*.conf' /etc/ssh/sshd_config
backup="$(mktemp)"
[[ -f "$SSHD_DROPIN" ]] && cp -p "$SSHD_DROPIN" "$backup"
if write_if_changed "$SSHD_DROPIN" 0644 <<EOF_SSHD; then
# Written by gpucost: key-only logins.
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin $permit_root
MaxAuthTries 3
EOF_SSHD
    if ! sshd -t; then
        # Never reload a config sshd rejects: the next login would fail.
        if [[ -s "$backup" ]]; then cp -p "$backup" "$SSHD_DROPIN"; else rm -f "$SSHD_DROPIN"; fi
        die "sshd -t rejected the new settings; restored the previous ones"
    fi
    systemctl reload ssh 2>/dev/null || systemctl reload sshd
    log "sshd: passwords off, reloaded"
fi
rm -f "$backup"

# --- ufw ----------------------------------------------------------------------
apt_install ufw
desired=""
for rule in $ALLOW; do
    port="${rule%%:*}"
    source="${rule#*:}"
    [[ "$source" == admin ]] && source="$admin"
    desired+="allow proto tcp from $source to any port $port"$'\n'
done

if [[ -f "$RULES_RECORD" ]] && [[ "$(<"$RULES_RECORD")"$'\n' == "$desired" ]] \
    && ufw status | grep -q '^Status: active'; then
    log "ufw: rules unchanged"
    exit 0
fi
# A reset drops stale rules (a peer's old IP); established sessions, this
# one included, survive it through conntrack.
ufw --force reset >/dev/null
ufw default deny incoming >/dev/null
ufw default allow outgoing >/dev/null
while read -r -a words; do
    ((${#words[@]})) || continue
    ufw "${words[@]}" >/dev/null
done <<<"$desired"
ufw --force enable >/dev/null
printf '%s' "$desired" | write_if_changed "$RULES_RECORD" 0644 || true
log "ufw: active, deny incoming except: $(printf '%s' "$desired" | tr '\n' ';')"
