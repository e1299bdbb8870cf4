// Mamori default rules: CPU coin miners (XMRig and look-alikes) and the shell
// droppers that install them on compromised Linux hosts.
//
// A stratum URL alone is not enough to flag a file (pool operators, docs and
// monitoring tools mention them); every rule pairs it with options or keys that
// only a miner uses.

rule Mamori_Miner_XMRig_Config : linux miner
{
  meta:
    description = "XMRig-style miner JSON config: a pools list with a pool url, donate-level and at least two other miner-only keys"
    author = "Mamori project"
    severity = "medium"
    date = "2026-11-26"

  strings:
    $pools = "\"pools\""
    // XMRig writes the pool as host:port, with or without the stratum scheme.
    $url = /"url"\s{0,4}:\s{0,4}"(stratum\+(tcp|ssl|tls):\/\/)?[A-Za-z0-9.\-]{3,80}:[0-9]{2,5}"/
    $donate = "\"donate-level\""
    $donate_proxy = "\"donate-over-proxy\""
    $k_rig = "\"rig-id\""
    $k_nicehash = "\"nicehash\""
    $k_hugepages = "\"huge-pages\""
    $k_randomx = "\"randomx\""
    $k_tls_fp = "\"tls-fingerprint\""
    $k_algo = /"algo"\s{0,4}:\s{0,4}"(rx|cn|cn-lite|cn-heavy|cn-pico|argon2|ghostrider|kawpow)\/[0-9a-z\-]{1,16}"/

  condition:
    filesize < 512KB and $pools and $url and 1 of ($donate*) and 2 of ($k_*)
}

rule Mamori_Miner_CommandLine : linux miner
{
  meta:
    description = "Script, cron or unit file starting a miner: -o/--url with a stratum pool URL plus miner options (wallet user, algorithm, donate level, CPU limits)"
    author = "Mamori project"
    severity = "high"
    date = "2026-11-26"

  strings:
    $url_opt = /(-o|--url)[ =]{1,4}["']?stratum\+(tcp|ssl|tls):\/\/[A-Za-z0-9.\-]{3,80}:[0-9]{2,5}/
    // "-o stratum+tcp://host:port -u <wallet>": the usual order on a miner command line.
    $o_user = /stratum\+(tcp|ssl|tls):\/\/[A-Za-z0-9.\-]{3,80}:[0-9]{2,5}["']?\s{1,4}(-u|--user)[ =]{1,4}["']?[0-9A-Za-z._+\-]{8,128}/
    $o_donate = /--donate-level[ =]{1,4}[0-9]/
    $o_algo = /\s(-a|--algo)[ =]{1,4}["']?(rx\/0|rx\/wow|rx\/arq|cn\/r|cn\/0|cn\/half|cn-lite\/[0-9]|cn-heavy\/[0-9]|cryptonight|randomx|argon2\/chukwa|ghostrider|kawpow)/
    $o_cpu = /--(max-cpu-usage|cpu-max-threads-hint|cpu-priority|randomx-1gb-pages|cpu-affinity)[ =]{1,4}[0-9x]/
    $o_coin = /--coin[ =]{1,4}["']?(monero|xmr|XMR|Monero)/

  condition:
    filesize < 1MB and uint32(0) != 0x464C457F and $url_opt and 1 of ($o_*)
}

rule Mamori_Miner_XMRig_ELF : linux miner
{
  meta:
    description = "ELF CPU miner: stratum scheme strings together with donate-level or stratum mining methods and CryptoNight/RandomX algorithm names"
    author = "Mamori project"
    severity = "medium"
    date = "2026-11-26"

  strings:
    $stratum_tcp = "stratum+tcp://"
    $stratum_ssl = "stratum+ssl://"
    $donate_opt = "--donate-level"
    $donate_key = "donate-level"
    $m_subscribe = "mining.subscribe"
    $m_authorize = "mining.authorize"
    $a_cn = "cryptonight" nocase
    $a_rx = "randomx" nocase
    $a_rx0 = "rx/0"
    $a_cnr = "cn/r"

  condition:
    uint32(0) == 0x464C457F and filesize < 32MB and
    1 of ($stratum_*) and
    (1 of ($donate_*) or all of ($m_*)) and
    1 of ($a_*)
}

rule Mamori_Miner_Dropper_Script : linux miner dropper
{
  meta:
    description = "Shell dropper for a miner: curl/wget of a miner binary by name, chmod +x, then started detached (nohup, setsid, screen -dm)"
    author = "Mamori project"
    severity = "high"
    date = "2026-11-26"

  strings:
    // The miner name must appear on the download line itself (URL or -O name);
    // a plain "download, chmod, nohup" installer of anything else is normal.
    $fetch = /\b(curl|wget)\s[^\n]{0,200}(xmrig|xmr-stak|xmrstak|cpuminer|minerd|kdevtmpfsi|kinsing)/ nocase
    $chmod = /\bchmod\s{1,4}(-R\s{1,4})?(\+x|[ua]\+x|[0-7]?[75][0-7][0-7])\s/
    $bg_nohup = /\bnohup\s{1,4}[^\n]{1,200}&/
    $bg_setsid = /\bsetsid\s{1,4}(-f\s{1,4})?\.?\//
    $bg_screen = /\bscreen\s{1,4}(-dmS?|-d\s{1,4}-m)\s/

  condition:
    filesize < 256KB and uint32(0) != 0x464C457F and $fetch and $chmod and 1 of ($bg_*)
}
