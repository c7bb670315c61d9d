// quell-agent --config FILE [--log-level LEVEL]
#include <CLI/CLI.hpp>

#include <csignal>
#include <cstdio>
#include <ctime>
#include <thread>

#include "agent/app/agent.h"
#include "agent/app/agent_config.h"
#include "common/logging.h"

int main(int argc, char** argv) {
  CLI::App cli{"quell-agent: the Quell endpoint agent"};
  std::string config_path;
  std::string log_level;
  cli.add_option("--config", config_path, "agent configuration file (YAML)")->required();
  cli.add_option("--log-level", log_level, "trace, debug, info, warn, error (overrides config)");
  cli.set_version_flag("--version", std::string(QUELL_VERSION));
  CLI11_PARSE(cli, argc, argv);

  auto config = quell::agent::LoadAgentConfig(config_path);
  if (!config.ok()) {
    std::fprintf(stderr, "quell-agent: invalid configuration:\n%s\n",
                 config.status().message().c_str());
    return 2;
  }
  if (!quell::SetLogLevel(log_level.empty() ? config->log_level : log_level)) {
    std::fprintf(stderr, "quell-agent: unknown log level %s\n", log_level.c_str());
    return 2;
  }

  // SIGTERM/SIGINT are blocked in every thread (set before any thread starts) and taken
  // synchronously by one watcher thread, which turns them into a stop request.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  std::stop_source stop;
  std::jthread watcher([&](std::stop_token done) {
    const timespec poll{0, 200'000'000};
    while (!done.stop_requested()) {
      int sig = sigtimedwait(&signals, nullptr, &poll);
      if (sig > 0) {
        quell::Logger("agent")->info("signal {} received; stopping", sig);
        stop.request_stop();
        return;
      }
    }
  });

  quell::agent::Agent agent(std::move(*config));
  quell::Status status = agent.Run(stop.get_token());
  if (!status.ok()) {
    quell::Logger("agent")->critical("cannot run: {}", status.ToString());
    return 1;
  }
  return 0;
}
