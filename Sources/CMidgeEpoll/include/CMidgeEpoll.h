// The Linux calls the reactor needs that Swift's Glibc module does not export (epoll, eventfd,
// accept4). Empty elsewhere: on other systems Midge uses SwiftNIO's sockets only.
#ifndef C_MIDGE_EPOLL_H
#define C_MIDGE_EPOLL_H

#ifdef __linux__
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>

/// epoll_ctl with the event built here: `struct epoll_event` is packed on x86-64.
static inline int midge_epoll_ctl(int epfd, int op, int fd, uint32_t events, uint64_t data) {
    struct epoll_event event;
    event.events = events;
    event.data.u64 = data;
    return epoll_ctl(epfd, op, fd, &event);
}

/// One ready event, unpacked.
typedef struct {
    uint32_t events;
    uint64_t data;
} midge_epoll_ready;

/// epoll_wait into `raw` (capacity `max`), copied unpacked into `out`.
static inline int midge_epoll_wait(int epfd, struct epoll_event *raw, midge_epoll_ready *out, int max, int timeout) {
    int count = epoll_wait(epfd, raw, max, timeout);
    for (int i = 0; i < count; i++) {
        out[i].events = raw[i].events;
        out[i].data = raw[i].data.u64;
    }
    return count;
}

/// accept4(SOCK_NONBLOCK | SOCK_CLOEXEC) (shim.c: it needs _GNU_SOURCE, which must not change
/// the system headers this module shares with Swift's Glibc).
int midge_accept(int fd, struct sockaddr *address, socklen_t *length);
#endif

#endif
