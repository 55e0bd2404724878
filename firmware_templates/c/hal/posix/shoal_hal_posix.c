/*
 * shoal_hal_posix.c - POSIX clock and UDP transport (see shoal_hal_posix.h).
 */
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE /* struct ip_mreq, IP_MULTICAST_IF on glibc */

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

static int recv_one(shoal_posix_udp *u, int fd, uint8_t *buf, size_t cap)
{
    for (;;) {
        struct sockaddr_in from;
        socklen_t from_len = sizeof(from);
        ssize_t n = recvfrom(fd, buf, cap, MSG_TRUNC, (struct sockaddr *)&from, &from_len);
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

static int transport_recv(void *ctx, uint8_t *buf, size_t cap)
{
    shoal_posix_udp *u = (shoal_posix_udp *)ctx;
    int n = recv_one(u, u->fd, buf, cap);
    if (n == 0 && u->mcast_fd >= 0) {
        n = recv_one(u, u->mcast_fd, buf, cap);
    }
    return n;
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
    u->mcast_fd = -1;
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
    if (u->mcast_fd >= 0) {
        close(u->mcast_fd);
        u->mcast_fd = -1;
    }
}

int shoal_posix_udp_join_multicast(shoal_posix_udp *u, const char *group, uint16_t group_port,
                                   const char *interface_addr)
{
    struct sockaddr_in bind_to;
    struct ip_mreq mreq;
    struct in_addr iface;
    int one = 1;
    int fd;
    int flags;

    memset(&bind_to, 0, sizeof(bind_to));
    memset(&mreq, 0, sizeof(mreq));
    if (inet_pton(AF_INET, group, &mreq.imr_multiaddr) != 1 ||
        !IN_MULTICAST(ntohl(mreq.imr_multiaddr.s_addr)) ||
        inet_pton(AF_INET, interface_addr, &iface) != 1) {
        errno = EINVAL;
        return -1;
    }
    mreq.imr_interface = iface;
    fd = socket(AF_INET, SOCK_DGRAM, 0);
    if (fd < 0) {
        return -1;
    }
    bind_to.sin_family = AF_INET;
    bind_to.sin_port = htons(group_port);
    bind_to.sin_addr = mreq.imr_multiaddr; /* only datagrams sent to the group */
    flags = fcntl(fd, F_GETFL, 0);
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        bind(fd, (const struct sockaddr *)&bind_to, sizeof(bind_to)) < 0 ||
        setsockopt(fd, IPPROTO_IP, IP_ADD_MEMBERSHIP, &mreq, sizeof(mreq)) < 0 || flags < 0 ||
        fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0 ||
        setsockopt(u->fd, IPPROTO_IP, IP_MULTICAST_IF, &iface, sizeof(iface)) < 0 ||
        setsockopt(u->fd, IPPROTO_IP, IP_MULTICAST_LOOP, &one, sizeof(one)) < 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    if (u->mcast_fd >= 0) {
        close(u->mcast_fd);
    }
    u->mcast_fd = fd;
    u->search = bind_to;
    return 0;
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

void shoal_posix_udp_use_gateway(shoal_posix_udp *u, const uint8_t *gw_add, size_t gw_add_len)
{
    if (gw_add != NULL && gw_add_len == 6u) {
        memset(&u->gateway, 0, sizeof(u->gateway));
        u->gateway.sin_family = AF_INET;
        memcpy(&u->gateway.sin_addr.s_addr, gw_add, 4u); /* already network order */
        u->gateway.sin_port = htons((uint16_t)((gw_add[4] << 8) | gw_add[5]));
    } else {
        u->gateway = u->last_from;
    }
}

int shoal_posix_udp_wait(shoal_posix_udp *u, uint32_t timeout_ms)
{
    struct pollfd p[2];
    int rc;
    p[0].fd = u->fd;
    p[0].events = POLLIN;
    p[0].revents = 0;
    p[1].fd = u->mcast_fd;
    p[1].events = POLLIN;
    p[1].revents = 0;
    rc = poll(p, u->mcast_fd >= 0 ? 2u : 1u, (int)timeout_ms);
    if (rc < 0) {
        return errno == EINTR ? 0 : -1;
    }
    return rc > 0 ? 1 : 0;
}
