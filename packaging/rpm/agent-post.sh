# mamori-agent %post ($1: 1 install, 2 upgrade). The data directory is made
# on first install only; the agent makes its keys at first start.
if [ ! -d /var/lib/mamori ]; then
	mkdir -p /var/lib/mamori
	chmod 0700 /var/lib/mamori
fi
if [ -d /run/systemd/system ]; then
	systemctl --system daemon-reload >/dev/null 2>&1 || :
	if [ "$1" -eq 1 ]; then
		systemctl enable --now mamori-agent.service >/dev/null 2>&1 || :
	fi
fi
