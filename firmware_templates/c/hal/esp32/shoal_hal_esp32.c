/*
 * shoal_hal_esp32.c - shoal_hal.h and the UDP transport on the ESP32 under ESP-IDF.
 *
 * Responsible for: app_main (NVS, netif and Wi-Fi station start, a bounded wait for an IP
 * address, then the firmware's main()), the millisecond clock (esp_timer), the cycle counter
 * (the Xtensa CCOUNT register), the console and "UART" functions on UART0 (the DevKitC's
 * USB bridge; the MQTT-SN link is UDP, so UART0 carries only console text and commands typed
 * by a human), idle (a one-tick vTaskDelay, so the idle task and Wi-Fi run), reset
 * (esp_restart) and exit (report, then park the task), and the lwIP UDP transport declared in
 * shoal_hal_esp32.h. Must not: block the caller of shoal_hal_uart_getc or transport recv.
 *
 * Not compiled in this repository (no ESP-IDF toolchain here): written against ESP-IDF 5.x,
 * with 4.4 fallbacks where the API differs; see shoal_hal_esp32.h.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "driver/uart.h"
#include "esp_event.h"
#include "esp_idf_version.h"
#include "esp_netif.h"
#include "esp_system.h"
#include "esp_timer.h"
#include "esp_wifi.h"
#include "freertos/FreeRTOS.h"
#include "freertos/event_groups.h"
#include "freertos/task.h"
#include "lwip/netdb.h"
#include "lwip/sockets.h"
#include "nvs_flash.h"
#if ESP_IDF_VERSION >= ESP_IDF_VERSION_VAL(5, 0, 0)
#include "esp_cpu.h"
#define SHOAL_CCOUNT() ((uint32_t)esp_cpu_get_cycle_count())
#else
#include "xtensa/core-macros.h"
#define SHOAL_CCOUNT() ((uint32_t)XTHAL_GET_CCOUNT())
#endif

#include "shoal_hal.h"
#include "shoal_hal_esp32.h"

#if defined(CONFIG_ESP_DEFAULT_CPU_FREQ_MHZ)
#define SHOAL_CPU_MHZ CONFIG_ESP_DEFAULT_CPU_FREQ_MHZ
#elif defined(CONFIG_ESP32_DEFAULT_CPU_FREQ_MHZ)
#define SHOAL_CPU_MHZ CONFIG_ESP32_DEFAULT_CPU_FREQ_MHZ
#else
#define SHOAL_CPU_MHZ 160
#endif

#define SHOAL_UART UART_NUM_0
#define SHOAL_UART_RX_BYTES 512
#define WIFI_GOT_IP_BIT BIT0

int main(void);

static EventGroupHandle_t s_wifi_events;
static volatile int s_wifi_up;
static int64_t s_start_us;
static int s_uart_ready;

static void on_wifi_event(void *arg, esp_event_base_t base, int32_t id, void *data)
{
    (void)arg;
    (void)data;
    if (base == WIFI_EVENT && (id == WIFI_EVENT_STA_START || id == WIFI_EVENT_STA_DISCONNECTED)) {
        s_wifi_up = 0;
        (void)esp_wifi_connect(); /* first attempt, and again after every loss */
    } else if (base == IP_EVENT && id == IP_EVENT_STA_GOT_IP) {
        s_wifi_up = 1;
        xEventGroupSetBits(s_wifi_events, WIFI_GOT_IP_BIT);
    }
}

