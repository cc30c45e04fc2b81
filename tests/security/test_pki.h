// File: tests/security/test_pki.h
//
// A throw-away public-key infrastructure for TLS and mTLS tests, made at
// test time with the `openssl` command-line tool (Debian package
// `openssl`, installed by tools/setup.sh):
//
// * a CA, and a server certificate it signs, valid for IP 127.0.0.1 and
//   DNS localhost (serverAuth);
// * a client certificate the same CA signs (clientAuth);
// * a second, foreign CA and a client certificate it signs, which a server
//   trusting only the first CA must refuse.
//
// Every file is PEM, written into `dir` (a test passes its TEST_TMPDIR).
// Keys are P-256 (fast to make); certificates are valid for two days.
//
// Example:
//   absl::StatusOr<TestPki> pki = MakeTestPki(TestTmpDir("pki"));
//   ASSERT_TRUE(pki.ok()) << pki.status();
//   ... "--tls_cert=" + pki->server_cert ...

#ifndef JETSTREAM_TESTS_SECURITY_TEST_PKI_H_
#define JETSTREAM_TESTS_SECURITY_TEST_PKI_H_

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace jetstream::testing {

// Paths of the PEM files MakeTestPki() wrote.
struct TestPki {
  std::string ca_cert;
  std::string server_cert;
  std::string server_key;
  std::string client_cert;
  std::string client_key;
  std::string foreign_ca_cert;
  std::string foreign_client_cert;
  std::string foreign_client_key;
};

// MakeTestPki()
//
// Creates `dir` if needed and writes the files above into it. Fails with
// kInternal naming the openssl step that failed (its output goes to the
// test log).
absl::StatusOr<TestPki> MakeTestPki(const std::string& dir);

// A folder under TEST_TMPDIR (or /tmp outside Bazel) named `name`, created.
std::string TestTmpDir(const std::string& name);

// The whole file; empty if it cannot be read.
std::string ReadTextFile(const std::string& path);

// Channel credentials trusting `pki.ca_cert`, presenting the given client
// certificate and key (both empty: no client certificate).
std::shared_ptr<grpc::ChannelCredentials> TlsChannelCredentials(
    const TestPki& pki, const std::string& cert_path = "",
    const std::string& key_path = "");

}  // namespace jetstream::testing

#endif  // JETSTREAM_TESTS_SECURITY_TEST_PKI_H_
