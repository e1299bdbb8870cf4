# mamori-agent %preun ($1: 0 removal, 1 upgrade): stop and disable on removal.
if [ "$1" -eq 0 ] && [ -d /run/systemd/system ]; then
	systemctl disable --now mamori-agent.service >/dev/null 2>&1 || :
fi
