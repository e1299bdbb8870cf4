# mamori-server %postun ($1: 0 removal, 1 upgrade). RPM has no purge: the
# data in /var/lib/mamori-server and the user stay after removal.
if [ -d /run/systemd/system ]; then
	systemctl --system daemon-reload >/dev/null 2>&1 || :
	if [ "$1" -ge 1 ]; then
		systemctl try-restart mamori-server.service >/dev/null 2>&1 || :
	fi
fi
