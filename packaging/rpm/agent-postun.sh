# mamori-agent %postun ($1: 0 removal, 1 upgrade). RPM has no purge: the data
# in /var/lib/mamori stays after removal (docs/packaging.md).
if [ -d /run/systemd/system ]; then
	systemctl --system daemon-reload >/dev/null 2>&1 || :
	if [ "$1" -ge 1 ]; then
		systemctl try-restart mamori-agent.service >/dev/null 2>&1 || :
	fi
fi
