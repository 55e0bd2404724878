/*
 * shoal_mcu_syscalls.c - newlib system calls for the real Cortex-M boards: stdout on the
 * console, stdin from the link UART, a bounded heap.
 *
 * Responsible for: _write (fds 1 and 2) to shoal_hal_console_write (the second UART with
 * SHOAL_HAL_CONSOLE_UART=1, else the link UART); _read (fd 0) from the link UART's receive ring; _sbrk between
 * the end of .bss and the stack reserved at the top of RAM (malloc fails cleanly instead of
 * overwriting the stack), and the small rest newlib links against. Must not: be used by
 * Shoal's own runtime for anything but printing (generated code never allocates).
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/stat.h>

#include "shoal_hal.h"
#include "shoal_mcu.h"

#undef errno
extern int errno;

/* From hal/qemu/common/shoal_sections.ld: first free byte after .bss, and where the stack ends. */
extern uint8_t end[];
extern uint8_t __shoal_heap_limit[];

int _write(int fd, const void *buf, size_t len);
int _read(int fd, void *buf, size_t len);
void *_sbrk(ptrdiff_t increment);
int _close(int fd);
int _fstat(int fd, struct stat *st);
int _isatty(int fd);
int _lseek(int fd, int offset, int whence);
int _getpid(void);
int _kill(int pid, int sig);
void _exit(int status) __attribute__((noreturn));

void shoal_mcu_flush_stdio(void)
{
    (void)fflush(NULL);
}

int _write(int fd, const void *buf, size_t len)
{
    if (fd != 1 && fd != 2) {
        errno = EBADF;
        return -1;
    }
    shoal_hal_console_write((const uint8_t *)buf, len);
    return (int)len;
}

int _read(int fd, void *buf, size_t len)
{
    uint8_t *out = (uint8_t *)buf;
    size_t count = 0;
    int byte;

    if (fd != 0) {
        errno = EBADF;
        return -1;
    }
    if (len == 0u) {
        return 0;
    }
    /* Block for the first byte (stdio expects it), then take what is already waiting. */
    while ((byte = shoal_hal_uart_getc()) < 0) {
        shoal_hal_idle();
    }
    do {
        out[count++] = (uint8_t)byte;
    } while (count < len && (byte = shoal_hal_uart_getc()) >= 0);
    return (int)count;
}

void *_sbrk(ptrdiff_t increment)
{
    static uint8_t *heap_top = end;
    uint8_t *previous = heap_top;

    if (increment > __shoal_heap_limit - heap_top || increment < end - heap_top) {
        errno = ENOMEM;
        return (void *)-1;
    }
    heap_top += increment;
    return previous;
}

int _close(int fd)
{
    (void)fd;
    return 0;
}

int _fstat(int fd, struct stat *st)
{
    (void)fd;
    st->st_mode = S_IFCHR;
    return 0;
}

int _isatty(int fd)
{
    /* A tty makes stdout line-buffered, so each printed line reaches the UART at once. */
    return fd >= 0 && fd <= 2;
}

int _lseek(int fd, int offset, int whence)
{
    (void)fd;
    (void)offset;
    (void)whence;
    return 0;
}

int _getpid(void)
{
    return 1;
}

int _kill(int pid, int sig)
{
    (void)pid;
    (void)sig;
    errno = EINVAL;
    return -1;
}

void _exit(int status)
{
    shoal_hal_exit(status);
}
