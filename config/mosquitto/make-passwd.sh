#!/bin/sh
# Create the mosquitto password file for cellio and its technicians.
# mosquitto_passwd prompts for each password (nothing lands in shell history).
#
#   sh config/mosquitto/make-passwd.sh /etc/mosquitto/cellio.passwd
#
# Then give cellio its password through the environment, e.g. in the systemd
# unit: Environment=CELLIO_MQTT_PASSWORD=... (config: password_env: CELLIO_MQTT_PASSWORD),
# and map technicians to roles in the cell config: mqtt.roles: { alice: operator }.
# Scripted (CI) instead: mosquitto_passwd -b <file> <user> <password>.
set -eu
FILE=${1:-config/mosquitto/cellio.passwd}

echo "password for cellio-demo-cell (cellio itself):"
mosquitto_passwd -c "$FILE" cellio-demo-cell
for user in alice bob; do
  echo "password for technician $user:"
  mosquitto_passwd "$FILE" "$user"
done
chmod 0640 "$FILE"
echo "wrote $FILE"
