# mamori-server %post ($1: 1 install, 2 upgrade). The data directory is made
# on first install only; the server makes its CA and keys at first start.
if [ ! -d /var/lib/mamori-server ]; then
	mkdir -p /var/lib/mamori-server
	chmod 0700 /var/lib/mamori-server
	chown mamori:mamori /var/lib/mamori-server
fi
if [ -d /run/systemd/system ]; then
	systemctl --system daemon-reload >/dev/null 2>&1 || :
	if [ "$1" -eq 1 ]; then
		systemctl enable --now mamori-server.service >/dev/null 2>&1 || :
	fi
fi
