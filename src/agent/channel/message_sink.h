// Where the agent's outbound messages go. Implemented by ServerChannel; faked in tests.
#pragma once

#include "common/status.h"
#include "quell/v1/agent.pb.h"

namespace quell::agent {

class MessageSink {
 public:
  virtual ~MessageSink() = default;

  // Best effort: sent now if the stream is up, otherwise dropped. For progress updates, which
  // carry sequence 0 (never acknowledged). Thread-safe.
  virtual void Send(quell::v1::AgentMessage message) = 0;

  // Durable: the message (an ActionUpdate or Notice) is spooled on disk first — this call
  // returns once it is — and then sent; it is resent after every reconnect until the server
  // acknowledges its sequence. Thread-safe.
  virtual Status SendDurable(quell::v1::AgentMessage message) = 0;
};

}  // namespace quell::agent
