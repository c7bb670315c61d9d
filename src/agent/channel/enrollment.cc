#include "agent/channel/enrollment.h"

#include "common/pki.h"
#include "quell/v1/agent.grpc.pb.h"

namespace quell::agent {

Result<Identity> Enroll(const ServerEndpoint& endpoint, const std::string& enrollment_token,
                        const quell::v1::Inventory& inventory, std::chrono::milliseconds timeout) {
  // The CSR's subject is informational (the server sets CN = device id); keep it valid.
  std::string subject = inventory.hostname().substr(0, 64);
  if (subject.empty()) subject = "quell-agent";
  QUELL_ASSIGN_OR_RETURN(pki::KeyAndCert key_and_csr, pki::CreateKeyAndCsr(subject));

  quell::v1::EnrollRequest request;
  request.set_protocol_version(quell::v1::PROTOCOL_VERSION_1);
  request.set_enrollment_token(enrollment_token);
  request.set_csr_pem(key_and_csr.cert_pem);
  *request.mutable_inventory() = inventory;

  auto stub = quell::v1::AgentGateway::NewStub(MakeServerChannel(endpoint, nullptr));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + timeout);
  quell::v1::EnrollResponse response;
  QUELL_RETURN_IF_ERROR(FromGrpcStatus(stub->Enroll(&ctx, request, &response), "enroll"));

  if (response.device_id().empty() || response.certificate_pem().empty()) {
    return Internal("enroll: the server answered without a device id or certificate");
  }
  // The certificate must chain to the pinned CA, or the next Connect would fail anyway.
  QUELL_ASSIGN_OR_RETURN(bool issued_by_pin,
                         pki::VerifyIssuedBy(response.certificate_pem(), endpoint.ca_pem));
  if (!issued_by_pin) {
    return Internal("enroll: the issued certificate is not signed by the pinned CA");
  }
  return Identity{response.device_id(), key_and_csr.key_pem, response.certificate_pem()};
}

}  // namespace quell::agent
