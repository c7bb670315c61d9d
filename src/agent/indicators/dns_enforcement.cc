#include "agent/indicators/dns_enforcement.h"

#include <set>

#include "common/files.h"
#include "common/logging.h"

namespace quell::agent {
namespace {

auto Log() { return Logger("agent.dns"); }

}  // namespace

DnsEnforcement::DnsEnforcement(DnsFilter& filter, DnsSteering& steering, std::string proc_net)
    : filter_(filter), steering_(steering), proc_net_(std::move(proc_net)) {}

DnsEnforcement::~DnsEnforcement() {
  if (Status s = Set(false); !s.ok()) {
    Log()->error("DNS filter: cannot remove the steering table: {}", s.ToString());
  }
}

Status DnsEnforcement::Set(bool on) {
  std::lock_guard lock(mutex_);
  if (!on) {
    if (on_ == false) return Status::Ok();
    // The table first: with the filter gone, steered queries would fail.
    QUELL_RETURN_IF_ERROR(steering_.Remove());
    filter_.Stop();
    on_ = false;
    return Status::Ok();
  }
  QUELL_RETURN_IF_ERROR(filter_.Start());
  std::set<uint32_t> uids;
  for (const char* file : {"/udp", "/udp6"}) {
    if (auto text = ReadFile(proc_net_ + file); text.ok()) uids.merge(DnsListenerUids(*text));
  }
  QUELL_RETURN_IF_ERROR(steering_.Install(
      PlanDnsSteering(filter_.port(), filter_.v6(), filter_.Nameservers(), uids)));
  on_ = true;
  return Status::Ok();
}

}  // namespace quell::agent
