// mamorictl's connection to mamori-server's ConsoleService: settings from
// flags, environment and an optional config file, a channel, and per-call
// contexts carrying the API token. docs/console.md describes the settings.
//
// Thread safety: a Client may be used from one thread at a time.
#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <memory>
#include <string>

#include "mamori/common/status.h"
#include "mamori/v1/console.grpc.pb.h"

namespace mamori::ctl {

struct ConnectionSettings {
  std::string server = "127.0.0.1:8443";  // --server, MAMORI_SERVER, config "server"
  std::string ca_file;                    // --ca, MAMORI_CA, config "ca": PEM CA certificate to pin
  std::string token;                      // --token, MAMORI_TOKEN, --token-file / config "token_file"
  std::string cert_file;                  // --cert, MAMORI_CERT, config "cert": console user certificate (PEM)
  std::string key_file;                   // --key, MAMORI_KEY, config "key": its private key (PEM)
  bool insecure = false;                  // --insecure, MAMORI_INSECURE=1: plaintext (loopback test servers)
  std::chrono::seconds timeout{30};       // per unary call
};

// Reads "key: value" lines (# comments) of a config file into `s`; keys:
// server, ca, token_file, cert, key, insecure. kInvalidArgument names the file and line.
Status ReadConfigFile(const std::string& path, ConnectionSettings* s);
// Applies MAMORI_SERVER, MAMORI_CA, MAMORI_TOKEN, MAMORI_INSECURE.
void ApplyEnvironment(ConnectionSettings* s);
// Reads a token file (first line, whitespace trimmed).
Result<std::string> ReadTokenFile(const std::string& path);

class Client {
 public:
  // kInvalidArgument when TLS is asked for without a readable CA file.
  static Result<std::unique_ptr<Client>> Connect(const ConnectionSettings& s);

  mamori::v1::ConsoleService::Stub& stub() { return *stub_; }
  // A context with the token and the unary deadline.
  std::unique_ptr<grpc::ClientContext> Unary() const;
  // A context with the token and no deadline (streams).
  std::unique_ptr<grpc::ClientContext> Stream() const;
  const ConnectionSettings& settings() const { return settings_; }

 private:
  Client(ConnectionSettings s, std::shared_ptr<grpc::Channel> channel);
  ConnectionSettings settings_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<mamori::v1::ConsoleService::Stub> stub_;
};

}  // namespace mamori::ctl
