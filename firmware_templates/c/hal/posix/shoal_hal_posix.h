/*
 * shoal_hal_posix.h - POSIX platform layer: a millisecond clock and a non-blocking UDP
 * transport for the MQTT-SN client (native builds and fleet simulation).
 *
 * Responsible for: sockets and time on a POSIX host. Must not: know MQTT-SN beyond moving whole
 * datagrams. One shoal_posix_udp per client; it owns its socket until shoal_posix_udp_close().
 */
#ifndef SHOAL_HAL_POSIX_H
#define SHOAL_HAL_POSIX_H

#include <stddef.h>
#include <stdint.h>

#include <netinet/in.h>

#include "shoal_mqttsn_client.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Monotonic milliseconds (wraps after ~49 days; the client handles wrap-around). */
uint32_t shoal_posix_now_ms(void);

typedef struct {
    int fd;                       /* unicast socket: everything to and from the gateway */
    int mcast_fd;                 /* -1, or the socket joined to the discovery group */
    struct sockaddr_in gateway;   /* where send() goes */
    struct sockaddr_in search;    /* where SEARCHGW goes (a broadcast or unicast address) */
    struct sockaddr_in last_from; /* sender of the last datagram received */
    uint32_t foreign_dropped;     /* datagrams from someone other than the gateway */
} shoal_posix_udp;

/*
 * Open a non-blocking UDP socket bound to local_port (0 = any) and aim it at
 * gateway_host:gateway_port (numeric address or host name, IPv4). SEARCHGW goes to the same
 * address, so give a broadcast address (e.g. 255.255.255.255 or 192.168.1.255; SO_BROADCAST is
 * set) to search for a gateway, then shoal_posix_udp_use_last_sender() after its GWINFO.
 * Returns 0 or -1 (errno set).
 */
int shoal_posix_udp_open(shoal_posix_udp *u, const char *gateway_host, uint16_t gateway_port,
                         uint16_t local_port);
void shoal_posix_udp_close(shoal_posix_udp *u);

/* Fill *t with this socket's send/broadcast/recv and the POSIX clock. */
void shoal_posix_udp_transport(shoal_posix_udp *u, shoal_mqttsn_transport *t);

/*
 * Discover gateways on an IPv4 multicast group (as gateways configured with a multicast group
 * answer SEARCHGW and send ADVERTISE). A second socket, bound to group:group_port with
 * SO_REUSEADDR (several clients on one host listen on the same port), joins the group on the
 * local interface interface_addr ("0.0.0.0": the OS picks it); recv() returns its datagrams too.
 * SEARCHGW (the transport's broadcast) then goes to the group from the unicast socket, out of
 * interface_addr (IP_MULTICAST_IF, loopback on). Call after shoal_posix_udp_open. Returns 0 or -1
 * (errno set; EINVAL for an address that is not IPv4 or not multicast).
 */
int shoal_posix_udp_join_multicast(shoal_posix_udp *u, const char *group, uint16_t group_port,
                                   const char *interface_addr);

/* Make the sender of the last received datagram the gateway (after a GWINFO). */
void shoal_posix_udp_use_last_sender(shoal_posix_udp *u);

/* After EVENT_GWINFO/ADVERTISE: talk to the gateway it names. A 6-byte GwAdd (IPv4 address, then
 * port, big-endian: a client answered for the gateway) is used as given; otherwise the sender of
 * the datagram (the gateway itself). */
void shoal_posix_udp_use_gateway(shoal_posix_udp *u, const uint8_t *gw_add, size_t gw_add_len);

/* Block up to timeout_ms until a datagram is readable (on either socket). Returns 1 readable,
 * 0 timeout, -1 error. */
int shoal_posix_udp_wait(shoal_posix_udp *u, uint32_t timeout_ms);

#ifdef __cplusplus
}
#endif

#endif /* SHOAL_HAL_POSIX_H */
