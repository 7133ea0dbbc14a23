// SSE and WebSocket over TLS: an AsioTransport over asio::ssl::stream<tcp::socket> (a host
// that terminates TLS itself), on real loopback sockets, against an Asio TLS client that
// verifies the server's certificate. The certificate is made for the test (OpenSSL).
#include <notify/asio_transport.hpp>
#include <notify/hub.hpp>
#include <notify/sse_sink.hpp>
#include <notify/websocket_sink.hpp>

#include "fixtures.hpp"
#include "ws_test_support.hpp"

#include <asio/ssl.hpp>
#include <asio/write.hpp>
#include <doctest/doctest.h>
#include <nlohmann/json.hpp>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <array>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

using asio::ip::tcp;
using nlohmann::json;
using test::draft;
using test::no_batching;
using test::SingleThreadMode;
using test::StrandMode;
using test::ws::Opcode;

namespace {

using TlsStream = asio::ssl::stream<tcp::socket>;
static_assert(notify::AsioTransport<TlsStream>::has_closing_handshake);
static_assert(!notify::AsioTransport<tcp::socket>::has_closing_handshake);

// A self-signed certificate for "localhost", valid for an hour, and its key, in PEM.
struct Certificate {
  std::string cert_pem;
  std::string key_pem;
};

std::string pem_of(const std::function<int(BIO*)>& write) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), &BIO_free);
  if (!bio || write(bio.get()) != 1)
    throw std::runtime_error("test certificate: PEM");
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(size));
}

Certificate make_certificate() {
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(EVP_EC_gen("P-256"), &EVP_PKEY_free);
  std::unique_ptr<X509, decltype(&X509_free)> cert(X509_new(), &X509_free);
  if (!key || !cert)
    throw std::runtime_error("test certificate: key");
  X509_set_version(cert.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), 1);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -60);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 3600);
  X509_set_pubkey(cert.get(), key.get());
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("localhost"), -1, -1, 0);
  X509_set_issuer_name(cert.get(), name);
  if (X509_sign(cert.get(), key.get(), EVP_sha256()) == 0)
    throw std::runtime_error("test certificate: sign");
  return {pem_of([&](BIO* b) { return PEM_write_bio_X509(b, cert.get()); }), pem_of([&](BIO* b) {
            return PEM_write_bio_PrivateKey(b, key.get(), nullptr, nullptr, 0, nullptr, nullptr);
          })};
}

// A TLS connection over loopback, both handshakes done: `server` for the transport, `client`
// reading what arrives into `bytes` until the stream ends (`ended`, with its error).
struct TlsPair {
  asio::io_context& io;
  asio::ssl::context server_context{asio::ssl::context::tls_server};
  asio::ssl::context client_context{asio::ssl::context::tls_client};
  std::optional<TlsStream> server;
  std::optional<TlsStream> client;
  std::string bytes;
  std::optional<std::error_code> ended;
  std::array<char, 4096> buffer{};

  explicit TlsPair(asio::io_context& io_) : io(io_) {
    const auto certificate = make_certificate();
    server_context.use_certificate_chain(asio::buffer(certificate.cert_pem));
    server_context.use_private_key(asio::buffer(certificate.key_pem), asio::ssl::context::pem);
    client_context.add_certificate_authority(asio::buffer(certificate.cert_pem));
    client_context.set_verify_mode(asio::ssl::verify_peer);
    test::SocketPair pair(io);
    server.emplace(std::move(pair.server), server_context);
    client.emplace(std::move(pair.client), client_context);
    client->set_verify_callback(asio::ssl::host_name_verification("localhost"));
    std::optional<std::error_code> server_done, client_done;
    server->async_handshake(asio::ssl::stream_base::server,
                            [&](std::error_code ec) { server_done = ec; });
    client->async_handshake(asio::ssl::stream_base::client,
                            [&](std::error_code ec) { client_done = ec; });
    REQUIRE(test::run_until(io, [&] { return server_done && client_done; }));
    REQUIRE_FALSE(*server_done);
    REQUIRE_FALSE(*client_done);
  }

  void read() {
    client->async_read_some(asio::buffer(buffer), [this](std::error_code ec, std::size_t n) {
      if (ec) {
        ended = ec;
        return;
      }
      bytes.append(buffer.data(), n);
      read();
    });
  }

  // Writes on the client's side while its read is pending (both through the io_context).
  void write(std::string data) {
    auto owned = std::make_shared<std::string>(std::move(data));
    asio::async_write(*client, asio::buffer(*owned), [owned](std::error_code, std::size_t) {});
  }
};

}  // namespace

