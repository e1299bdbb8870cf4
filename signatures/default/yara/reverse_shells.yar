// Mamori default rules: reverse-shell one-liners dropped into scripts, cron
// jobs, systemd units and shell profiles.
//
// Every rule needs both halves of a reverse shell on one command line: the
// network endpoint (/dev/tcp, nc, a socket) and an interactive shell wired to
// it. Either half alone is everyday administration (bash HTTP health checks,
// netcat port probes, Python socket clients).
//
// Examples in comments and descriptions use placeholders (<host>, <port>,
// <shell>) so that this file does not match its own rules.

rule Mamori_RevShell_Bash_DevTcp : linux reverse_shell
{
  meta:
    description = "Shell reverse shell through bash's /dev/tcp or /dev/udp: 'bash -i >& /dev/tcp/<host>/<port>', 'sh -i' variants, or exec'ing a socket fd and running a shell on it"
    author = "Mamori project"
    severity = "high"
    date = "2026-11-26"

  strings:
    // bash -i >& /dev/tcp/<host>/<port> 0>&1, sh -i 5<> /dev/udp/<host>/<port>,
    // bash -i > /dev/tcp/<host>/<port> 0<&1
    $interactive = /\b(ba|da|z|k)?sh\s{1,4}-i\s{0,4}([0-9]{0,3}>&|&>|[0-9]{0,3}<>|>)\s{0,4}\/dev\/(tcp|udp)\/[A-Za-z0-9.\-:\[\]]{1,64}\/[0-9]{1,5}\b/
    // exec 196<>/dev/tcp/<host>/<port>, then a shell or a read loop uses that fd.
    $exec_fd = /\bexec\s{1,4}[0-9]{1,4}\s{0,2}<>\s{0,2}\/dev\/(tcp|udp)\/[A-Za-z0-9.\-:\[\]]{1,64}\/[0-9]{1,5}\b/
    $shell_on_fd = /\b(ba|da|z|k)?sh\s{1,4}(-i\s{1,4})?[0-9]?<&\s{0,2}[0-9]{1,4}\s{1,4}[0-9]?>&\s{0,2}[0-9]{1,4}/
    $read_loop = /\bwhile\s{1,4}read\s{1,4}(-r\s{1,4})?[A-Za-z_]{1,16}\s{0,4};\s{0,4}do\s{1,4}\$[A-Za-z_]{1,16}\s{1,4}2>&\s{0,2}[0-9]{1,4}\s{1,4}>&\s{0,2}[0-9]{1,4}/

  condition:
    filesize < 1MB and ($interactive or ($exec_fd and 1 of ($shell_on_fd, $read_loop)))
}

