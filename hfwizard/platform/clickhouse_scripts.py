"""Shell scripts of the ClickHouse setup Job and backup CronJob (bash in the clickhouse-server image)."""

from __future__ import annotations

from typing import Final

__all__ = ["BACKUP_SCRIPT", "CLIENT_PREAMBLE", "SETUP_SCRIPT"]

# The password never reaches a command line (visible in /proc): it goes from env into a client config
# file readable by this container's user only.
CLIENT_PREAMBLE: Final = """set -euo pipefail
umask 077
printf '<config><user>%s</user><password>%s</password></config>\\n' "$CH_USER" "$CH_PASSWORD" \\
  > /tmp/client.xml
client() { clickhouse-client --config-file /tmp/client.xml "$@"; }
"""

SETUP_SCRIPT: Final = CLIENT_PREAMBLE + """deadline=$(( $(date +%s) + WAIT_SECONDS ))
until wget -q -O /dev/null "http://${CH_HOST}:8123/ping"; do
  if [ "$(date +%s)" -ge "$deadline" ]; then
    echo "ClickHouse at ${CH_HOST}:8123 did not answer /ping within ${WAIT_SECONDS}s" >&2
    exit 1
  fi
  sleep 5
done
client --host "$CH_HOST" --query "CREATE DATABASE IF NOT EXISTS ${CH_DATABASE} ON CLUSTER '${CH_CLUSTER}'"
client --host "$CH_HOST" --query "SYSTEM FLUSH LOGS ON CLUSTER '${CH_CLUSTER}'"
tables=$(client --host "$CH_HOST" --query "SELECT name FROM system.tables
  WHERE database = 'system' AND has(splitByChar(',', '${LOG_TABLES}'), name)")
for table in $tables; do
  client --host "$CH_HOST" --query "ALTER TABLE system.${table} ON CLUSTER '${CH_CLUSTER}'
    MODIFY TTL event_date + INTERVAL ${TTL_DAYS} DAY"
  echo "system.${table}: TTL ${TTL_DAYS} days"
done
echo "database ${CH_DATABASE} ready on cluster ${CH_CLUSTER}"
"""

# Commands go through the sidecar's integration table system.backup_actions (clickhouse-backup's
# `api.create_integration_tables`), so the CronJob needs no access to the data volume.
BACKUP_SCRIPT: Final = CLIENT_PREAMBLE + """stamp=$(date -u +%Y%m%d-%H%M%S)
run() {  # one clickhouse-backup command through the sidecar; waits for it to succeed or fail
  local host=$1 command=$2 state
  client --host "$host" --query "INSERT INTO system.backup_actions(command) VALUES('${command}')"
  for _ in $(seq 1 720); do
    state=$(client --host "$host" --query "SELECT status FROM system.backup_actions
      WHERE command = '${command}' ORDER BY start DESC LIMIT 1")
    case "$state" in
      success) return 0 ;;
      error)
        client --host "$host" --query "SELECT error FROM system.backup_actions
          WHERE command = '${command}' ORDER BY start DESC LIMIT 1" >&2
        return 1 ;;
    esac
    sleep 5
  done
  echo "${command} on ${host} did not finish within an hour" >&2
  return 1
}
for shard in $(seq 0 $(( SHARDS - 1 ))); do
  host="chi-${CHI}-${CH_CLUSTER}-${shard}-0.${CH_NAMESPACE}.svc"
  dbs=$(client --host "$host" --query "SELECT name FROM system.databases
    WHERE name NOT IN ('system', 'INFORMATION_SCHEMA', 'information_schema', 'default')")
  for db in $dbs; do
    prefix="${db}-shard${shard}-"
    if [ "$BACKUP_LOCATION" = remote ]; then create=create_remote; else create=create; fi
    run "$host" "${create} --tables=${db}.* ${prefix}${stamp}"
    echo "backup ${prefix}${stamp} made (${BACKUP_LOCATION})"
    old=$(client --host "$host" --query "SELECT name FROM system.backup_list
      WHERE location = '${BACKUP_LOCATION}' AND startsWith(name, '${prefix}')
      ORDER BY created DESC LIMIT 1000000 OFFSET ${BACKUP_KEEP}")
    for name in $old; do
      run "$host" "delete ${BACKUP_LOCATION} ${name}"
      echo "backup ${name} removed (keeping the last ${BACKUP_KEEP})"
    done
  done
done
"""
