// The whole public API of notify.
#pragma once

#include <notify/asio_transport.hpp>
#include <notify/batched_writes.hpp>
#include <notify/bus.hpp>
#include <notify/callback_transport.hpp>
#include <notify/error.hpp>
#include <notify/event.hpp>
#include <notify/hub.hpp>
#include <notify/in_process_bus.hpp>
#include <notify/metrics.hpp>
#include <notify/memory_store.hpp>
#include <notify/notification.hpp>
#include <notify/sink.hpp>
#include <notify/sse.hpp>
#include <notify/sse_sink.hpp>
#include <notify/store.hpp>
#include <notify/transport.hpp>
#include <notify/version.hpp>
#include <notify/websocket_sink.hpp>
#include <notify/ws_deflate.hpp>
#include <notify/ws_frame.hpp>
#include <notify/ws_handshake.hpp>