rule Mamori_RevShell_Netcat_Exec : linux reverse_shell
{
  meta:
    description = "netcat/ncat handing a shell to the network: 'nc -e <shell>', 'nc <host> <port> -e <shell>', 'ncat --sh-exec'/'--exec' with a shell"
    author = "Mamori project"
    severity = "high"
    date = "2026-11-26"

  strings:
    $nc_e = /\b(nc|netcat|ncat|nc\.traditional|nc\.openbsd)\s{1,4}([^\n|;&]{0,64}\s)?-(e|c)\s{1,4}["']?\/?(usr\/)?(local\/)?(bin\/)?(ba|da|z|k)?sh\b/
    $ncat_exec = /\bncat\s[^\n|;]{0,96}--(sh-)?exec[\s=]{1,4}["']?\/?(usr\/)?(local\/)?(bin\/)?(ba|da|z|k)?sh\b/

  condition:
    filesize < 1MB and 1 of them
}

rule Mamori_RevShell_Mkfifo_Pipe : linux reverse_shell
{
  meta:
    description = "Named-pipe reverse shell: mkfifo/mknod pipe with a shell piped into nc/ncat/telnet/openssl s_client and back"
    author = "Mamori project"
    severity = "high"
    date = "2026-11-26"

  strings:
    // mkfifo /tmp/f; cat /tmp/f | <shell> -i 2>&1 | nc <host> <port> > /tmp/f
    // mknod /tmp/p p; <shell> 0</tmp/p | nc <host> <port> 1>/tmp/p
    $fifo_shell_nc = /\b(mkfifo|mknod)\s[^\n]{1,200}[|;&]\s{0,4}\/?(usr\/)?(bin\/)?(ba|da|z|k)?sh\b[^\n|]{0,60}\|\s{0,4}(nc|ncat|netcat|nc\.traditional|nc\.openbsd|telnet|openssl\s{1,4}s_client)\s/

  condition:
    filesize < 1MB and $fifo_shell_nc
}

rule Mamori_RevShell_Python_Socket : linux reverse_shell python
{
  meta:
    description = "Python reverse shell: socket connect, os.dup2 of the socket fd onto stdin/stdout/stderr, then a shell via subprocess, pty.spawn or os.system"
    author = "Mamori project"
    severity = "high"
    date = "2026-11-26"

  strings:
    // Connect and dup2 within a few hundred bytes: the shape of the one-liner
    // (and of its multi-line copy-paste versions). Daemonising code dup2()s
    // files onto stdio too, but never right after a socket connect.
    $connect_dup2 = /socket\.socket\(.{0,160}\.connect\(\(.{0,240}\bdup2\(\s{0,4}[A-Za-z_][A-Za-z0-9_]{0,16}\.fileno\(\)\s{0,4},\s{0,4}[012]\s{0,4}\)/s
    $spawn_subprocess = /subprocess\.(call|Popen|run)\(\s{0,4}\[\s{0,4}["']\/bin\/(ba|da|z)?sh["']/
    $spawn_pty = /pty\.spawn\(\s{0,4}["'](\/bin\/)?(ba|da|z)?sh["']/
    $spawn_system = /os\.(system|execl?p?)\(\s{0,4}["']\/bin\/(ba|da|z)?sh/

  condition:
    filesize < 1MB and $connect_dup2 and 1 of ($spawn_*)
}

rule Mamori_RevShell_Perl_Socket : linux reverse_shell perl
{
  meta:
    description = "Perl reverse shell: socket connect with STDIN/STDOUT/STDERR reopened onto the socket and /bin/sh exec'd, or IO::Socket::INET fdopen'd onto stdio"
    author = "Mamori project"
    severity = "high"
    date = "2026-11-26"

  strings:
    $connect = /\bconnect\s{0,4}\(\s{0,4}[A-Za-z_$]{1,16}\s{0,4},\s{0,4}sockaddr_in\s{0,4}\(/
    // Reopening STDIN and STDOUT onto one handle (">&<handle>"): ordinary
    // scripts dup STDERR onto STDOUT, but never reopen STDIN.
    $dup_stdin = /\bopen\s{0,4}\(\s{0,4}STDIN\s{0,4},\s{0,4}["'][<>+]{0,2}&\s{0,2}[A-Za-z_$]{1,16}["']/
    $dup_stdout = /\bopen\s{0,4}\(\s{0,4}STDOUT\s{0,4},\s{0,4}["'][<>+]{0,2}&\s{0,2}[A-Za-z_$]{1,16}["']/
    $exec_sh = /\bexec\s{0,4}\(?\s{0,4}["']\/bin\/(ba|da|z)?sh\b/
    // IO::Socket::INET variant: a PeerAddr socket fdopen'd as STDIN, every
    // line read run through system() in a while-<> loop.
    $io_socket = /IO::Socket::INET\s{0,4}\(\s{0,4}["']?PeerAddr/
    $fdopen = /STDIN->fdopen\s{0,4}\(\s{0,4}\$[A-Za-z_]{1,16}\s{0,4},\s{0,4}["']?r/
    $system_loop = /system\s{0,4}\$_\s{1,4}while\s{0,4}<>/

  condition:
    filesize < 1MB and
    (($connect and $dup_stdin and $dup_stdout and $exec_sh) or
     ($io_socket and $fdopen and $system_loop))
}

rule Mamori_RevShell_Socat_Exec : linux reverse_shell
{
  meta:
    description = "socat reverse/bind shell: socat joining a TCP/UDP/SSL endpoint with exec:/system: of an interactive shell"
    author = "Mamori project"
    severity = "high"
    date = "2026-11-26"

  strings:
    // socat exec:'<shell> -li',pty,stderr,setsid,sigint,sane tcp:<host>:<port>
    // socat tcp-connect:<host>:<port> exec:<shell>
    $exec_then_net = /\bsocat\s{1,4}([^\n]{0,80}\s)?(exec|system):["']?\/?(usr\/)?(bin\/)?(ba|da|z|k)?sh\b[^\n]{0,120}\s(tcp|udp|ssl|openssl|tcp4|tcp6)(-connect|-listen)?:/ nocase
    $net_then_exec = /\bsocat\s{1,4}([^\n]{0,80}\s)?(tcp|udp|ssl|openssl|tcp4|tcp6)(-connect|-listen)?:[^\n]{1,120}\s(exec|system):["']?\/?(usr\/)?(bin\/)?(ba|da|z|k)?sh\b/ nocase

  condition:
    filesize < 1MB and 1 of them
}
