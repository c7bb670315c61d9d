#include "sandbox/sample_kind.h"

#include <gtest/gtest.h>

namespace quell::sandbox {
namespace {

SampleKind Kind(std::string_view head, std::string_view name = "sample") {
  auto r = DetectSampleKind(head, name);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? *r : SampleKind::kElf;
}

TEST(SampleKindTest, ElfByMagicWhateverTheName) {
  EXPECT_EQ(Kind(std::string_view("\x7f"
                                  "ELF\x02\x01\x01",
                                  7),
                 "invoice.pdf"),
            SampleKind::kElf);
}

TEST(SampleKindTest, ScriptsByTheirInterpreterLine) {
  EXPECT_EQ(Kind("#!/bin/sh\necho hi\n"), SampleKind::kShell);
  EXPECT_EQ(Kind("#! /bin/dash -e\n"), SampleKind::kShell);
  EXPECT_EQ(Kind("#!/usr/bin/bash\r\n"), SampleKind::kBash);
  EXPECT_EQ(Kind("#!/usr/bin/env python3\nimport os\n"), SampleKind::kPython);
  EXPECT_EQ(Kind("#!/usr/bin/python3.11 -u\n"), SampleKind::kPython);
  EXPECT_EQ(Kind("#!/usr/bin/env -S perl -w\n"), SampleKind::kPerl);
  // The #! line decides over the name.
  EXPECT_EQ(Kind("#!/bin/bash\n", "x.py"), SampleKind::kBash);
}

TEST(SampleKindTest, ScriptsWithoutInterpreterLineByExtension) {
  EXPECT_EQ(Kind("echo hi\n", "run.sh"), SampleKind::kShell);
  EXPECT_EQ(Kind("echo hi\n", "run.bash"), SampleKind::kBash);
  EXPECT_EQ(Kind("import os\n", "x.py"), SampleKind::kPython);
  EXPECT_EQ(Kind("print 1;\n", "x.pl"), SampleKind::kPerl);
}

TEST(SampleKindTest, EverythingElseIsRefusedWithTheSupportedTypes) {
  for (auto [head, name] :
       {std::pair<std::string_view, std::string_view>{"\x89PNG\r\n\x1a\n", "cat.png"},
        {"#!/usr/bin/ruby\nputs 1\n", "x"},
        {"#!/usr/bin/python2\n", "x.py"},
        {"", "empty"},
        {"MZ\x90\x00", "setup.exe"}}) {
    auto r = DetectSampleKind(head, name);
    ASSERT_FALSE(r.ok()) << name;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(r.status().message().find("unsupported file type"), std::string::npos);
    EXPECT_NE(r.status().message().find("ELF executables and sh, bash, python3 and perl scripts"),
              std::string::npos)
        << r.status().message();
  }
}

TEST(SampleKindTest, NamesAndInterpreters) {
  EXPECT_EQ(SampleKindName(SampleKind::kShell), "shell");
  EXPECT_EQ(SampleKindName(SampleKind::kElf), "elf");
  EXPECT_EQ(SampleInterpreter(SampleKind::kElf), "");
  EXPECT_EQ(SampleInterpreter(SampleKind::kPython), "/usr/bin/python3");
  EXPECT_EQ(SampleInterpreter(SampleKind::kPerl), "/usr/bin/perl");
}

}  // namespace
}  // namespace quell::sandbox
