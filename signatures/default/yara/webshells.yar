// Mamori default rules: PHP and JSP web shells.
//
// Ordinary web applications read request parameters and, separately, may run
// commands; a web shell hands the request value straight to the interpreter or
// the OS. The rules therefore look for the two joined in one expression instead
// of for either half alone.
//
// Comments describe the code shapes in words rather than quoting them, so
// that this file does not match its own rules.

rule Mamori_Webshell_PHP_Request_Exec : webshell php
{
  meta:
    description = "PHP web shell: eval/assert/system/passthru/shell_exec/exec/popen called directly on $_GET/$_POST/$_REQUEST/$_COOKIE, a request-chosen function name, or backticks around request data"
    author = "Mamori project"
    severity = "high"
    date = "2026-11-26"

  strings:
    $php = "<?php" nocase
    // PHP function names are case-insensitive; shells use "EvAl(" to dodge naive matches.
    $call_req = /\b(eval|assert|system|passthru|shell_exec|exec|popen|proc_open|pcntl_exec)\s{0,8}\(\s{0,8}(@\s{0,4})?(stripslashes\s{0,4}\(\s{0,4}|base64_decode\s{0,4}\(\s{0,4}|trim\s{0,4}\(\s{0,4})?\$_(GET|POST|REQUEST|COOKIE|SERVER\s{0,4}\[\s{0,4}["']HTTP_)/ nocase
    // A superglobal element called as a function with another superglobal as
    // argument: the request chooses the function to call.
    $var_func = /\$_(GET|POST|REQUEST|COOKIE)\s{0,4}\[[^\]\n]{1,40}\]\s{0,4}\(\s{0,4}(@\s{0,4})?\$_(GET|POST|REQUEST|COOKIE)\s{0,4}\[/
    $backtick = /`\s{0,4}\$_(GET|POST|REQUEST|COOKIE)\s{0,4}\[/

  condition:
    filesize < 2MB and $php and 1 of ($call_req, $var_func, $backtick)
}

rule Mamori_Webshell_PHP_Encoded_Eval : webshell php obfuscated
{
  meta:
    description = "PHP loader: eval/assert (or create_function) of a decoded payload: base64_decode, gzinflate, gzuncompress, str_rot13, hex2bin chains"
    author = "Mamori project"
    severity = "medium"
    date = "2026-11-26"

  strings:
    $php = "<?php" nocase
    $eval_decode = /\b(eval|assert)\s{0,8}\(\s{0,8}(@\s{0,4})?(base64_decode|gzinflate|gzuncompress|gzdecode|str_rot13|convert_uudecode|hex2bin)\s{0,8}\(/ nocase
    $create_func = /\bcreate_function\s{0,8}\(\s{0,8}(''|"")\s{0,8},\s{0,8}(@\s{0,4})?(base64_decode|gzinflate|gzuncompress|gzdecode|str_rot13|convert_uudecode|hex2bin)\s{0,8}\(/ nocase

  condition:
    filesize < 2MB and $php and 1 of ($eval_decode, $create_func)
}

rule Mamori_Webshell_PHP_Preg_Replace_Eval : webshell php
{
  meta:
    description = "PHP web shell: preg_replace with the /e (evaluate) modifier fed from request data"
    author = "Mamori project"
    severity = "high"
    date = "2026-11-26"

  strings:
    $php = "<?php" nocase
    // Old PHP code used /e legitimately with fixed replacements; only a request
    // superglobal among the arguments of the same call is flagged.
    $preg_e = /preg_replace\s{0,8}\(\s{0,8}["'][^"'\n]{0,80}[\/#~|!@%][imsxuADSUX]{0,6}e[imsxuADSUX]{0,6}["']\s{0,8},[^;\n]{0,120}\$_(GET|POST|REQUEST|COOKIE)/ nocase

  condition:
    filesize < 2MB and $php and $preg_e
}

rule Mamori_Webshell_JSP_Runtime_Exec : webshell jsp java
{
  meta:
    description = "JSP web shell: Runtime.getRuntime().exec() or ProcessBuilder run on request.getParameter() input"
    author = "Mamori project"
    severity = "high"
    date = "2026-11-26"

  strings:
    $direct = /Runtime\s{0,4}\.\s{0,4}getRuntime\s{0,4}\(\s{0,4}\)\s{0,4}\.\s{0,4}exec\s{0,4}\(\s{0,8}request\s{0,4}\.\s{0,4}getParameter\s{0,4}\(/
    $pb_direct = /new\s{1,4}ProcessBuilder\s{0,4}\([^;\n]{0,80}request\s{0,4}\.\s{0,4}getParameter\s{0,4}\(/
    // Two-step form (parameter read into a variable, variable exec'd) needs JSP
    // markup and the output read-back to be present as well, so that servlet
    // code which happens to use both APIs independently is not flagged.
    // \x20 is the space: escaped so this file does not contain the marker.
    $jsp_page = "<%@\x20page" nocase
    $jsp_scriptlet = /<%\s{0,4}(if|String|Process|try|java\.)\b/
    $get_param = "request.getParameter("
    $rt_exec = "getRuntime().exec("
    $read_back = "getInputStream()"

  condition:
    filesize < 1MB and
    (1 of ($direct, $pb_direct) or
     (1 of ($jsp_*) and $get_param and $rt_exec and $read_back))
}
