# mamori-server %pre: the unprivileged user the service runs as.
if ! getent passwd mamori >/dev/null 2>&1; then
	if command -v systemd-sysusers >/dev/null 2>&1; then
		echo 'u mamori - "Mamori server" /var/lib/mamori-server /usr/sbin/nologin' | systemd-sysusers - >/dev/null || :
	else
		useradd --system --user-group --no-create-home --home-dir /var/lib/mamori-server \
			--shell /sbin/nologin --comment "Mamori server" mamori || :
	fi
fi
