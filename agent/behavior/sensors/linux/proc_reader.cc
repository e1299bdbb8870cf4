#include "proc_reader.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <vector>

#include "record_decoder.h"

namespace mamori::behavior::linux_sensors {
namespace {

bool ReadWhole(const std::string& path, std::string* out) {
  out->clear();
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  char buf[8192];
  while (true) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      close(fd);
      return n == 0;
    }
    out->append(buf, static_cast<size_t>(n));
  }
}

bool ReadLink(const std::string& path, std::string* out) {
  char buf[4096];
  ssize_t n = readlink(path.c_str(), buf, sizeof buf);
  if (n <= 0) return false;
  out->assign(buf, static_cast<size_t>(n));
  constexpr std::string_view kDeleted = " (deleted)";
  if (out->size() > kDeleted.size() && out->compare(out->size() - kDeleted.size(), kDeleted.size(), kDeleted) == 0) {
    out->resize(out->size() - kDeleted.size());
  }
  return true;
}

// "Uid:\t1000\t1000\t1000\t1000" -> first two numbers.
bool IdPair(const std::string& status, const char* key, uint32_t* real, uint32_t* effective) {
  size_t at = status.find(key);
  if (at == std::string::npos) return false;
  const char* s = status.c_str() + at + std::strlen(key);
  char* end = nullptr;
  *real = static_cast<uint32_t>(std::strtoul(s, &end, 10));
  *effective = static_cast<uint32_t>(std::strtoul(end, &end, 10));
  return true;
}

}  // namespace

std::string TtyName(uint32_t tty_nr) {
  if (tty_nr == 0) return "";
  uint32_t major = (tty_nr >> 8) & 0xfff;
  uint32_t minor = (tty_nr & 0xff) | ((tty_nr >> 12) & 0xfff00);
  if (major >= 136 && major <= 143) return "pts/" + std::to_string((major - 136) * 256 + minor);
  if (major == 4 && minor < 64) return "tty" + std::to_string(minor);
  if (major == 4) return "ttyS" + std::to_string(minor - 64);
  if (major == 5 && minor == 1) return "console";
  return "";
}

bool ReadProcess(int32_t pid, bool exec_details, int64_t boot_to_realtime_ns, ProcessContext* p) {
  const std::string dir = "/proc/" + std::to_string(pid) + "/";
  p->pid = pid;
  if (p->tid == 0) p->tid = pid;
  bool complete = true;
  std::string text;
  if (exec_details) {
    // Most likely to vanish first: argv (gone with the mm at exit).
    if (ReadWhole(dir + "cmdline", &text) && !text.empty()) {
      SplitArgv(text, &p->argv, &p->command_line);
    } else {
      complete = false;
    }
    if (!ReadLink(dir + "exe", &p->image)) complete = false;
    if (!ReadLink(dir + "cwd", &p->cwd)) complete = false;
    if (ReadWhole(dir + "cgroup", &text)) {
      size_t at = text.find("0::");
      if (at != std::string::npos) {
        size_t end = text.find('\n', at);
        p->cgroup = text.substr(at + 3, end == std::string::npos ? std::string::npos : end - at - 3);
      }
    }
  }
  if (ReadWhole(dir + "status", &text)) {
    uint32_t a = 0, b = 0;
    if (IdPair(text, "\nUid:", &a, &b)) {
      p->uid = a;
      p->euid = b;
    }
    if (IdPair(text, "\nGid:", &a, &b)) {
      p->gid = a;
      p->egid = b;
    }
    size_t at = text.find("\nPPid:");
    if (at != std::string::npos) p->ppid = static_cast<int32_t>(std::strtol(text.c_str() + at + 6, nullptr, 10));
  } else {
    complete = false;
  }
  if (ReadWhole(dir + "stat", &text)) {
    // pid (comm) state ppid pgrp session tty_nr ... field 22 starttime.
    size_t close_paren = text.rfind(')');
    if (close_paren != std::string::npos) {
      std::vector<std::string_view> fields;
      std::string_view rest(text.c_str() + close_paren + 2);
      while (!rest.empty() && fields.size() < 20) {
        size_t sp = rest.find(' ');
        fields.push_back(rest.substr(0, sp));
        if (sp == std::string_view::npos) break;
        rest.remove_prefix(sp + 1);
      }
      // fields[0] is field 3 (state): tty_nr is field 7, starttime field 22.
      if (fields.size() >= 20) {
        if (exec_details)
          p->tty = TtyName(static_cast<uint32_t>(std::strtoul(std::string(fields[4]).c_str(), nullptr, 10)));
        uint64_t ticks = std::strtoull(std::string(fields[19]).c_str(), nullptr, 10);
        static const long hz = sysconf(_SC_CLK_TCK);
        p->start_time_ns = ticks * (1000000000ull / static_cast<uint64_t>(hz)) + boot_to_realtime_ns;
      }
    }
  } else {
    complete = false;
  }
  return complete;
}

}  // namespace mamori::behavior::linux_sensors