static void start_wifi(void)
{
    wifi_init_config_t init = WIFI_INIT_CONFIG_DEFAULT();
    wifi_config_t config;
    esp_err_t err = nvs_flash_init();

    if (err == ESP_ERR_NVS_NO_FREE_PAGES || err == ESP_ERR_NVS_NEW_VERSION_FOUND) {
        ESP_ERROR_CHECK(nvs_flash_erase());
        err = nvs_flash_init();
    }
    ESP_ERROR_CHECK(err);
    s_wifi_events = xEventGroupCreate();
    ESP_ERROR_CHECK(esp_netif_init());
    ESP_ERROR_CHECK(esp_event_loop_create_default());
    (void)esp_netif_create_default_wifi_sta();
    ESP_ERROR_CHECK(esp_wifi_init(&init));
    ESP_ERROR_CHECK(esp_event_handler_register(WIFI_EVENT, ESP_EVENT_ANY_ID, on_wifi_event, NULL));
    ESP_ERROR_CHECK(esp_event_handler_register(IP_EVENT, IP_EVENT_STA_GOT_IP, on_wifi_event, NULL));
    memset(&config, 0, sizeof(config));
    strncpy((char *)config.sta.ssid, SHOAL_WIFI_SSID, sizeof(config.sta.ssid) - 1u);
    strncpy((char *)config.sta.password, SHOAL_WIFI_PASSWORD, sizeof(config.sta.password) - 1u);
    ESP_ERROR_CHECK(esp_wifi_set_mode(WIFI_MODE_STA));
    ESP_ERROR_CHECK(esp_wifi_set_config(WIFI_IF_STA, &config));
    ESP_ERROR_CHECK(esp_wifi_start());
    if ((xEventGroupWaitBits(s_wifi_events, WIFI_GOT_IP_BIT, pdFALSE, pdTRUE,
                             pdMS_TO_TICKS(SHOAL_WIFI_TIMEOUT_MS)) &
         WIFI_GOT_IP_BIT) == 0) {
        printf("shoal: no IP address from Wi-Fi '%s' after %u ms; starting anyway\n",
               SHOAL_WIFI_SSID, (unsigned)SHOAL_WIFI_TIMEOUT_MS);
    }
}

void app_main(void)
{
    start_wifi();
    shoal_hal_exit(main());
}

int shoal_esp32_wifi_up(void)
{
    return s_wifi_up;
}

void shoal_hal_init(void)
{
    s_start_us = esp_timer_get_time();
    if (!s_uart_ready) {
        /* The driver gives non-blocking reads; TX stays on the console's own path. */
        s_uart_ready = uart_driver_install(SHOAL_UART, SHOAL_UART_RX_BYTES, 0, 0, NULL, 0) ==
                       ESP_OK;
    }
}

void shoal_hal_uart_putc(uint8_t byte)
{
    shoal_hal_uart_write(&byte, 1u);
}

void shoal_hal_uart_write(const uint8_t *data, size_t len)
{
    if (s_uart_ready) {
        (void)uart_write_bytes(SHOAL_UART, (const char *)data, len);
    } else {
        (void)fwrite(data, 1u, len, stdout);
        (void)fflush(stdout);
    }
}

int shoal_hal_uart_getc(void)
{
    uint8_t byte;
    if (s_uart_ready && uart_read_bytes(SHOAL_UART, &byte, 1u, 0) == 1) {
        return byte;
    }
    return -1;
}

int shoal_hal_uart_rx_ready(void)
{
    size_t waiting = 0;
    return s_uart_ready && uart_get_buffered_data_len(SHOAL_UART, &waiting) == ESP_OK &&
           waiting > 0u;
}

void shoal_hal_console_write(const uint8_t *data, size_t len)
{
    (void)fwrite(data, 1u, len, stdout);
}

uint32_t shoal_hal_now_ms(void)
{
    return (uint32_t)((esp_timer_get_time() - s_start_us) / 1000);
}

uint32_t shoal_hal_cycles(void)
{
    return SHOAL_CCOUNT();
}

uint32_t shoal_hal_cycles_hz(void)
{
    return (uint32_t)SHOAL_CPU_MHZ * 1000000u;
}

void shoal_hal_idle(void)
{
    vTaskDelay(1);
}

