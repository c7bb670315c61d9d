#include "agent/live/live_session_host.h"

#include <gtest/gtest.h>

#include <condition_variable>
#include <future>
#include <map>
#include <mutex>
#include <thread>

#include "common/files.h"
#include "common/hash.h"
#include "common/testing/temp_dir.h"

namespace quell::agent::live {
namespace {

using namespace std::chrono_literals;

class FakeSink final : public MessageSink {
 public:
  void Send(quell::v1::AgentMessage message) override {
    std::lock_guard lock(mu_);
    messages_.push_back(std::move(message));
    cv_.notify_all();
  }
  Status SendDurable(quell::v1::AgentMessage) override { return Internal("not used"); }

  // The done message of `command_id`, waiting up to `timeout`.
  std::optional<quell::v1::LiveOutput> WaitDone(uint32_t command_id,
                                                std::chrono::milliseconds timeout = 10s) {
    std::unique_lock lock(mu_);
    std::optional<quell::v1::LiveOutput> done;
    cv_.wait_for(lock, timeout, [&] {
      for (const auto& m : messages_) {
        if (m.has_live_output() && m.live_output().command_id() == command_id &&
            m.live_output().done()) {
          done = m.live_output();
        }
      }
      return done.has_value();
    });
    return done;
  }
  std::vector<std::string> Chunks(uint32_t command_id) {
    std::lock_guard lock(mu_);
    std::vector<std::string> out;
    for (const auto& m : messages_) {
      if (m.has_live_output() && m.live_output().command_id() == command_id && !m.live_output().done()) {
        out.push_back(m.live_output().text());
      }
    }
    return out;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<quell::v1::AgentMessage> messages_;
};

quell::v1::LiveCommand Command(const std::string& session, uint32_t id, std::vector<std::string> argv,
                               uint32_t limit = 0, const std::string& lib = "") {
  quell::v1::LiveCommand c;
  c.set_session_id(session);
  c.set_command_id(id);
  for (auto& a : argv) c.add_argv(a);
  c.set_output_format("table");
  c.set_requested_by("alice");
  c.set_time_limit_seconds(limit);
  if (!lib.empty()) {
    c.set_library_sha256(Sha256Hex(lib));
    c.set_library_size(lib.size());
  }
  return c;
}

quell::v1::LiveCancel Cancel(const std::string& session, uint32_t id) {
  quell::v1::LiveCancel c;
  c.set_session_id(session);
  c.set_command_id(id);
  return c;
}

class LiveSessionHostTest : public ::testing::Test {
 protected:
  LiveShellOptions Options() {
    LiveShellOptions o;
    o.work_dir = tmp_ / "work";
    o.fetch = [this](const std::string&, const std::string& name, const std::string&,
                     const std::string& dest, std::stop_token) -> Status {
      return WriteFileAtomic(dest, library_.at(name));
    };
    return o;
  }

  // Opens `session` on a thread; returns once it is open.
  std::future<Result<uint32_t>> Open(LiveSessionHost& host, const std::string& session,
                                     std::stop_token stop = {}) {
    auto opened = std::make_shared<std::promise<void>>();
    auto f = std::async(std::launch::async, [&host, session, stop, opened] {
      return host.RunSession(session, stop, [opened] { opened->set_value(); });
    });
    opened->get_future().wait();
    return f;
  }

  quell::testing::TempDir tmp_;
  std::map<std::string, std::string> library_;
  FakeSink sink_;
};

TEST_F(LiveSessionHostTest, ASessionThatNeverOpensFailsItsCommandsAfterTheWait) {
  LiveSessionHost host(Options(), 300ms);
  host.AttachSink(&sink_);
  host.OnCommand(Command("nope", 1, {"pwd"}));
  auto done = sink_.WaitDone(1);
  ASSERT_TRUE(done);
  EXPECT_EQ(done->status(), "Failed");
  EXPECT_EQ(done->error(), "no open session nope on this device");
}

TEST_F(LiveSessionHostTest, ACommandThatArrivesBeforeItsSessionOpensRunsOnceItDoes) {
  // On the stream the session's action comes first, but the executor starts it on a thread
  // of its own: the first command can reach the host before the session is open.
  LiveSessionHost host(Options());
  host.AttachSink(&sink_);
  host.OnCommand(Command("early", 1, {"pwd"}));
  host.OnCommand(Command("early", 2, {"cd", tmp_.path()}));
  EXPECT_FALSE(sink_.WaitDone(1, 200ms));  // waiting for the session, not refused
  auto session = Open(host, "early");
  auto pwd = sink_.WaitDone(1);
  ASSERT_TRUE(pwd);
  EXPECT_EQ(pwd->status(), "Completed");
  ASSERT_TRUE(sink_.WaitDone(2));
  host.OnCancel(Cancel("early", 0));
  ASSERT_EQ(session.wait_for(10s), std::future_status::ready);
  EXPECT_EQ(*session.get(), 2u);
}

TEST_F(LiveSessionHostTest, CommandsStreamOutputAndTheServerEndsTheSession) {
  LiveSessionHost host(Options());
  host.AttachSink(&sink_);
  auto session = Open(host, "act-1");
  EXPECT_EQ(host.open_sessions(), 1u);
  host.OnCommand(Command("act-1", 1, {"cd", tmp_.path()}));
  auto cd = sink_.WaitDone(1);
  ASSERT_TRUE(cd);
  EXPECT_EQ(cd->status(), "Completed");
  EXPECT_EQ(cd->cwd(), tmp_.path());
  host.OnCommand(Command("act-1", 2, {"pwd"}));
  auto pwd = sink_.WaitDone(2);
  ASSERT_TRUE(pwd);
  EXPECT_EQ(sink_.Chunks(2), std::vector<std::string>{tmp_.path() + "\n"});
  host.OnCommand(Command("act-1", 3, {"frobnicate"}));
  auto bad = sink_.WaitDone(3);
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status(), "Failed");
  EXPECT_NE(bad->error().find("unknown command"), std::string::npos);

