#include "server/gateway/agent_gateway.h"

#include "common/logging.h"
#include "server/gateway/agent_session.h"
#include "server/gateway/enrollment.h"

namespace quell::server {

AgentGateway::AgentGateway(Store& store, const CertificateAuthority& ca, ActionCenter& actions,
                           SessionRegistry& sessions, Presence& presence, const Clock& clock,
                           AgentGatewayOptions options)
    : store_(store),
      ca_(ca),
      actions_(actions),
      sessions_(sessions),
      presence_(presence),
      clock_(clock),
      options_(options) {}

grpc::ServerUnaryReactor* AgentGateway::Enroll(grpc::CallbackServerContext* context,
                                               const quell::v1::EnrollRequest* request,
                                               quell::v1::EnrollResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (request->protocol_version() != quell::v1::PROTOCOL_VERSION_1) {
    reactor->Finish({grpc::StatusCode::FAILED_PRECONDITION,
                     "unsupported protocol version; this server speaks 1"});
    return reactor;
  }
  Result<EnrollmentResult> enrolled =
      EnrollDevice(store_, ca_, clock_,
                   {.token = request->enrollment_token(),
                    .csr_pem = request->csr_pem(),
                    .inventory = InventoryToDevice(request->inventory())});
  if (!enrolled.ok()) {
    Logger("server.gateway")
        ->warn("enrollment from {} refused: {}", context->peer(), enrolled.status().message());
    grpc::StatusCode code = grpc::StatusCode::INTERNAL;
    std::string message = "internal error";
    switch (enrolled.status().code()) {
      case StatusCode::kPermissionDenied:
        code = grpc::StatusCode::PERMISSION_DENIED;
        message = enrolled.status().message();
        break;
      case StatusCode::kInvalidArgument:
        code = grpc::StatusCode::INVALID_ARGUMENT;
        message = enrolled.status().message();
        break;
      default: break;
    }
    reactor->Finish({code, message});
    return reactor;
  }
  response->set_device_id(enrolled->device_id);
  response->set_certificate_pem(enrolled->certificate_pem);
  response->set_ca_certificate_pem(enrolled->ca_certificate_pem);
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerBidiReactor<quell::v1::AgentMessage, quell::v1::ServerMessage>* AgentGateway::Connect(
    grpc::CallbackServerContext* context) {
  return new AgentSession(*this, context);
}

std::shared_ptr<grpc::ServerCredentials> AgentGateway::Credentials(
    const CertificateAuthority& ca) {
  // REQUEST_..._AND_VERIFY: Enroll works without a client certificate; a certificate that
  // is presented must chain to our CA. Connect additionally insists on one (AgentSession).
  grpc::SslServerCredentialsOptions options(GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_AND_VERIFY);
  options.pem_root_certs = ca.ca_cert_pem();
  options.pem_key_cert_pairs.push_back({ca.server_key_pem(), ca.server_cert_pem()});
  return grpc::SslServerCredentials(options);
}

Device InventoryToDevice(const quell::v1::Inventory& inventory) {
  Device d;
  d.computer_dns_name = inventory.hostname();
  d.os_platform = inventory.os_platform().empty() ? "Linux" : inventory.os_platform();
  d.os_version = inventory.os_version();
  d.os_id = inventory.os_id();
  d.kernel_version = inventory.kernel_version();
  d.architecture = inventory.architecture();
  d.agent_version = inventory.agent_version();
  d.ip_addresses.assign(inventory.ip_addresses().begin(), inventory.ip_addresses().end());
  if (!d.ip_addresses.empty()) d.last_ip_address = d.ip_addresses.front();
  return d;
}

}  // namespace quell::server