void shoal_hal_exit(int code)
{
    (void)fflush(stdout);
    printf("\nshoal: exit %d\n", code);
    (void)fflush(stdout);
    for (;;) {
        vTaskDelay(portMAX_DELAY);
    }
}

void shoal_hal_reset(void)
{
    (void)fflush(stdout);
    esp_restart();
}

static uint32_t transport_now_ms(void *ctx)
{
    (void)ctx;
    return shoal_hal_now_ms();
}

static int transport_send(void *ctx, const uint8_t *data, size_t len)
{
    shoal_esp32_udp *u = (shoal_esp32_udp *)ctx;
    int n = sendto(u->fd, data, len, 0, (const struct sockaddr *)&u->gateway,
                   sizeof(u->gateway));
    return n == (int)len ? 0 : -1;
}

static int transport_broadcast(void *ctx, const uint8_t *data, size_t len)
{
    shoal_esp32_udp *u = (shoal_esp32_udp *)ctx;
    int n = sendto(u->fd, data, len, 0, (const struct sockaddr *)&u->search, sizeof(u->search));
    return n == (int)len ? 0 : -1;
}

static int transport_recv(void *ctx, uint8_t *buf, size_t cap)
{
    shoal_esp32_udp *u = (shoal_esp32_udp *)ctx;
    for (;;) {
        struct sockaddr_in from;
        socklen_t from_len = sizeof(from);
        int n = recvfrom(u->fd, buf, cap, MSG_DONTWAIT | MSG_TRUNC, (struct sockaddr *)&from,
                         &from_len);
        if (n < 0) {
            return 0; /* EWOULDBLOCK, or an ICMP error while the gateway is away */
        }
        u->last_from = from;
        if ((size_t)n > cap) {
            u->foreign_dropped++;
            continue;
        }
        return n;
    }
}

int shoal_esp32_udp_open(shoal_esp32_udp *u, const char *gateway_host, uint16_t gateway_port,
                         uint16_t local_port)
{
    struct addrinfo hints;
    struct addrinfo *found = NULL;
    struct sockaddr_in local;
    int yes = 1;

    memset(u, 0, sizeof(*u));
    u->fd = -1;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_INET;
    hints.ai_socktype = SOCK_DGRAM;
    if (getaddrinfo(gateway_host, NULL, &hints, &found) != 0 || found == NULL) {
        return -1;
    }
    memcpy(&u->gateway, found->ai_addr, sizeof(u->gateway));
    freeaddrinfo(found);
    u->gateway.sin_port = htons(gateway_port);
    u->search = u->gateway;
    u->fd = socket(AF_INET, SOCK_DGRAM, IPPROTO_UDP);
    if (u->fd < 0) {
        return -1;
    }
    (void)setsockopt(u->fd, SOL_SOCKET, SO_BROADCAST, &yes, sizeof(yes));
    memset(&local, 0, sizeof(local));
    local.sin_family = AF_INET;
    local.sin_addr.s_addr = htonl(INADDR_ANY);
    local.sin_port = htons(local_port);
    if (bind(u->fd, (struct sockaddr *)&local, sizeof(local)) != 0 ||
        fcntl(u->fd, F_SETFL, fcntl(u->fd, F_GETFL, 0) | O_NONBLOCK) != 0) {
        shoal_esp32_udp_close(u);
        return -1;
    }
    return 0;
}

void shoal_esp32_udp_close(shoal_esp32_udp *u)
{
    if (u->fd >= 0) {
        (void)close(u->fd);
        u->fd = -1;
    }
}

void shoal_esp32_udp_transport(shoal_esp32_udp *u, shoal_mqttsn_transport *t)
{
    t->send = transport_send;
    t->broadcast = transport_broadcast;
    t->recv = transport_recv;
    t->now_ms = transport_now_ms;
    t->ctx = u;
}

void shoal_esp32_udp_use_last_sender(shoal_esp32_udp *u)
{
    u->gateway = u->last_from;
}
