// Test-only: a tiny signature database, YARA rules and a file tree written by the test
// itself (no shipped malware signatures), plus runners for the clamscan and yara command-line
// tools used as oracles.
#pragma once

#include <openssl/evp.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <tuple>

#include "common/testing/temp_dir.h"

namespace quell::agent::scan::testing {

// The EICAR test string, assembled here so this header is not itself a "test virus" file.
inline std::string EicarString() {
  return std::string("X5O!P%@AP[4\\PZX54(P^)7CC)7}$") + "EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";
}

inline std::string Md5Hex(const std::string& data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned len = 0;
  EVP_Digest(data.data(), data.size(), md, &len, EVP_md5(), nullptr);
  static const char* kHex = "0123456789abcdef";
  std::string out;
  for (unsigned i = 0; i < len; ++i) {
    out += kHex[md[i] >> 4];
    out += kHex[md[i] & 15];
  }
  return out;
}

inline std::string HexOf(const std::string& s) {
  static const char* kHex = "0123456789abcdef";
  std::string out;
  for (unsigned char c : s) {
    out += kHex[c >> 4];
    out += kHex[c & 15];
  }
  return out;
}

inline void WriteText(const std::string& path, const std::string& content) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream(path, std::ios::binary) << content;
}

inline constexpr const char* kNdbMarker = "quell-ndb-test-marker-5d1e7";
inline constexpr const char* kYaraMarker = "QUELL_YARA_TEST_MARKER_91c4";

// Writes db/quell-test.hdb (EICAR's MD5), db/quell-test.ndb (a marker string) and
// rules/quell-test.yar (another marker) under `root`.
inline void WriteSignatures(const std::string& root) {
  const std::string eicar = EicarString();
  WriteText(root + "/db/quell-test.hdb",
            Md5Hex(eicar) + ":" + std::to_string(eicar.size()) + ":Quell.Test.Eicar\n");
  WriteText(root + "/db/quell-test.ndb", "Quell.Test.Marker:0:*:" + HexOf(kNdbMarker) + "\n");
  WriteText(root + "/rules/quell-test.yar",
            std::string("rule quell_test_marker {\n  strings:\n    $a = \"") + kYaraMarker +
                "\"\n  condition:\n    $a\n}\n");
}

// Runs `command`, returns its stdout.
inline std::string RunCommand(const std::string& command) {
  std::string out;
  FILE* p = ::popen(command.c_str(), "r");
  if (p == nullptr) return out;
  std::array<char, 4096> buf{};
  size_t n = 0;
  while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
  ::pclose(p);
  return out;
}

// (path, threat) pairs the clamscan CLI reports for `target` with database dir `db`.
inline std::set<std::pair<std::string, std::string>> ClamscanOracle(const std::string& db,
                                                                    const std::string& target) {
  std::set<std::pair<std::string, std::string>> out;
  std::string text = RunCommand("clamscan -d '" + db + "' --no-summary --infected -r '" + target +
                                "' 2>/dev/null");
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(start, end - start);
    start = end + 1;
    const std::string kFound = " FOUND";
    size_t sep = line.rfind(": ");
    if (sep == std::string::npos || !line.ends_with(kFound)) continue;
    out.insert({line.substr(0, sep),
                line.substr(sep + 2, line.size() - sep - 2 - kFound.size())});
  }
  return out;
}

// (path, rule) pairs the yara CLI reports for `target` with the rule file `rules`.
inline std::set<std::pair<std::string, std::string>> YaraOracle(const std::string& rules,
                                                                const std::string& target) {
  std::set<std::pair<std::string, std::string>> out;
  std::string text = RunCommand("yara -r '" + rules + "' '" + target + "' 2>/dev/null");
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(start, end - start);
    start = end + 1;
    size_t sp = line.find(' ');
    if (sp == std::string::npos) continue;
    out.insert({line.substr(sp + 1), line.substr(0, sp)});
  }
  return out;
}

}  // namespace quell::agent::scan::testing