  host.OnCancel(Cancel("act-1", 0));
  ASSERT_EQ(session.wait_for(10s), std::future_status::ready);
  auto n = session.get();
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  EXPECT_EQ(*n, 3u);
  EXPECT_EQ(host.open_sessions(), 0u);
  host.OnCommand(Command("act-1", 4, {"pwd"}));
  EXPECT_EQ(sink_.WaitDone(4)->error(), "no open session act-1 on this device");
}

TEST_F(LiveSessionHostTest, LargeOutputComesInChunksOfAtMost64KiB) {
  const std::string script = "#!/bin/sh\nhead -c 200000 /dev/zero | tr '\\0' 'a'\n";
  library_["big.sh"] = script;
  LiveSessionHost host(Options());
  host.AttachSink(&sink_);
  auto session = Open(host, "act-1");
  host.OnCommand(Command("act-1", 1, {"run", "big.sh"}, 60, script));
  auto done = sink_.WaitDone(1);
  ASSERT_TRUE(done);
  EXPECT_EQ(done->status(), "Completed") << done->error();
  std::string all;
  const auto chunks = sink_.Chunks(1);
  EXPECT_GE(chunks.size(), 4u);
  for (const auto& c : chunks) {
    EXPECT_LE(c.size(), kMaxLiveChunkBytes);
    all += c;
  }
  EXPECT_EQ(all.substr(0, 200000), std::string(200000, 'a'));
  EXPECT_NE(all.find("exit code 0"), std::string::npos);
  host.OnCancel(Cancel("act-1", 0));
  EXPECT_TRUE(session.get().ok());
}

TEST_F(LiveSessionHostTest, LiveCancelStopsARunningScript) {
  const std::string script = "#!/bin/sh\nsleep 60\n";
  library_["slow.sh"] = script;
  LiveSessionHost host(Options());
  host.AttachSink(&sink_);
  auto session = Open(host, "act-1");
  host.OnCommand(Command("act-1", 1, {"run", "slow.sh"}, 600, script));
  std::this_thread::sleep_for(300ms);
  const auto start = std::chrono::steady_clock::now();
  host.OnCancel(Cancel("act-1", 1));
  auto done = sink_.WaitDone(1);
  ASSERT_TRUE(done);
  EXPECT_EQ(done->status(), "Cancelled");
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
  host.OnCancel(Cancel("act-1", 0));
  EXPECT_TRUE(session.get().ok());
}

TEST_F(LiveSessionHostTest, TimeLimitEndsTheCommandAsTimedOut) {
  const std::string script = "#!/bin/sh\nsleep 60\n";
  library_["slow.sh"] = script;
  LiveSessionHost host(Options());
  host.AttachSink(&sink_);
  auto session = Open(host, "act-1");
  const auto start = std::chrono::steady_clock::now();
  host.OnCommand(Command("act-1", 1, {"run", "slow.sh"}, 1, script));
  auto done = sink_.WaitDone(1);
  ASSERT_TRUE(done);
  EXPECT_EQ(done->status(), "TimedOut");
  EXPECT_EQ(done->error(), "timed out after 1 s");
  EXPECT_LT(std::chrono::steady_clock::now() - start, 6s);
  host.OnCancel(Cancel("act-1", 0));
  EXPECT_TRUE(session.get().ok());
}

TEST_F(LiveSessionHostTest, CancellingTheActionCancelsRunningCommands) {
  const std::string script = "#!/bin/sh\nsleep 60\n";
  library_["slow.sh"] = script;
  LiveSessionHost host(Options());
  host.AttachSink(&sink_);
  std::stop_source stop;
  auto session = Open(host, "act-1", stop.get_token());
  EXPECT_EQ(host.RunSession("act-1", {}).status().code(), StatusCode::kAlreadyExists);
  host.OnCommand(Command("act-1", 1, {"run", "slow.sh"}, 600, script));
  std::this_thread::sleep_for(200ms);
  stop.request_stop();
  ASSERT_EQ(session.wait_for(10s), std::future_status::ready);
  EXPECT_EQ(session.get().status().code(), StatusCode::kCancelled);
  auto done = sink_.WaitDone(1, 1s);
  ASSERT_TRUE(done);
  EXPECT_EQ(done->status(), "Cancelled");
}

}  // namespace
}  // namespace quell::agent::live
