/*
 * shoal_hal_posix.c - POSIX clock and UDP transport (see shoal_hal_posix.h).
 */
#define _POSIX_C_SOURCE 200809L

#include "shoal_hal_posix.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

uint32_t shoal_posix_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint32_t)((uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u);
}

static uint32_t transport_now_ms(void *ctx)
{
    (void)ctx;
    return shoal_posix_now_ms();
}

static int transport_send(void *ctx, const uint8_t *data, size_t len)
{
    shoal_posix_udp *u = (shoal_posix_udp *)ctx;
    ssize_t n = sendto(u->fd, data, len, 0, (const struct sockaddr *)&u->gateway,
                       sizeof(u->gateway));
    return n == (ssize_t)len ? 0 : -1;
}

static int transport_broadcast(void *ctx, const uint8_t *data, size_t len)
{
    shoal_posix_udp *u = (shoal_posix_udp *)ctx;
    ssize_t n = sendto(u->fd, data, len, 0, (const struct sockaddr *)&u->search,
                       sizeof(u->search));
    return n == (ssize_t)len ? 0 : -1;
}

static int transport_recv(void *ctx, uint8_t *buf, size_t cap)
{
    shoal_posix_udp *u = (shoal_posix_udp *)ctx;
    for (;;) {
        struct sockaddr_in from;
        socklen_t from_len = sizeof(from);
        ssize_t n = recvfrom(u->fd, buf, cap, MSG_TRUNC, (struct sockaddr *)&from, &from_len);
        if (n < 0) {
            /* ICMP errors (gateway not up yet) look like no data: the retry timer copes. */
            return 0;
        }
        u->last_from = from;
        if ((size_t)n > cap) {
            u->foreign_dropped++; /* larger than our buffer: cannot be decoded */
            continue;
        }
        return (int)n;
    }
}

int shoal_posix_udp_open(shoal_posix_udp *u, const char *gateway_host, uint16_t gateway_port,
                         uint16_t local_port)
{
    struct addrinfo hints;
    struct addrinfo *res = NULL;
    struct sockaddr_in local;
    int one = 1;
    int flags;

    memset(u, 0, sizeof(*u));
    u->fd = -1;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_INET;
    hints.ai_socktype = SOCK_DGRAM;
    if (getaddrinfo(gateway_host, NULL, &hints, &res) != 0 || res == NULL) {
        errno = EINVAL;
        return -1;
    }
    memcpy(&u->gateway, res->ai_addr, sizeof(u->gateway));
    freeaddrinfo(res);
    u->gateway.sin_port = htons(gateway_port);
    u->search = u->gateway;

    u->fd = socket(AF_INET, SOCK_DGRAM, 0);
    if (u->fd < 0) {
        return -1;
    }
    (void)setsockopt(u->fd, SOL_SOCKET, SO_BROADCAST, &one, sizeof(one));
    memset(&local, 0, sizeof(local));
    local.sin_family = AF_INET;
    local.sin_port = htons(local_port);
    local.sin_addr.s_addr = htonl(INADDR_ANY);
    flags = fcntl(u->fd, F_GETFL, 0);
    if (bind(u->fd, (const struct sockaddr *)&local, sizeof(local)) < 0 || flags < 0 ||
        fcntl(u->fd, F_SETFL, flags | O_NONBLOCK) < 0) {
        close(u->fd);
        u->fd = -1;
        return -1;
    }
    return 0;
}

void shoal_posix_udp_close(shoal_posix_udp *u)
{
    if (u->fd >= 0) {
        close(u->fd);
        u->fd = -1;
    }
}

void shoal_posix_udp_transport(shoal_posix_udp *u, shoal_mqttsn_transport *t)
{
    t->send = transport_send;
    t->broadcast = transport_broadcast;
    t->recv = transport_recv;
    t->now_ms = transport_now_ms;
    t->ctx = u;
}

void shoal_posix_udp_use_last_sender(shoal_posix_udp *u)
{
    u->gateway = u->last_from;
}

int shoal_posix_udp_wait(shoal_posix_udp *u, uint32_t timeout_ms)
{
    struct pollfd p;
    int rc;
    p.fd = u->fd;
    p.events = POLLIN;
    p.revents = 0;
    rc = poll(&p, 1, (int)timeout_ms);
    if (rc < 0) {
        return errno == EINTR ? 0 : -1;
    }
    return rc > 0 ? 1 : 0;
}
