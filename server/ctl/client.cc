#include "client.h"

#include <cstdlib>
#include <fstream>
#include <sstream>

namespace mamori::ctl {

namespace {

std::string Trim(std::string s) {
  const char* ws = " \t\r\n";
  const size_t b = s.find_first_not_of(ws);
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(ws) - b + 1);
}

Result<std::string> ReadWhole(const std::string& path, const char* what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return InvalidArgumentError(std::string("cannot read ") + what + " '" + path + "'");
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

Result<std::string> ReadTokenFile(const std::string& path) {
  Result<std::string> text = ReadWhole(path, "token file");
  if (!text.ok()) return text.status();
  std::string first = text->substr(0, text->find('\n'));
  first = Trim(first);
  if (first.empty()) return InvalidArgumentError("token file '" + path + "' is empty");
  return first;
}

Status ReadConfigFile(const std::string& path, ConnectionSettings* s) {
  std::ifstream in(path);
  if (!in) return InvalidArgumentError("cannot read config file '" + path + "'");
  std::string line;
  for (int n = 1; std::getline(in, line); ++n) {
    const std::string where = path + ":" + std::to_string(n);
    line = Trim(line.substr(0, line.find('#')));
    if (line.empty()) continue;
    const size_t colon = line.find(':');
    if (colon == std::string::npos) return InvalidArgumentError(where + ": expected 'key: value'");
    const std::string key = Trim(line.substr(0, colon));
    const std::string value = Trim(line.substr(colon + 1));
    if (key == "server") {
      s->server = value;
    } else if (key == "ca") {
      s->ca_file = value;
    } else if (key == "token_file") {
      Result<std::string> t = ReadTokenFile(value);
      if (!t.ok()) return t.status().WithContext(where);
      s->token = *t;
    } else if (key == "cert") {
      s->cert_file = value;
    } else if (key == "key") {
      s->key_file = value;
    } else if (key == "insecure") {
      s->insecure = value == "true" || value == "yes" || value == "1";
    } else {
      return InvalidArgumentError(where + ": unknown key '" + key + "' (server, ca, token_file, cert, key, insecure)");
    }
  }
  return Status::Ok();
}

void ApplyEnvironment(ConnectionSettings* s) {
  if (const char* v = std::getenv("MAMORI_SERVER"); v != nullptr && *v) s->server = v;
  if (const char* v = std::getenv("MAMORI_CA"); v != nullptr && *v) s->ca_file = v;
  if (const char* v = std::getenv("MAMORI_TOKEN"); v != nullptr && *v) s->token = v;
  if (const char* v = std::getenv("MAMORI_CERT"); v != nullptr && *v) s->cert_file = v;
  if (const char* v = std::getenv("MAMORI_KEY"); v != nullptr && *v) s->key_file = v;
  if (const char* v = std::getenv("MAMORI_INSECURE"); v != nullptr && std::string(v) == "1") s->insecure = true;
}

Result<std::unique_ptr<Client>> Client::Connect(const ConnectionSettings& s) {
  std::shared_ptr<grpc::ChannelCredentials> creds;
  if (s.insecure) {
    creds = grpc::InsecureChannelCredentials();
  } else {
    if (s.ca_file.empty()) {
      return InvalidArgumentError("no CA certificate: pass --ca FILE (from `mamori-server ca export`) or --insecure");
    }
    Result<std::string> pem = ReadWhole(s.ca_file, "CA certificate");
    if (!pem.ok()) return pem.status();
    grpc::SslCredentialsOptions o;
    o.pem_root_certs = *pem;
    if (s.cert_file.empty() != s.key_file.empty()) return InvalidArgumentError("--cert and --key go together");
    if (!s.cert_file.empty()) {
      Result<std::string> cert = ReadWhole(s.cert_file, "certificate");
      if (!cert.ok()) return cert.status();
      Result<std::string> key = ReadWhole(s.key_file, "private key");
      if (!key.ok()) return key.status();
      o.pem_cert_chain = *cert;
      o.pem_private_key = *key;
    }
    creds = grpc::SslCredentials(o);
  }
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(64 << 20);
  args.SetMaxSendMessageSize(64 << 20);
  return std::unique_ptr<Client>(new Client(s, grpc::CreateCustomChannel(s.server, creds, args)));
}

Client::Client(ConnectionSettings s, std::shared_ptr<grpc::Channel> channel)
    : settings_(std::move(s)), channel_(std::move(channel)), stub_(mamori::v1::ConsoleService::NewStub(channel_)) {}

std::unique_ptr<grpc::ClientContext> Client::Stream() const {
  auto ctx = std::make_unique<grpc::ClientContext>();
  if (!settings_.token.empty()) ctx->AddMetadata("authorization", "Bearer " + settings_.token);
  return ctx;
}

std::unique_ptr<grpc::ClientContext> Client::Unary() const {
  auto ctx = Stream();
  ctx->set_deadline(std::chrono::system_clock::now() + settings_.timeout);
  return ctx;
}

}  // namespace mamori::ctl
