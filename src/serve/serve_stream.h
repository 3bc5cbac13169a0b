/*
 * A streamed response body between a producer (the generation side, which must never block on
 * a slow client) and the HTTP connection's thread (which sends what is there and waits for
 * more). Reference-counted: the producer and the connection each hold one reference, and
 * whichever lets go last frees it.
 *
 * A client that goes away cancels the stream (serve_stream_cancel, called by the HTTP layer);
 * the producer sees serve_stream_write fail and serve_stream_cancelled turn true, and stops
 * generating for that client.
 */
#ifndef OB_SERVE_STREAM_H
#define OB_SERVE_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

typedef struct serve_stream serve_stream;

/* Bytes a stream holds unsent before it gives up on a client that does not read: the
 * producer's next write fails and the stream is cancelled. */
#define SERVE_STREAM_MAX_BUFFERED (8u << 20)

/* A new stream with one reference (the caller's); NULL when out of memory. */
serve_stream *serve_stream_new(void);
void serve_stream_ref(serve_stream *s);
/* Drops one reference; the last one frees. NULL is a no-op. */
void serve_stream_unref(serve_stream *s);

/* Producer: queues len bytes (copied). Returns 0, or -1 when the stream was cancelled (the
 * client left, or SERVE_STREAM_MAX_BUFFERED was reached) or memory ran out. Never blocks
 * beyond a mutex. */
int serve_stream_write(serve_stream *s, const char *data, size_t len);
/* Producer: no more data; the reader gets the end after what is queued. */
void serve_stream_close(serve_stream *s);
bool serve_stream_cancelled(serve_stream *s);

/* Consumer: copies up to max queued bytes into buf, waiting up to timeout_ms for some.
 * Returns the byte count, 0 when the wait timed out with nothing queued, or -1 at the end
 * (closed and drained, or cancelled). */
ssize_t serve_stream_read(serve_stream *s, char *buf, size_t max, int timeout_ms);
/* Consumer: the client is gone. */
void serve_stream_cancel(serve_stream *s);

#endif
