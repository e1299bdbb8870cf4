// Mamori default rules: the EICAR anti-virus test file.
//
// The EICAR string is deliberately not written verbatim anywhere in this
// repository: the backslash below is escaped, so the bytes of this file differ
// from the test string and other scanners do not flag the source tree.

rule Mamori_Test_EICAR : test eicar
{
  meta:
    description = "EICAR anti-virus test file: the 68-byte test string at offset 0, optionally followed by whitespace, 128 bytes at most"
    author = "Mamori project"
    severity = "low"
    date = "2026-11-26"
    reference = "https://www.eicar.org/download-anti-malware-testfile/"

  strings:
    $eicar = "X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"

  condition:
    // The EICAR definition only allows trailing whitespace (space, tab, CR,
    // LF, Ctrl-Z) up to 128 bytes in total; anything else is a file that merely
    // quotes the string (e.g. an AV test report) and must not be flagged.
    $eicar at 0 and filesize <= 128 and
    (filesize == 68 or
     for all i in (68 .. filesize - 1) :
       (uint8(i) == 0x20 or uint8(i) == 0x09 or uint8(i) == 0x0D or
        uint8(i) == 0x0A or uint8(i) == 0x1A))
}