TEST_CASE_TEMPLATE("tls: an SSE stream over asio::ssl::stream, to its session's end", Mode,
                   StrandMode, SingleThreadMode) {
  asio::io_context io;
  notify::NotificationHub hub(io.get_executor(), no_batching());
  TlsPair tls(io);
  auto transport = notify::make_asio_transport(std::move(*tls.server), Mode::value);
  CHECK(transport->kind() == "tls");
  auto sink = notify::SseSink::create(transport);
  hub.attach("alice", sink);
  tls.read();
  REQUIRE(
      test::run_until(io, [&] { return tls.bytes.find("event: init\n") != std::string::npos; }));
  CHECK(tls.bytes.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);

  // Larger than one TLS record (16 KiB), to go through several.
  auto big = draft("alice", "big");
  big.body = std::string(40000, 'x');
  const auto id = hub.publish(big);
  REQUIRE(
      test::run_until(io, [&] { return tls.bytes.find("id: " + id + "\n") != std::string::npos; }));
  REQUIRE(test::run_until(
      io, [&] { return tls.bytes.find(std::string(40000, 'x') + "\"") != std::string::npos; }));

  sink->end_session("logged_out");
  REQUIRE(test::run_until(io, [&] { return tls.ended.has_value(); }));
  CHECK(*tls.ended == asio::error::eof);  // TLS close_notify: not a truncated stream
  // The client answers with its close_notify; then the server closes the TCP connection.
  std::optional<std::error_code> shut, tcp_end;
  tls.client->async_shutdown([&](std::error_code ec) { shut = ec; });
  REQUIRE(test::run_until(io, [&] { return shut.has_value(); }));
  CHECK_FALSE(*shut);
  char byte = 0;
  tls.client->next_layer().async_read_some(asio::buffer(&byte, 1),
                                           [&](std::error_code ec, std::size_t) { tcp_end = ec; });
  REQUIRE(test::run_until(io, [&] { return tcp_end.has_value(); }));
  CHECK(*tcp_end == asio::error::eof);
  const std::string last = "event: session:end\ndata: {\"reason\":\"logged_out\"}\n\n";
  REQUIRE(tls.bytes.size() > last.size());
  CHECK(tls.bytes.substr(tls.bytes.size() - last.size()) == last);
  CHECK(hub.connection_count() == 0);
  hub.stop();
}

TEST_CASE_TEMPLATE("tls: a WebSocket over asio::ssl::stream, both ways, to close 4401", Mode,
                   StrandMode, SingleThreadMode) {
  asio::io_context io;
  notify::NotificationHub hub(io.get_executor(), no_batching());
  TlsPair tls(io);
  notify::WebSocketOptions options;
  options.handshake_response = "HTTP/1.1 101 Switching Protocols\r\n\r\n";
  options.close_linger = std::chrono::milliseconds(300);
  auto sink = notify::WebSocketSink::create(
      notify::make_asio_transport(std::move(*tls.server), Mode::value), options);
  hub.attach("alice", sink);
  tls.read();
  auto messages = [&] {
    std::vector<json> out;
    for (const auto& f : test::ws::server_frames(tls.bytes))
      if (f.opcode == Opcode::text)
        out.push_back(json::parse(f.payload));
    return out;
  };
  REQUIRE(test::run_until(io, [&] { return messages().size() == 1; }));
  CHECK(messages()[0]["type"] == "init");

  const auto id = hub.publish(draft("alice", "over TLS"));
  REQUIRE(test::run_until(io, [&] { return messages().size() == 2; }));
  CHECK(messages()[1]["id"] == id);
  // The client's message goes the other way through TLS: a read receipt.
  tls.write(
      test::ws::client_frame(Opcode::text, json{{"type", "notification:read"}, {"id", id}}.dump()));
  REQUIRE(test::run_until(io, [&] { return messages().size() == 3; }));
  CHECK(messages()[2]["type"] == "notification:read");
  CHECK(messages()[2]["data"] == json{{"ids", {id}}, {"unreadCount", 0}});

  hub.end_sessions("alice", "revoked");
  REQUIRE(test::run_until(io, [&] { return tls.ended.has_value(); }));
  CHECK(*tls.ended == asio::error::eof);
  const auto frames = test::ws::server_frames(tls.bytes);
  REQUIRE(frames.size() == 5);
  CHECK(json::parse(frames[3].payload) ==
        json{{"type", "session:end"}, {"data", {{"reason", "revoked"}}}});
  CHECK(frames[4].opcode == Opcode::close);
  CHECK(frames[4].payload == test::ws::close_payload(4401, "revoked"));
  CHECK(hub.connection_count() == 0);
  hub.stop();
}
