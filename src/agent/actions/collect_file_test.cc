#include "agent/actions/collect_file.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>

#include "common/files.h"
#include "common/hash.h"
#include "common/testing/temp_dir.h"

namespace quell::agent {
namespace {

using Json = nlohmann::json;

class CollectFileTest : public ::testing::Test {
 protected:
  // "Uploads" by reading the path it is given, as the uploader does, after `before_send`
  // (a writer racing the upload) has run.
  ArtifactSender Sender(std::function<void()> before_send = {}) {
    return [this, before_send](const std::string& action_id, const std::string& name,
                               const std::string& path, std::stop_token,
                               const std::function<void(uint64_t, uint64_t)>& progress)
               -> Result<SentArtifact> {
      EXPECT_EQ(action_id, "act-1");
      EXPECT_EQ(name, kCollectedFileArtifact);
      if (before_send) before_send();
      QUELL_ASSIGN_OR_RETURN(std::string bytes, ReadFile(path));
      if (progress) progress(bytes.size(), bytes.size());
      sent_ = bytes;
      return SentArtifact{.sha256 = Sha256Hex(bytes), .size = bytes.size()};
    };
  }

  Result<Json> Run(CollectFileAction& action, Json parameters) {
    ActionContext ctx{.action_id = "act-1", .parameters = std::move(parameters)};
    if (Status valid = action.Validate(ctx.parameters); !valid.ok()) return valid;
    return action.Run(ctx);
  }

  quell::testing::TempDir dir_;
  std::string sent_;
};

TEST_F(CollectFileTest, SendsTheFileAndReportsItsHashes) {
  const std::string content = "#!/bin/sh\necho dropper\n";
  ASSERT_TRUE(WriteFileAtomic(dir_ / "dropper.sh", content).ok());
  CollectFileAction action({}, Sender());

  Result<Json> result = Run(action, {{"Path", dir_ / "dropper.sh"}, {"Comment", "triage"}});

  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_EQ(sent_, content);
  EXPECT_EQ((*result)["Sha256"], Sha256Hex(content));
  EXPECT_EQ((*result)["Sha1"].get<std::string>().size(), 40u);
  EXPECT_EQ((*result)["Md5"].get<std::string>().size(), 32u);
  EXPECT_EQ((*result)["Size"], content.size());
  EXPECT_EQ((*result)["FileName"], "dropper.sh");
  EXPECT_EQ((*result)["Path"], dir_ / "dropper.sh");
}

TEST_F(CollectFileTest, AFileWrittenToWhileItIsSentIsNotCollected) {
  const std::string path = dir_ / "growing.log";
  ASSERT_TRUE(WriteFileAtomic(path, "first version\n").ok());
  CollectFileAction action({}, Sender([&] {
    std::ofstream(path, std::ios::app) << "written during the upload\n";
  }));

  Result<Json> result = Run(action, {{"Path", path}});

  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(result.status().message().find("changed while it was being collected"),
            std::string::npos)
      << result.status().message();
  EXPECT_NE(result.status().message().find("hash mismatch"), std::string::npos);
}

TEST_F(CollectFileTest, TheServersDigestRefusalIsReportedAsAChangedFile) {
  ASSERT_TRUE(WriteFileAtomic(dir_ / "f", "x").ok());
  ArtifactSender refusing = [](const std::string&, const std::string&, const std::string&,
                               std::stop_token, const std::function<void(uint64_t, uint64_t)>&)
      -> Result<SentArtifact> {
    return InvalidArgument("upload act-1.file does not match its SHA-256: got 00.., want 11..");
  };
  CollectFileAction action({}, refusing);

  Result<Json> result = Run(action, {{"Path", dir_ / "f"}});

  ASSERT_FALSE(result.ok());
  EXPECT_NE(result.status().message().find("changed while it was being collected"),
            std::string::npos);
}

TEST_F(CollectFileTest, RefusesAFileThatIsNotTheHashAskedFor) {
  ASSERT_TRUE(WriteFileAtomic(dir_ / "f", "other content").ok());
  CollectFileAction action({}, Sender());

  Result<Json> result = Run(action, {{"Path", dir_ / "f"}, {"Sha256", std::string(64, 'a')}});

  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(result.status().message().find("not the " + std::string(64, 'a')), std::string::npos);
  EXPECT_TRUE(sent_.empty()) << "nothing is sent for the wrong file";
}

TEST_F(CollectFileTest, RefusesWhatIsNotARegularFileWithTheReason) {
  const std::string fifo = dir_ / "pipe";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  ASSERT_EQ(::symlink((dir_ / "loop-b").c_str(), (dir_ / "loop-a").c_str()), 0);
  ASSERT_EQ(::symlink((dir_ / "loop-a").c_str(), (dir_ / "loop-b").c_str()), 0);
  CollectFileAction action({}, Sender());

  struct Case {
    std::string path;
    std::string reason;
  };
  for (const Case& c : {Case{fifo, "fifo"}, Case{"/dev/zero", "/dev"},
                        Case{"/proc/self/environ", "/proc"},
                        Case{dir_ / "loop-a", "symbolic link loop"},
                        Case{dir_ / "missing", "no such file"},
                        Case{"relative/path", "absolute"}}) {
    Result<Json> result = Run(action, {{"Path", c.path}});
    ASSERT_FALSE(result.ok()) << c.path;
    EXPECT_NE(result.status().message().find(c.reason), std::string::npos)
        << c.path << ": " << result.status().message();
  }
  EXPECT_TRUE(sent_.empty());
}

TEST_F(CollectFileTest, RefusesAFileOverTheLimit) {
  ASSERT_TRUE(WriteFileAtomic(dir_ / "big", std::string(2048, 'x')).ok());
  CollectFileAction action({.max_bytes = 1024}, Sender());

  Result<Json> result = Run(action, {{"Path", dir_ / "big"}});

  ASSERT_FALSE(result.ok());
  EXPECT_NE(result.status().message().find("more than the limit"), std::string::npos)
      << result.status().message();
}

}  // namespace
}  // namespace quell::agent
