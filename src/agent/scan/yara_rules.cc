#include "agent/scan/yara_rules.h"

#include <sys/stat.h>
#include <yara.h>

#include <algorithm>
#include <cstdio>
#include <memory>
#include <mutex>
#include <utility>

#include "common/files.h"

namespace quell::agent::scan {
namespace {

// libyara's global state is reference counted; Quell keeps one reference for the process.
Status InitOnce() {
  static std::once_flag once;
  static int rc = ERROR_SUCCESS;
  std::call_once(once, [] { rc = yr_initialize(); });
  if (rc != ERROR_SUCCESS) return Internal("yr_initialize failed: " + std::to_string(rc));
  return Status::Ok();
}

struct CompileErrors {
  std::vector<std::string> messages;
};

void OnCompileMessage(int level, const char* file_name, int line_number, const YR_RULE*,
                      const char* message, void* user_data) {
  if (level != YARA_ERROR_LEVEL_ERROR) return;
  auto* errors = static_cast<CompileErrors*>(user_data);
  errors->messages.push_back(std::string(file_name != nullptr ? file_name : "?") + ":" +
                             std::to_string(line_number) + ": " + message);
}

struct CompilerDeleter {
  void operator()(YR_COMPILER* c) const { yr_compiler_destroy(c); }
};
using CompilerPtr = std::unique_ptr<YR_COMPILER, CompilerDeleter>;

struct FileCloser {
  void operator()(FILE* f) const { std::fclose(f); }
};

// Adds `path` to `compiler`; returns the errors (empty when it compiled).
std::vector<std::string> AddFile(YR_COMPILER* compiler, const std::string& path) {
  CompileErrors errors;
  yr_compiler_set_callback(compiler, &OnCompileMessage, &errors);
  std::unique_ptr<FILE, FileCloser> f(std::fopen(path.c_str(), "r"));
  if (!f) return {path + ":0: cannot open"};
  int n = yr_compiler_add_file(compiler, f.get(), nullptr, path.c_str());
  if (n > 0 && errors.messages.empty()) errors.messages.push_back(path + ":0: does not compile");
  return errors.messages;
}

int CollectMatches(YR_SCAN_CONTEXT*, int message, void* message_data, void* user_data) {
  if (message == CALLBACK_MSG_RULE_MATCHING) {
    auto* names = static_cast<std::vector<std::string>*>(user_data);
    names->push_back(static_cast<YR_RULE*>(message_data)->identifier);
  }
  return CALLBACK_CONTINUE;
}

bool IsRuleFile(const std::string& name) {
  auto ends = [&](std::string_view s) {
    return name.size() > s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0;
  };
  return ends(".yar") || ends(".yara");
}

}  // namespace

YaraRules::~YaraRules() {
  if (rules_ != nullptr) yr_rules_destroy(rules_);
}

YaraRules::YaraRules(YaraRules&& other) noexcept
    : rules_(std::exchange(other.rules_, nullptr)), rule_count_(other.rule_count_) {}

YaraRules& YaraRules::operator=(YaraRules&& other) noexcept {
  if (this != &other) {
    if (rules_ != nullptr) yr_rules_destroy(rules_);
    rules_ = std::exchange(other.rules_, nullptr);
    rule_count_ = other.rule_count_;
  }
  return *this;
}

Result<YaraRules> YaraRules::Load(const std::vector<std::string>& dirs, YaraLoadReport* report) {
  QUELL_RETURN_IF_ERROR(InitOnce());
  YaraLoadReport local;
  if (report == nullptr) report = &local;
  std::vector<std::string> candidates;
  for (const std::string& dir : dirs) {
    struct stat st {};
    if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
      report->skipped_dirs.push_back(dir);
      continue;
    }
    QUELL_ASSIGN_OR_RETURN(std::vector<std::string> names, ListFiles(dir));
    for (const std::string& name : names) {
      if (IsRuleFile(name)) candidates.push_back(dir + "/" + name);
    }
  }
  // A compiler that saw an error cannot be used further, so each file is first tried in a
  // scratch compiler and only clean files go into the real one.
  YR_COMPILER* raw = nullptr;
  if (yr_compiler_create(&raw) != ERROR_SUCCESS) return Internal("yr_compiler_create failed");
  CompilerPtr compiler(raw);
  for (const std::string& path : candidates) {
    YR_COMPILER* scratch_raw = nullptr;
    if (yr_compiler_create(&scratch_raw) != ERROR_SUCCESS) return Internal("yr_compiler_create");
    CompilerPtr scratch(scratch_raw);
    std::vector<std::string> errors = AddFile(scratch.get(), path);
    if (!errors.empty()) {
      report->problems.insert(report->problems.end(), errors.begin(), errors.end());
      continue;
    }
    errors = AddFile(compiler.get(), path);
    if (!errors.empty()) {  // clashes with an earlier file, e.g. a duplicate rule name
      report->problems.insert(report->problems.end(), errors.begin(), errors.end());
      // The shared compiler is now unusable: restart it with the files accepted so far.
      YR_COMPILER* again = nullptr;
      if (yr_compiler_create(&again) != ERROR_SUCCESS) return Internal("yr_compiler_create");
      compiler.reset(again);
      for (const std::string& ok : report->files) (void)AddFile(compiler.get(), ok);
      continue;
    }
    report->files.push_back(path);
  }
  YaraRules out;
  if (yr_compiler_get_rules(compiler.get(), &out.rules_) != ERROR_SUCCESS) {
    return Internal("yr_compiler_get_rules failed");
  }
  const YR_RULE* rule = nullptr;
  yr_rules_foreach(out.rules_, rule) { ++out.rule_count_; }
  return out;
}

Result<std::vector<std::string>> YaraRules::Scan(const void* data, size_t len,
                                                  int timeout_seconds) const {
  std::vector<std::string> names;
  if (rules_ == nullptr || rule_count_ == 0) return names;
  int rc = yr_rules_scan_mem(rules_, static_cast<const uint8_t*>(data), len, 0,
                             &CollectMatches, &names, timeout_seconds);
  if (rc != ERROR_SUCCESS) return Internal("yara scan error " + std::to_string(rc));
  return names;
}

}  // namespace quell::agent::scan
