// Asio's out-of-line implementation, compiled once for the library and its users
// (ASIO_SEPARATE_COMPILATION).
#include <asio/impl/src.hpp>
#include <asio/ssl/impl/src.hpp>
