#include "server/gateway/enrollment.h"

#include <gtest/gtest.h>

#include "common/pki.h"
#include "server/gateway/gateway_test_env.h"

namespace quell::server {
namespace {

class EnrollmentTest : public GatewayTestEnv {};

TEST_F(EnrollmentTest, TokenAndCsrBecomeADeviceWithACertificate) {
  auto token = CreateEnrollmentToken(*store_, clock_, 1, 60'000);
  auto csr = pki::CreateKeyAndCsr("ignored-subject");
  Device inventory{.computer_dns_name = "web-1", .ip_addresses = {"10.0.0.5", "fd00::5"}};
  auto result = EnrollDevice(*store_, *ca_, clock_,
                             {.token = *token, .csr_pem = csr->cert_pem, .inventory = inventory});
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  auto cert = pki::InspectCertificate(result->certificate_pem);
  EXPECT_EQ(cert->common_name, result->device_id);
  EXPECT_TRUE(pki::VerifyIssuedBy(result->certificate_pem, ca_->ca_cert_pem()).value());
  Device stored = store_->GetDevice(result->device_id).value();
  EXPECT_EQ(stored.computer_dns_name, "web-1");
  EXPECT_EQ(stored.last_ip_address, "10.0.0.5");
  EXPECT_EQ(stored.cert_serial_hex, cert->serial_hex);
  EXPECT_EQ(store_->ListAudit({.target = result->device_id})->front().operation,
            "device.enrolled");
}

TEST_F(EnrollmentTest, TokensAreSingleUseAndExpire) {
  auto csr = pki::CreateKeyAndCsr("x");
  auto once = CreateEnrollmentToken(*store_, clock_, 1, 60'000);
  EXPECT_TRUE(EnrollDevice(*store_, *ca_, clock_, {.token = *once, .csr_pem = csr->cert_pem}).ok());
  auto again = EnrollDevice(*store_, *ca_, clock_, {.token = *once, .csr_pem = csr->cert_pem});
  EXPECT_EQ(again.status().code(), StatusCode::kPermissionDenied);

  auto short_lived = CreateEnrollmentToken(*store_, clock_, 5, 1'000);
  clock_.Advance(1'001);
  EXPECT_EQ(EnrollDevice(*store_, *ca_, clock_, {.token = *short_lived, .csr_pem = csr->cert_pem})
                .status()
                .code(),
            StatusCode::kPermissionDenied);
  EXPECT_EQ(EnrollDevice(*store_, *ca_, clock_, {.token = "qe_guess", .csr_pem = csr->cert_pem})
                .status()
                .code(),
            StatusCode::kPermissionDenied);
}

TEST_F(EnrollmentTest, GarbageCsrIsRefused) {
  auto token = CreateEnrollmentToken(*store_, clock_, 1, 60'000);
  auto r = EnrollDevice(*store_, *ca_, clock_, {.token = *token, .csr_pem = "not a csr"});
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(store_->ListDevices()->empty());
}

}  // namespace
}  // namespace quell::server
