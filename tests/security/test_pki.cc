#include "tests/security/test_pki.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace jetstream::testing {
namespace {

// Runs one shell command line; OK if it exits 0.
absl::Status Run(const std::string& what, const std::string& command) {
  int rc = std::system(absl::StrCat(command, " 2>&1").c_str());
  if (rc != 0) {
    return absl::InternalError(
        absl::StrCat("openssl failed (", what, "): ", command));
  }
  return absl::OkStatus();
}

// A P-256 key and a certificate for `subject` signed by `ca` (self-signed
// CA when `ca` is empty), with the given X.509 v3 extensions.
absl::Status MakeCert(const std::string& dir, const std::string& name,
                      const std::string& subject, const std::string& ca,
                      const std::string& extensions, int serial) {
  const std::string base = absl::StrCat(dir, "/", name);
  std::ofstream(base + ".cnf") << "[req]\ndistinguished_name=dn\n[dn]\n[v3]\n"
                               << extensions << "\n";
  const std::string key_options = absl::StrCat(
      "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj '",
      subject, "' -keyout '", base, ".key' -config '", base, ".cnf'");
  if (ca.empty()) {
    return Run(name, absl::StrCat("openssl req -x509 -days 2 ", key_options,
                                  " -extensions v3 -out '", base, ".pem'"));
  }
  const std::string ca_base = absl::StrCat(dir, "/", ca);
  if (absl::Status s = Run(name, absl::StrCat("openssl req -new ", key_options,
                                              " -out '", base, ".csr'"));
      !s.ok()) {
    return s;
  }
  return Run(
      name, absl::StrCat("openssl x509 -req -days 2 -in '", base, ".csr' -CA '",
                         ca_base, ".pem' -CAkey '", ca_base,
                         ".key' -set_serial ", serial, " -extfile '", base,
                         ".cnf' -extensions v3 -out '", base, ".pem'"));
}

}  // namespace

std::string TestTmpDir(const std::string& name) {
  const char* tmp = std::getenv("TEST_TMPDIR");
  std::string dir = absl::StrCat(tmp != nullptr ? tmp : "/tmp", "/", name);
  std::filesystem::create_directories(dir);
  return dir;
}

std::string ReadTextFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

absl::StatusOr<TestPki> MakeTestPki(const std::string& dir) {
  std::filesystem::create_directories(dir);
  const std::string ca_ext =
      "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,"
      "cRLSign";
  const std::string server_ext =
      "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\n"
      "extendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost";
  const std::string client_ext =
      "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\n"
      "extendedKeyUsage=clientAuth";
  struct Step {
    std::string name, subject, ca, ext;
  };
  const std::vector<Step> steps = {
      {"ca", "/CN=jetstream test CA", "", ca_ext},
      {"server", "/CN=localhost", "ca", server_ext},
      {"client", "/CN=test-gateway", "ca", client_ext},
      {"foreign_ca", "/CN=foreign test CA", "", ca_ext},
      {"foreign_client", "/CN=intruder", "foreign_ca", client_ext},
  };
  int serial = 1000;
  for (const Step& step : steps) {
    if (absl::Status s =
            MakeCert(dir, step.name, step.subject, step.ca, step.ext, ++serial);
        !s.ok()) {
      return s;
    }
  }
  auto pem = [&](const std::string& name) {
    return absl::StrCat(dir, "/", name, ".pem");
  };
  auto key = [&](const std::string& name) {
    return absl::StrCat(dir, "/", name, ".key");
  };
  TestPki pki;
  pki.ca_cert = pem("ca");
  pki.server_cert = pem("server");
  pki.server_key = key("server");
  pki.client_cert = pem("client");
  pki.client_key = key("client");
  pki.foreign_ca_cert = pem("foreign_ca");
  pki.foreign_client_cert = pem("foreign_client");
  pki.foreign_client_key = key("foreign_client");
  return pki;
}

std::shared_ptr<grpc::ChannelCredentials> TlsChannelCredentials(
    const TestPki& pki, const std::string& cert_path,
    const std::string& key_path) {
  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = ReadTextFile(pki.ca_cert);
  if (!cert_path.empty()) {
    ssl.pem_cert_chain = ReadTextFile(cert_path);
    ssl.pem_private_key = ReadTextFile(key_path);
  }
  return grpc::SslCredentials(ssl);
}

}  // namespace jetstream::testing
