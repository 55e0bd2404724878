/*
 * shoal_hal_esp32.h - the ESP-IDF platform layer of the ESP32 (esp32-devkitc): Wi-Fi station
 * and a non-blocking UDP transport over lwIP sockets for the MQTT-SN client.
 *
 * Responsible for: joining the Wi-Fi network named at build time (SHOAL_WIFI_SSID,
 * SHOAL_WIFI_PASSWORD; the generated platformio.ini takes them from the environment variables
 * of the same names, so no secret is written into the project) and moving whole datagrams to
 * and from the gateway. shoal_hal.h itself (clock, console, UART0, reset) is implemented in
 * shoal_hal_esp32.c. Must not: know MQTT-SN beyond moving datagrams.
 *
 * Not compiled in this repository: there is no xtensa-esp32-elf toolchain or ESP-IDF here, so
 * this file is written against the ESP-IDF 5.x API (4.4 where marked) and checked only by
 * review; tests/codegen/test_platformio_projects.py says so in its skip reason.
 */
#ifndef SHOAL_HAL_ESP32_H
#define SHOAL_HAL_ESP32_H

#include <stddef.h>
#include <stdint.h>

#include "lwip/sockets.h"

#include "shoal_mqttsn_client.h"

#ifdef __cplusplus
extern "C" {
#endif

#ifndef SHOAL_WIFI_SSID
#error "define SHOAL_WIFI_SSID (the generated platformio.ini passes $SHOAL_WIFI_SSID)"
#endif
#ifndef SHOAL_WIFI_PASSWORD
#define SHOAL_WIFI_PASSWORD ""
#endif
/* How long app_main waits for an IP address before starting the firmware anyway (ms). */
#ifndef SHOAL_WIFI_TIMEOUT_MS
#define SHOAL_WIFI_TIMEOUT_MS 20000u
#endif

/* 1 once the station holds an IPv4 address (set from the ESP-IDF event task). */
int shoal_esp32_wifi_up(void);

typedef struct {
    int fd;                       /* the UDP socket, -1 when closed */
    struct sockaddr_in gateway;   /* where send() goes */
    struct sockaddr_in search;    /* where SEARCHGW goes (a broadcast address works) */
    struct sockaddr_in last_from; /* sender of the last datagram received */
    uint32_t foreign_dropped;     /* datagrams too large for the caller's buffer */
} shoal_esp32_udp;

/*
 * Open a non-blocking UDP socket bound to local_port (0 = any) aimed at gateway_host (dotted
 * IPv4 or a host name, resolved through lwIP's DNS) : gateway_port. SEARCHGW goes to the same
 * address; SO_BROADCAST is set so 255.255.255.255 works. Returns 0 or -1.
 */
int shoal_esp32_udp_open(shoal_esp32_udp *u, const char *gateway_host, uint16_t gateway_port,
                         uint16_t local_port);
void shoal_esp32_udp_close(shoal_esp32_udp *u);

/* Fill *t with this socket's send/broadcast/recv and the ESP-IDF millisecond clock. */
void shoal_esp32_udp_transport(shoal_esp32_udp *u, shoal_mqttsn_transport *t);

/* Make the sender of the last received datagram the gateway (after a GWINFO). */
void shoal_esp32_udp_use_last_sender(shoal_esp32_udp *u);

#ifdef __cplusplus
}
#endif

#endif /* SHOAL_HAL_ESP32_H */
